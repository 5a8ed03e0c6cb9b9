from cxops.common.events.tables import metadata as event_tables
from cxops.common.migrations import run_env
from cxops.feedback.models import FeedbackTable

# Both metadatas, so that autogenerate neither misses feedback's tables nor proposes dropping
# the outbox and inbox (alembic accepts a sequence here).
run_env(target_metadata=[FeedbackTable.metadata, event_tables])
