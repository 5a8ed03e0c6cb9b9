"""The event backbone against a real nats-server and both databases."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Sequence
from datetime import UTC, datetime

import nats
import pytest
import sqlalchemy as sa
from nats.js.errors import NotFoundError
from sqlalchemy.ext.asyncio import AsyncSession

from cxops.cli.nats_server import NatsServer
from cxops.common.db import Database
from cxops.common.events import Broker, ConsumerSpec, Event, OutboxRelay, add_event
from cxops.common.events.broker import DEAD_LETTER_PREFIX, DEAD_LETTER_STREAM
from cxops.common.events.consumer import Consumer
from cxops.common.events.dead_letters import list_dead_letters
from cxops.common.events.envelope import MalformedEvent
from cxops.common.events.tables import inbox, outbox
from tests.support.services import eventually

STREAM = "CX_SAMPLE"
tally = sa.table("sample_tally", sa.column("tenant"), sa.column("key"), sa.column("count"))


def sample_event(tenant: str = "acme", key: str = "a") -> Event:
    return Event.new(
        subject="cx.sample.thing.happened.v1",
        source="/cxops/sample",
        tenant=tenant,
        data={"key": key},
    )


async def count_into_tally(session: AsyncSession, event: Event) -> None:
    """The handler of the sample consumer: one more for the event's key."""
    key = event.data["key"]
    if key == "poison":
        raise ValueError("cannot handle poison")
    updated = await session.execute(
        sa.update(tally)
        .where(tally.c.tenant == event.tenant, tally.c.key == key)
        .values(count=tally.c.count + 1)
    )
    if updated.rowcount == 0:  # type: ignore[attr-defined]
        await session.execute(sa.insert(tally).values(tenant=event.tenant, key=key, count=1))


async def tally_of(db: Database, tenant: str = "acme", key: str = "a") -> int:
    async with db.transaction() as session:
        value = await session.scalar(
            sa.select(tally.c.count).where(tally.c.tenant == tenant, tally.c.key == key)
        )
    return int(value or 0)


@pytest.fixture
async def broker(nats_server: NatsServer) -> AsyncIterator[Broker]:
    broker = Broker([nats_server.url], name="test")
    await broker.connect()
    await broker.ensure_stream(STREAM, ["cx.sample.>"], max_age_seconds=3600)
    await broker.ensure_stream(
        DEAD_LETTER_STREAM, [f"{DEAD_LETTER_PREFIX}.>"], max_age_seconds=3600
    )
    yield broker
    await broker.close()


@contextlib.asynccontextmanager
async def running(*workers: Awaitable[None]) -> AsyncIterator[None]:
    tasks = [asyncio.ensure_future(worker) for worker in workers]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def make_consumer(db: Database, broker: Broker, **options: float) -> Consumer:
    spec = ConsumerSpec(
        name="tally", stream=STREAM, subjects=["cx.sample.>"], handler=count_into_tally
    )
    return Consumer(
        spec,
        service="sample",
        db=db,
        broker=broker,
        max_deliver=int(options.get("max_deliver", 3)),
        ack_wait_seconds=options.get("ack_wait", 30.0),
        backoff_seconds=(0.1, 0.2),
    )


def test_envelope_round_trip() -> None:
    event = sample_event()
    headers = event.headers()
    assert headers["Nats-Msg-Id"] == headers["ce-id"] == event.id
    assert headers["ce-specversion"] == "1.0"
    assert headers["ce-tenant"] == "acme"
    parsed = Event.from_message(event.subject, headers, event.body())
    assert parsed.id == event.id and parsed.data == {"key": "a"} and parsed.time == event.time
    with pytest.raises(MalformedEvent, match="ce-tenant"):
        Event.from_message(
            event.subject, {k: v for k, v in headers.items() if k != "ce-tenant"}, event.body()
        )
    with pytest.raises(MalformedEvent):
        Event.from_message(event.subject, headers, b"[1, 2]")


async def test_stream_provisioning_is_repeatable(broker: Broker) -> None:
    await broker.ensure_stream(STREAM, ["cx.sample.>"], max_age_seconds=3600)
    await broker.ensure_stream(STREAM, ["cx.sample.>"], max_age_seconds=7200)
    info = await broker.js.stream_info(STREAM)
    assert info.config.max_age == 7200
    assert info.config.subjects == ["cx.sample.>"]


