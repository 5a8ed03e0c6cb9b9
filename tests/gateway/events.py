"""Publishing events into the services' streams as the services do: a CloudEvents ``Event``,
its headers and body (what the outbox relay sends), on the service's stream, which is created
as the service creates it."""

from datetime import timedelta
from typing import Any

from cxops.common.events import Broker, Event
from cxops.common.events.broker import stream_name
from tests.support.services import eventually


class Publisher:
    def __init__(self, nats_url: str) -> None:
        self.broker = Broker([nats_url], name="tests-publisher")
        self._streams: set[str] = set()

    async def __aenter__(self) -> "Publisher":
        await self.broker.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.broker.close()

    async def ensure_stream(self, service: str) -> None:
        if service not in self._streams:
            await self.broker.ensure_stream(
                stream_name(service),
                [f"cx.{service}.>"],
                max_age_seconds=timedelta(days=1).total_seconds(),
            )
            self._streams.add(service)

    async def publish(self, event_type: str, *, tenant: str, **data: Any) -> Event:
        """``event_type`` (``cx.<service>...``) for ``tenant``; returns the event sent."""
        service = event_type.split(".")[1]
        await self.ensure_stream(service)
        event = Event.new(subject=event_type, source=f"/cxops/{service}", tenant=tenant, data=data)
        await self.broker.js.publish(event.subject, event.body(), headers=event.headers())
        return event

    async def wait_until_consumed(self, durable: str, *, service: str) -> None:
        """Until the durable consumer ``durable`` of ``service``'s stream has acknowledged
        everything published so far: what it did with those events is done."""

        async def settled() -> bool:
            info = await self.broker.js.consumer_info(stream_name(service), durable)
            return info.num_pending == 0 and info.num_ack_pending == 0

        await eventually(settled, what=f"{durable} to acknowledge every {service} event")
