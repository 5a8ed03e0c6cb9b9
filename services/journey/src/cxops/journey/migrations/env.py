from cxops.common.events.tables import metadata as event_tables
from cxops.common.migrations import run_env
from cxops.journey.models import JourneyTable

# Both metadatas, so that autogenerate neither misses journey's tables nor proposes dropping
# the outbox and inbox (alembic accepts a sequence here).
run_env(target_metadata=[JourneyTable.metadata, event_tables])