async def test_outbox_publishes_only_committed_events(sample_db: Database, broker: Broker) -> None:
    committed, rolled_back = sample_event(key="kept"), sample_event(key="dropped")
    async with sample_db.transaction() as session:
        await add_event(session, committed)
    with contextlib.suppress(RuntimeError):
        async with sample_db.transaction() as session:
            await add_event(session, rolled_back)
            raise RuntimeError("the change failed")
    relay = OutboxRelay(db=sample_db, broker=broker)
    assert await relay.relay_once() == 1
    assert await relay.pending() == 0
    msg = await broker.js.get_last_msg(STREAM, "cx.sample.thing.happened.v1")
    assert msg.headers is not None
    assert msg.headers["ce-id"] == committed.id == msg.headers["Nats-Msg-Id"]
    assert msg.headers["ce-tenant"] == "acme"
    assert (await broker.js.stream_info(STREAM)).state.messages == 1


async def test_outbox_survives_broker_outage(
    sample_db: Database, nats_server: NatsServer, broker: Broker
) -> None:
    relay = OutboxRelay(db=sample_db, broker=broker, poll_seconds=0.05)
    consumer = make_consumer(sample_db, broker)
    async with running(relay.run(), consumer.run()):
        nats_server.stop()
        for _ in range(50):
            async with sample_db.transaction() as session:
                await add_event(session, sample_event())
            relay.wake()
        await asyncio.sleep(0.5)
        assert await relay.pending() == 50
        nats_server.start()

        async def all_counted() -> bool:
            return await tally_of(sample_db) == 50

        await eventually(all_counted, what="every event to be counted", within=20)
        assert await relay.pending() == 0
        await asyncio.sleep(0.5)
        assert await tally_of(sample_db) == 50


async def test_redelivered_event_changes_nothing(sample_db: Database, broker: Broker) -> None:
    event = sample_event()
    consumer = make_consumer(sample_db, broker)
    async with running(consumer.run()):
        # The same event published three times under different message ids gets past
        # JetStream's de-duplication; the inbox must catch it.
        for attempt in range(3):
            headers = {**event.headers(), "Nats-Msg-Id": f"{event.id}-{attempt}"}
            await broker.js.publish(event.subject, event.body(), headers=headers)

        async def handled() -> bool:
            try:
                info = await broker.js.consumer_info(STREAM, consumer.durable)
            except NotFoundError:
                return False  # the running consumer has not created its durable yet
            return info.num_ack_pending == 0 and info.num_pending == 0

        await eventually(handled, what="the event to be handled")
    assert await tally_of(sample_db) == 1
    async with sample_db.transaction() as session:
        rows = await session.scalar(sa.select(sa.func.count()).select_from(inbox))
    assert rows == 1


async def test_unacknowledged_delivery_is_redelivered_once_in_effect(
    sample_db: Database, broker: Broker
) -> None:
    """A consumer that handled an event but died before acknowledging gets it again."""
    consumer = make_consumer(sample_db, broker, ack_wait=1.0)
    event = sample_event()
    await broker.js.publish(event.subject, event.body(), headers=event.headers())
    sub = await broker.js.pull_subscribe_bind(
        consumer=await consumer._ensure_consumer(), stream=STREAM
    )
    first = (await sub.fetch(1, timeout=2))[0]
    assert (
        await consumer._handle_once(Event.from_message(first.subject, first.headers, first.data))
        == "handled"
    )
    # no ack: the server redelivers after ack_wait
    second = (await sub.fetch(1, timeout=5))[0]
    assert second.metadata.num_delivered == 2
    await consumer.handle(second)
    assert await tally_of(sample_db) == 1


async def test_poison_event_is_dead_lettered_and_the_rest_go_on(
    sample_db: Database, broker: Broker
) -> None:
    consumer = make_consumer(sample_db, broker, max_deliver=3)
    poison = sample_event(key="poison")
    await broker.js.publish(poison.subject, poison.body(), headers=poison.headers())
    await broker.js.publish("cx.sample.thing.happened.v1", b"{}", headers={"Nats-Msg-Id": "x1"})
    for _ in range(5):
        good = sample_event()
        await broker.js.publish(good.subject, good.body(), headers=good.headers())
    async with running(consumer.run()):

        async def settled() -> bool:
            dead = (await broker.js.stream_info(DEAD_LETTER_STREAM)).state.messages
            return dead == 2 and await tally_of(sample_db) == 5

        await eventually(settled, what="the consumer to settle", within=15)
    letters = await list_dead_letters(broker, service="sample", tenant=None)
    by_reason = {letter["deliveries"]: letter for letter in letters}
    assert set(by_reason) == {1, 3}  # malformed at once; poison after max deliveries
    assert "poison" in by_reason[3]["reason"]
    assert by_reason[3]["event_id"] == poison.id
    assert by_reason[3]["consumer"] == "sample-tally"
    assert by_reason[3]["original_subject"] == poison.subject
    assert "ce-tenant" in by_reason[1]["reason"]
    assert [
        x["event_id"] for x in await list_dead_letters(broker, service="sample", tenant="acme")
    ] == [poison.id]
    assert await list_dead_letters(broker, service="sample", tenant="globex") == []


