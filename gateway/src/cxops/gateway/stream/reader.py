"""Reading the services' streams for one client: one ephemeral JetStream pull consumer per
stream read, filtered on the server to the subjects the client asked for and may read, starting
right after the client's position.

Why per client rather than one shared subscription fanned out to every client (see the gateway
README): a resume is just a start sequence per stream, with no hand-over from a replay to a live
feed to get wrong; and backpressure comes for free, since a stream is fetched from only when the
client has taken what was fetched before. Memory per client is bounded by ``QUEUE_SIZE`` events
plus one fetched batch per stream, whatever the client's speed. The price is that each client's
consumers see every tenant's events of the subjects it reads, and drop the others' here.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from cxops.common.events import Broker, Event, MalformedEvent
from cxops.common.events.broker import stream_name
from cxops.gateway.event_types import Pattern, matches_any

log = logging.getLogger("cxops.gateway.stream")

QUEUE_SIZE = 64
FETCH_BATCH = 32
FETCH_SECONDS = 5.0
RETRY_SECONDS = 1.0
#: The server drops a consumer nobody fetched from for this long (a gateway that died).
INACTIVE_SECONDS = 60.0


async def stream_positions(broker: Broker, services: Sequence[str]) -> dict[str, int]:
    """Each stream's last sequence now: a new client starts right after it. A stream that does
    not exist yet is at 0, so all of it is new once it appears."""
    positions: dict[str, int] = {}
    for service in services:
        try:
            info = await broker.js.stream_info(stream_name(service))
        except NotFoundError:
            positions[service] = 0
            continue
        positions[service] = int(info.state.last_seq)
    return positions


class StreamReader:
    """The tenant's events of ``subjects`` (per service), each after its stream's start
    position, as ``(service, sequence, event)``; per stream in order."""

    def __init__(
        self,
        *,
        broker: Broker,
        tenant: str,
        subjects: dict[str, list[str]],
        patterns: Sequence[Pattern],
        after: dict[str, int],
    ) -> None:
        self.broker = broker
        self.tenant = tenant
        self.subjects = subjects
        self.patterns = list(patterns)
        self._next = {service: after[service] + 1 for service in subjects}
        self._queue: asyncio.Queue[tuple[str, int, Event]] = asyncio.Queue(maxsize=QUEUE_SIZE)
        self._consumers: dict[str, str] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._pump(service)) for service in self.subjects]

    async def __aiter__(self) -> AsyncIterator[tuple[str, int, Event]]:
        while True:
            yield await self._queue.get()

    async def close(self) -> None:
        """Stop reading and delete the consumers (the server would drop them after
        ``INACTIVE_SECONDS`` anyway)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for service, consumer in self._consumers.items():
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1):
                    await self.broker.js.delete_consumer(stream_name(service), consumer)
        self._consumers.clear()

    async def _subscribe(self, service: str) -> JetStreamContext.PullSubscription:
        subjects = self.subjects[service]
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=self._next[service],
            ack_policy=AckPolicy.NONE,
            inactive_threshold=INACTIVE_SECONDS,
            mem_storage=True,
            num_replicas=1,
            filter_subject=subjects[0] if len(subjects) == 1 else None,
            filter_subjects=subjects if len(subjects) > 1 else None,
        )
        stream = stream_name(service)
        info = await self.broker.js.add_consumer(stream, config=config)
        self._consumers[service] = info.name
        return await self.broker.js.pull_subscribe_bind(
            consumer=info.name, stream=stream, pending_msgs_limit=FETCH_BATCH * 2
        )

    async def _pump(self, service: str) -> None:
        """Fetch, keep the tenant's events, queue them (waiting while the queue is full: the
        client's pace sets ours). A missing stream, an outage or a consumer the server dropped
        is retried from the next sequence not yet seen."""
        subscription: JetStreamContext.PullSubscription | None = None
        while True:
            try:
                if subscription is None:
                    subscription = await self._subscribe(service)
                messages = await subscription.fetch(FETCH_BATCH, timeout=FETCH_SECONDS)
            except (NatsTimeoutError, TimeoutError):
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - stream missing, outage: wait, retry
                log.debug("event stream cannot read %s yet (%s)", service, exc)
                if subscription is not None:
                    with contextlib.suppress(Exception):
                        await subscription.unsubscribe()
                subscription = None
                await asyncio.sleep(RETRY_SECONDS)
                continue
            for msg in messages:
                sequence = msg.metadata.sequence.stream
                self._next[service] = sequence + 1
                if (msg.headers or {}).get("ce-tenant") != self.tenant:
                    continue
                try:
                    event = Event.from_message(msg.subject, msg.headers, msg.data)
                except MalformedEvent:
                    continue
                if matches_any(self.patterns, event.type):
                    await self._queue.put((service, sequence, event))
