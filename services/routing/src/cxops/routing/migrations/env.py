from cxops.common.events.tables import metadata as event_tables
from cxops.common.migrations import run_env
from cxops.routing.models import RoutingTable

# Both metadatas, so that autogenerate neither misses routing's tables nor proposes dropping
# the outbox and inbox (alembic accepts a sequence here).
run_env(target_metadata=[RoutingTable.metadata, event_tables])