async def test_trace_context_crosses_nats(sample_db: Database, broker: Broker) -> None:
    from opentelemetry import trace

    from cxops.common.telemetry import configure_tracing

    configure_tracing("test")
    tracer = trace.get_tracer("test")
    seen: list[str] = []

    async def record_trace(session: AsyncSession, event: Event) -> None:
        seen.append(format(trace.get_current_span().get_span_context().trace_id, "032x"))

    with tracer.start_as_current_span("producer") as span:
        event = sample_event()
        producer_trace = format(span.get_span_context().trace_id, "032x")
    assert event.headers()["traceparent"].split("-")[1] == producer_trace
    await broker.js.publish(event.subject, event.body(), headers=event.headers())
    spec = ConsumerSpec(name="trace", stream=STREAM, subjects=["cx.sample.>"], handler=record_trace)
    consumer = Consumer(spec, service="sample", db=sample_db, broker=broker)
    async with running(consumer.run()):

        async def got() -> bool:
            return bool(seen)

        await eventually(got, what="the event")
    assert seen == [producer_trace]


async def test_relay_marks_sent_and_purges(sample_db: Database, broker: Broker) -> None:
    async with sample_db.transaction() as session:
        for _ in range(5):
            await add_event(session, sample_event())
    relay = OutboxRelay(db=sample_db, broker=broker, batch_size=2)
    assert [await relay.relay_once() for _ in range(4)] == [2, 2, 1, 0]
    async with sample_db.transaction() as session:
        await session.execute(sa.update(outbox).values(sent_at=datetime(2000, 1, 1, tzinfo=UTC)))
    await relay.purge_sent()
    async with sample_db.transaction() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(outbox)) == 0


async def test_consumer_waits_for_a_stream_that_does_not_exist_yet(
    sample_db: Database, nats_server: NatsServer
) -> None:
    broker = Broker([nats_server.url], name="late")
    await broker.connect()
    spec = ConsumerSpec(
        name="late", stream="CX_LATE", subjects=["cx.late.>"], handler=count_into_tally
    )
    consumer = Consumer(spec, service="sample", db=sample_db, broker=broker)
    try:
        async with running(consumer.run()):
            await asyncio.sleep(1.5)
            await broker.ensure_stream("CX_LATE", ["cx.late.>"], max_age_seconds=60)
            event = Event.new(
                subject="cx.late.x.y.v1", source="/t", tenant="acme", data={"key": "a"}
            )
            await broker.js.publish(event.subject, event.body(), headers=event.headers())

            async def counted() -> bool:
                return await tally_of(sample_db) == 1

            await eventually(counted, what="the event to be counted", within=10)
    finally:
        await broker.close()
    assert nats.__name__ == "nats"


async def test_a_batch_handler_takes_a_fetched_batch_at_once_and_falls_back_on_failure(
    sample_db: Database, broker: Broker
) -> None:
    """With ``batch_handler``, a fetched batch is one call; if that call fails, every event of
    the batch is handled again alone by ``handler``, so the poison event is dead-lettered and
    the others are counted exactly once."""
    batch_sizes: list[int] = []

    async def count_all(session: AsyncSession, events: Sequence[Event]) -> None:
        batch_sizes.append(len(events))
        for event in events:
            await count_into_tally(session, event)

    spec = ConsumerSpec(
        name="tally",
        stream=STREAM,
        subjects=["cx.sample.>"],
        handler=count_into_tally,
        batch_handler=count_all,
    )
    consumer = Consumer(
        spec,
        service="sample",
        db=sample_db,
        broker=broker,
        max_deliver=2,
        backoff_seconds=(0.1,),
        batch_size=50,
    )
    events = [sample_event() for _ in range(20)] + [sample_event(key="poison")]
    events += [sample_event() for _ in range(9)]
    for event in events:
        await broker.js.publish(event.subject, event.body(), headers=event.headers())
    async with running(consumer.run()):

        async def settled() -> bool:
            dead = (await broker.js.stream_info(DEAD_LETTER_STREAM)).state.messages
            return dead == 1 and await tally_of(sample_db) == 29

        await eventually(settled, what="the consumer to settle", within=15)
    assert max(batch_sizes) > 1  # the batch path ran…
    assert await tally_of(sample_db) == 29  # …and its failed attempt left nothing behind
