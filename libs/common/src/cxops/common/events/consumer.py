"""Durable pull consumers that handle each event exactly once in effect.

Each event is handled in one database transaction that also records its id in the consumer's
inbox; a redelivered event finds its id there and changes nothing. A failing handler is retried
with backoff (a delayed NAK); after ``max_deliver`` attempts, or at once for a message that is not
a valid event, the message is copied to the dead-letter stream and acknowledged, so one poison
event never stalls the rest.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry import trace
from prometheus_client import Counter
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cxops.common.db import Database
from cxops.common.events.broker import DEAD_LETTER_PREFIX, Broker
from cxops.common.events.envelope import Event, MalformedEvent
from cxops.common.events.tables import inbox
from cxops.common.telemetry import extract_trace_context, tenant_var

log = logging.getLogger("cxops.events.consumer")
tracer = trace.get_tracer("cxops.events")

EVENTS_CONSUMED = Counter(
    "cxops_events_consumed_total", "Events taken from JetStream", ["consumer", "outcome"]
)

EventHandler = Callable[[AsyncSession, Event], Awaitable[None]]
BatchEventHandler = Callable[[AsyncSession, Sequence[Event]], Awaitable[None]]


class PermanentEventError(Exception):
    """A handler's way to say retrying cannot help: the event goes to the dead-letter stream."""


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable consumer of one stream, declared by the consuming service.

    ``handler`` takes one event. ``batch_handler``, when given, takes every new event of a
    fetched batch at once, so a consumer can write them with one statement instead of one per
    event; it must do exactly what ``handler`` would do for each. If it raises, the batch is
    rolled back and handled again event by event with ``handler``, which decides what is
    retried and what is dead-lettered.
    """

    name: str
    stream: str
    subjects: Sequence[str]
    handler: EventHandler | None = None
    batch_handler: BatchEventHandler | None = None
    #: In place of ``handler``, for one that needs the running service (a component, such as
    #: routing's live engines): called once with the started ``ServiceState``, it returns the
    #: handler.
    bind: Callable[[Any], EventHandler] | None = None
    #: False for a handler that is idempotent by itself and commits through its own path
    #: (routing: a case's task, known by its external id, committed by the tenant's engine): it
    #: is called outside any transaction, with ``None`` for a session, and nothing is recorded
    #: in the inbox. Nesting its commit inside the consumer's transaction would deadlock on
    #: SQLite, where a transaction holds the database's one write lock.
    inbox: bool = True

    def __post_init__(self) -> None:
        if (self.handler is None) == (self.bind is None):
            raise ValueError(f"consumer {self.name}: give a handler or bind, not both")

    def bound(self, state: Any) -> ConsumerSpec:
        """This consumer with its handler, bound to the running service if it needs to be."""
        if self.bind is None:
            return self
        return replace(self, handler=self.bind(state), bind=None)


class Consumer:
    def __init__(
        self,
        spec: ConsumerSpec,
        *,
        service: str,
        db: Database,
        broker: Broker,
        max_deliver: int = 5,
        ack_wait_seconds: float = 30.0,
        batch_size: int = 100,
        backoff_seconds: Sequence[float] = (0.5, 2.0, 5.0, 15.0),
    ) -> None:
        self.spec = spec
        self.service = service
        self.durable = f"{service}-{spec.name}"
        self.db = db
        self.broker = broker
        self.max_deliver = max_deliver
        self.ack_wait_seconds = ack_wait_seconds
        self.batch_size = batch_size
        self.backoff_seconds = tuple(backoff_seconds) or (1.0,)

    @property
    def _handler(self) -> EventHandler:
        if self.spec.handler is None:
            raise ValueError(f"consumer {self.spec.name} is not bound to its service (bound())")
        return self.spec.handler

    def config(self) -> ConsumerConfig:
        subjects = list(self.spec.subjects)
        return ConsumerConfig(
            durable_name=self.durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait_seconds,
            # Our code dead-letters at max_deliver; the server's limit is only a backstop.
            max_deliver=self.max_deliver + 2,
            max_ack_pending=1000,
            filter_subject=subjects[0] if len(subjects) == 1 else None,
            filter_subjects=subjects if len(subjects) > 1 else None,
        )

    async def run(self) -> None:
        """Fetch and handle forever; survive broker outages and a stream that does not exist yet."""
        await self.broker.wait_connected()
        subscription = None
        while True:
            try:
                if subscription is None:
                    subscription = await self.broker.js.pull_subscribe_bind(
                        consumer=await self._ensure_consumer(), stream=self.spec.stream
                    )
                messages = await subscription.fetch(self.batch_size, timeout=1.0)
            except (NatsTimeoutError, TimeoutError):
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - outage or missing stream: wait, retry
                log.warning("consumer %s cannot fetch (%s); retrying", self.durable, exc)
                subscription = None
                await asyncio.sleep(1.0)
                continue
            await self.handle_batch(messages)

    async def _ensure_consumer(self) -> str:
        await self.broker.js.add_consumer(self.spec.stream, config=self.config())
        return self.durable

    async def handle_batch(self, messages: Sequence[Msg]) -> None:
        """Handle a fetched batch in one transaction (one commit, one inbox lookup), and fall
        back to one event at a time if anything in it fails, so a poison event is isolated and
        retried on its own while the rest are handled."""
        if len(messages) == 1 or not self.spec.inbox:
            for msg in messages:
                await self.handle(msg)
            return
        batch: list[tuple[Msg, Event]] = []
        for msg in messages:
            try:
                batch.append((msg, Event.from_message(msg.subject, msg.headers, msg.data)))
            except MalformedEvent as exc:
                deliveries = msg.metadata.num_delivered if msg.metadata else 1
                await self._dead_letter(msg, reason=str(exc), deliveries=deliveries)
        try:
            outcomes = await self._handle_all_once([event for _msg, event in batch])
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - someone in the batch failed: go one by one
            for msg, _event in batch:
                await self.handle(msg)
            return
        for (msg, _event), outcome in zip(batch, outcomes, strict=True):
            EVENTS_CONSUMED.labels(self.durable, outcome).inc()
            await msg.ack()

    async def _handle_all_once(self, events: Sequence[Event]) -> list[str]:
        async with self.db.transaction() as session:
            seen = set(
                (
                    await session.scalars(
                        sa.select(inbox.c.event_id).where(
                            inbox.c.consumer == self.durable,
                            inbox.c.event_id.in_([event.id for event in events]),
                        )
                    )
                ).all()
            )
            outcomes = []
            for event in events:
                outcomes.append("duplicate" if event.id in seen else "handled")
                seen.add(event.id)
            handled = [e for e, o in zip(events, outcomes, strict=True) if o == "handled"]
            if handled and self.spec.batch_handler is not None:
                with self._batch_span(handled):
                    await self.spec.batch_handler(session, handled)
            else:
                for event in handled:
                    tenant_token = tenant_var.set(event.tenant)
                    try:
                        with self._span(event):
                            await self._handler(session, event)
                    finally:
                        tenant_var.reset(tenant_token)
            if handled:
                now = datetime.now(UTC)
                await session.execute(
                    sa.insert(inbox),
                    [
                        {
                            "consumer": self.durable,
                            "event_id": event.id,
                            "tenant": event.tenant,
                            "subject": event.subject,
                            "handled_at": now,
                        }
                        for event in handled
                    ],
                )
        return outcomes

    def _span(self, event: Event) -> AbstractContextManager[trace.Span]:
        return tracer.start_as_current_span(
            f"consume {event.type}",
            context=extract_trace_context(event.trace),
            kind=trace.SpanKind.CONSUMER,
            attributes={"messaging.system": "nats", "cloudevents.event_id": event.id},
        )

    def _batch_span(self, events: Sequence[Event]) -> AbstractContextManager[trace.Span]:
        """One span for a batch, linked to the trace of every event in it."""
        links = []
        for event in events:
            context = trace.get_current_span(extract_trace_context(event.trace)).get_span_context()
            if context.is_valid:
                links.append(trace.Link(context))
        return tracer.start_as_current_span(
            f"consume {len(events)} events",
            kind=trace.SpanKind.CONSUMER,
            links=links,
            attributes={"messaging.system": "nats", "messaging.batch.message_count": len(events)},
        )

    async def handle(self, msg: Msg) -> None:
        deliveries = msg.metadata.num_delivered if msg.metadata else 1
        try:
            event = Event.from_message(msg.subject, msg.headers, msg.data)
        except MalformedEvent as exc:
            await self._dead_letter(msg, reason=str(exc), deliveries=deliveries)
            return
        tenant_token = tenant_var.set(event.tenant)
        try:
            with self._span(event):
                outcome = await self._handle_once(event)
        except asyncio.CancelledError:
            raise
        except PermanentEventError as exc:
            await self._dead_letter(msg, reason=str(exc), deliveries=deliveries)
            return
        except Exception as exc:  # noqa: BLE001 - a handler failure: retry, then dead-letter
            if deliveries >= self.max_deliver:
                await self._dead_letter(msg, reason=repr(exc), deliveries=deliveries)
            else:
                delay = self.backoff_seconds[min(deliveries, len(self.backoff_seconds)) - 1]
                log.warning(
                    "consumer %s failed on %s (delivery %d, retry in %.1fs): %r",
                    self.durable,
                    event.id,
                    deliveries,
                    delay,
                    exc,
                )
                EVENTS_CONSUMED.labels(self.durable, "retried").inc()
                await msg.nak(delay=delay)
            return
        finally:
            tenant_var.reset(tenant_token)
        EVENTS_CONSUMED.labels(self.durable, outcome).inc()
        await msg.ack()

    async def _handle_once(self, event: Event) -> str:
        """Run the handler and record the event in the inbox, in one transaction."""
        if not self.spec.inbox:
            await self._handler(None, event)  # type: ignore[arg-type]  # see ConsumerSpec.inbox
            return "handled"
        try:
            async with self.db.transaction() as session:
                seen = await session.scalar(
                    sa.select(sa.literal(1)).where(
                        inbox.c.consumer == self.durable, inbox.c.event_id == event.id
                    )
                )
                if seen:
                    return "duplicate"
                await self._handler(session, event)
                await session.execute(
                    sa.insert(inbox).values(
                        consumer=self.durable,
                        event_id=event.id,
                        tenant=event.tenant,
                        subject=event.subject,
                        handled_at=datetime.now(UTC),
                    )
                )
        except IntegrityError:
            if await self._seen(event.id):  # a concurrent delivery won the race
                return "duplicate"
            raise
        return "handled"

    async def _seen(self, event_id: str) -> bool:
        async with self.db.sessionmaker() as session:
            found = await session.scalar(
                sa.select(sa.literal(1)).where(
                    inbox.c.consumer == self.durable, inbox.c.event_id == event_id
                )
            )
        return bool(found)

    async def _dead_letter(self, msg: Msg, *, reason: str, deliveries: int) -> None:
        headers = dict(msg.headers or {})
        event_id = headers.get(
            "ce-id", f"seq-{msg.metadata.sequence.stream if msg.metadata else 0}"
        )
        headers.update(
            {
                "cx-dlq-consumer": self.durable,
                "cx-dlq-original-subject": msg.subject,
                "cx-dlq-reason": reason[:1000],
                "cx-dlq-deliveries": str(deliveries),
                "cx-dlq-time": datetime.now(UTC).isoformat(),
                "Nats-Msg-Id": f"{self.durable}:{event_id}",
            }
        )
        subject = f"{DEAD_LETTER_PREFIX}.{self.service}.{self.spec.name}"
        await self.broker.js.publish(subject, msg.data, headers=headers)
        log.error("consumer %s dead-lettered %s: %s", self.durable, event_id, reason)
        EVENTS_CONSUMED.labels(self.durable, "dead_lettered").inc()
        await msg.term()
