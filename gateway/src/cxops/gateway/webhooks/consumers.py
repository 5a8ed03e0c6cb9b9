"""The durable consumers that feed webhooks, one per service stream
(``gateway-webhooks-<service>``). Each turns every event into delivery rows in the gateway's
database, recorded in the inbox in the same transaction and acknowledged only after it commits.
A gateway killed at any point loses no delivery: an event not yet committed is redelivered, one
committed is not doubled.
"""

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from cxops.common.events import ConsumerSpec, Event
from cxops.common.events.broker import stream_name
from cxops.gateway.settings import SERVICES
from cxops.gateway.webhooks.service import deliveries_for_events

#: The service the consumers are named for: their durables read ``gateway-webhooks-<service>``.
CONSUMER_OWNER = "gateway"


def webhook_consumers(*, on_new_deliveries: Callable[[], None]) -> list[ConsumerSpec]:
    """One consumer spec per service stream; ``on_new_deliveries`` runs after a commit that
    stored deliveries."""

    async def handle_batch(session: AsyncSession, events: Sequence[Event]) -> None:
        await deliveries_for_events(
            session, events=events, now=datetime.now(UTC), on_commit=on_new_deliveries
        )

    async def handle(session: AsyncSession, event: Event) -> None:
        await handle_batch(session, [event])

    return [
        ConsumerSpec(
            name=f"webhooks-{service}",
            stream=stream_name(service),
            subjects=[f"cx.{service}.>"],
            handler=handle,
            batch_handler=handle_batch,
        )
        for service in SERVICES
    ]
