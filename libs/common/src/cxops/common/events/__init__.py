"""The event backbone: CloudEvents over NATS JetStream, a transactional outbox, idempotent
durable consumers with retries and a dead-letter stream, and ownership leases on JetStream
key-value."""

from cxops.common.events.broker import Broker
from cxops.common.events.consumer import (
    BatchEventHandler,
    ConsumerSpec,
    EventHandler,
    PermanentEventError,
)
from cxops.common.events.envelope import Event, MalformedEvent
from cxops.common.events.lease import Leases, LeaseStoreUnavailable
from cxops.common.events.outbox import OutboxRelay, add_event

__all__ = [
    "BatchEventHandler",
    "Broker",
    "ConsumerSpec",
    "Event",
    "EventHandler",
    "LeaseStoreUnavailable",
    "Leases",
    "MalformedEvent",
    "OutboxRelay",
    "PermanentEventError",
    "add_event",
]
