from cxops.common.events.tables import metadata as event_tables
from cxops.common.migrations import run_env
from cxops.scorecard.models import ScorecardTable

# Both metadatas, so that autogenerate neither misses scorecard's tables nor proposes dropping
# the outbox and inbox (alembic accepts a sequence here).
run_env(target_metadata=[ScorecardTable.metadata, event_tables])
