"""The live event stream: Server-Sent Events of the caller's tenant only, filtered by role,
resumable with Last-Event-ID without repeats or gaps, with heartbeats and a per-key limit, on a
real NATS."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cxops.cli.nats_server import NatsServer
from cxops.common.auth import Role
from cxops.gateway.settings import SERVICES
from tests.gateway.conftest import Gateway, StartGateway, running_gateway
from tests.gateway.events import Publisher
from tests.gateway.test_auth import assert_problem
from tests.support.services import eventually
from tests.support.sse import Comment, SseEvent, open_stream

CASE_OPENED = "cx.feedback.case.opened.v1"
RESPONSE = "cx.feedback.response.received.v1"
TASK_CREATED = "cx.routing.task.created.v1"
INTERACTION = "cx.journey.interaction.recorded.v1"
VARIANCE = "cx.scorecard.variance.breached.v1"


@pytest.fixture
async def publisher(nats_server: NatsServer) -> AsyncIterator[Publisher]:
    async with Publisher(nats_server.url) as publisher:
        for service in SERVICES:
            await publisher.ensure_stream(service)
        yield publisher


@pytest.fixture
def stream_gateway(nats_server: NatsServer, tmp_path: Path) -> StartGateway:
    def start(**overrides: Any) -> Any:
        return running_gateway(tmp_path, nats_url=nats_server.url, **overrides)

    return start


@pytest.fixture
async def gateway(stream_gateway: StartGateway) -> AsyncIterator[Gateway]:
    async with stream_gateway() as gateway:
        await eventually(lambda: _connected(gateway), what="the gateway's broker connection")
        yield gateway


async def _connected(gateway: Gateway) -> bool:
    return gateway.state.broker.is_connected


def ids(events: list[SseEvent]) -> list[str]:
    return [event.data["id"] for event in events]


async def test_each_tenant_sees_its_own_events_only(gateway: Gateway, publisher: Publisher) -> None:
    acme, globex = await gateway.key(tenant="acme"), await gateway.key(tenant="globex")
    async with (
        open_stream(gateway.client, acme) as ours,
        open_stream(gateway.client, globex) as theirs,
    ):
        a1 = await publisher.publish(CASE_OPENED, tenant="acme", case_id="a1")
        g1 = await publisher.publish(TASK_CREATED, tenant="globex", task_id="g1")
        a2 = await publisher.publish(TASK_CREATED, tenant="acme", task_id="a2")
        g2 = await publisher.publish(CASE_OPENED, tenant="globex", case_id="g2")

        acme_events = await ours.events(2)
        assert sorted(ids(acme_events)) == sorted([a1.id, a2.id])
        assert sorted(ids(await theirs.events(2))) == sorted([g1.id, g2.id])
        first = next(e for e in acme_events if e.data["id"] == a1.id)
        assert first.event == CASE_OPENED
        assert first.data == {
            "id": a1.id,
            "type": CASE_OPENED,
            "time": a1.time.isoformat().replace("+00:00", "Z"),
            "data": {"case_id": "a1"},
        }

        # Nothing of the other tenant came in between: the next event is our own marker.
        marker = await publisher.publish(VARIANCE, tenant="acme", metric="nps")
        assert ids(await ours.events(1)) == [marker.id]


async def test_roles_read_only_their_rows_of_the_table(
    gateway: Gateway, publisher: Publisher
) -> None:
    agent = await gateway.key(tenant="acme", role=Role.AGENT)
    viewer = await gateway.key(tenant="acme", role=Role.VIEWER)
    supervisor = await gateway.key(tenant="acme", role=Role.SUPERVISOR)

    refused = await gateway.client.get(
        "/v1/events/stream", headers=viewer, params={"types": "cx.routing.*"}
    )
    assert "cx.scorecard.*" in assert_problem(refused, 403)["detail"]

    async with (
        open_stream(gateway.client, agent) as agents,
        open_stream(gateway.client, viewer) as viewers,
        open_stream(gateway.client, supervisor, types="cx.journey.*,cx.feedback.*") as sups,
    ):
        for event_type in (INTERACTION, RESPONSE, VARIANCE):
            await publisher.publish(event_type, tenant="acme")
        task = await publisher.publish(TASK_CREATED, tenant="acme", task_id="t")
        case = await publisher.publish(CASE_OPENED, tenant="acme", case_id="c")
        assert sorted(ids(await agents.events(2))) == sorted([task.id, case.id])
        (variance,) = await viewers.events(1)
        assert variance.event == VARIANCE
        supervised = await sups.events(2)  # journey interactions are not a supervisor's
        assert sorted(e.event for e in supervised) == sorted([RESPONSE, CASE_OPENED])

        marker = await publisher.publish("cx.routing.agent.status_changed.v1", tenant="acme")
        assert ids(await agents.events(1)) == [marker.id]
        last = await publisher.publish(VARIANCE, tenant="acme")
        assert ids(await viewers.events(1)) == [last.id]


async def test_last_event_id_resumes_every_stream_without_repeats_or_gaps(
    gateway: Gateway, publisher: Publisher
) -> None:
    headers = await gateway.key(tenant="acme")
    types = "cx.feedback.*,cx.routing.*"
    async with open_stream(gateway.client, headers, types=types) as stream:
        f1 = await publisher.publish(CASE_OPENED, tenant="acme", n=1)
        (after_f1,) = await stream.events(1)
        r1 = await publisher.publish(TASK_CREATED, tenant="acme", n=1)
        (after_r1,) = await stream.events(1)
        assert ids([after_f1, after_r1]) == [f1.id, r1.id]
        assert after_f1.id != after_r1.id

    missed = [
        await publisher.publish(CASE_OPENED, tenant="acme", n=2),
        await publisher.publish(TASK_CREATED, tenant="acme", n=2),
        await publisher.publish(CASE_OPENED, tenant="acme", n=3),
        await publisher.publish(CASE_OPENED, tenant="globex", n=3),
    ][:3]

    async with open_stream(gateway.client, headers, types=types, last_event_id=after_r1.id) as s:
        assert sorted(ids(await s.events(3))) == sorted(e.id for e in missed)
        marker = await publisher.publish(TASK_CREATED, tenant="acme", n="marker")
        assert ids(await s.events(1)) == [marker.id]

    # From the first event's id: the routing stream resumes where it was then, before r1.
    async with open_stream(gateway.client, headers, types=types, last_event_id=after_f1.id) as s:
        resumed = await s.events(5)
        assert sorted(ids(resumed)) == sorted([r1.id, *(e.id for e in missed), marker.id])
        last = await publisher.publish(CASE_OPENED, tenant="acme", n="last")
        assert ids(await s.events(1)) == [last.id]


async def test_heartbeats_keep_an_idle_stream_alive(stream_gateway: StartGateway) -> None:
    async with stream_gateway(stream_heartbeat_seconds=0.1) as gateway:
        await eventually(lambda: _connected(gateway), what="the gateway's broker connection")
        async with open_stream(gateway.client, await gateway.key()) as stream:
            assert await stream.item() == Comment("heartbeat")
            assert await stream.item() == Comment("heartbeat")


async def test_a_key_may_hold_a_limited_number_of_streams(
    stream_gateway: StartGateway,
) -> None:
    async with stream_gateway(stream_max_per_key=2) as gateway:
        await eventually(lambda: _connected(gateway), what="the gateway's broker connection")
        key = await gateway.key(tenant="acme")
        async with open_stream(gateway.client, key), open_stream(gateway.client, key):
            refused = await gateway.client.get("/v1/events/stream", headers=key)
            problem = assert_problem(refused, 429)
            assert refused.headers["Retry-After"] == str(problem["retry_after"])
            async with open_stream(gateway.client, await gateway.key(tenant="acme")):
                pass  # another key has slots of its own
        # Both closed by the client: their slots come back.
        await eventually(lambda: _slots_free(gateway, key), what="the stream slots to be freed")
        async with open_stream(gateway.client, key), open_stream(gateway.client, key):
            pass


async def _slots_free(gateway: Gateway, headers: dict[str, str]) -> bool:
    return sum(gateway.state.stream_slots._held.values()) == 0


async def test_bad_requests_name_the_field(gateway: Gateway) -> None:
    key = await gateway.key()
    bad_types = await gateway.client.get(
        "/v1/events/stream", headers=key, params={"types": "cx.routing.*,nope"}
    )
    assert [e["field"] for e in assert_problem(bad_types, 422)["errors"]] == ["types"]
    bad_id = await gateway.client.get(
        "/v1/events/stream", headers={**key, "Last-Event-ID": "feedback-1.bogus"}
    )
    assert [e["field"] for e in assert_problem(bad_id, 422)["errors"]] == ["Last-Event-ID"]
    assert_problem(await gateway.client.get("/v1/events/stream"), 401)


async def test_streams_end_when_the_gateway_shuts_down(
    stream_gateway: StartGateway, publisher: Publisher
) -> None:
    items: list[Any] = []
    opened = asyncio.Event()

    async def follow(url: str, headers: dict[str, str]) -> None:
        async with (
            httpx.AsyncClient(base_url=url, timeout=30, trust_env=False) as client,
            open_stream(client, headers) as stream,
        ):
            opened.set()
            while (item := await stream.item(within=60)) is not None:
                items.append(item)

    async def received() -> bool:
        return any(isinstance(item, SseEvent) for item in items)

    async with stream_gateway() as gateway:
        await eventually(lambda: _connected(gateway), what="the gateway's broker connection")
        reader = asyncio.create_task(follow(gateway.url, await gateway.key()))
        await asyncio.wait_for(opened.wait(), timeout=30)
        event = await publisher.publish(CASE_OPENED, tenant="acme")
        await eventually(received, what="the events on the stream")
    # The gateway stopped with the stream open (it would wait for it forever otherwise), and
    # the client saw the stream end cleanly, not a broken connection.
    await asyncio.wait_for(reader, timeout=30)
    assert [item.data["id"] for item in items if isinstance(item, SseEvent)] == [event.id]


async def test_a_client_that_stops_reading_holds_back_the_stream_not_the_gateways_memory(
    stream_gateway: StartGateway, publisher: Publisher
) -> None:
    """The gateway pulls from JetStream only as fast as the client takes events: with a client
    that reads nothing, what it did not take stays in the stream, not in the gateway."""
    count, padding = 6000, "x" * 4096  # ~24 MB: far more than the sockets' buffers hold
    async with stream_gateway(stream_send_timeout_seconds=120) as gateway:
        await eventually(lambda: _connected(gateway), what="the gateway's broker connection")
        key = await gateway.key(tenant="acme")
        async with gateway.client.stream(
            "GET", "/v1/events/stream", headers=key, params={"types": "cx.feedback.*"}
        ) as response:
            assert response.status_code == 200
            for i in range(count):
                await publisher.publish(CASE_OPENED, tenant="acme", n=i, padding=padding)
            js = publisher.broker.js

            async def stream_consumer() -> Any:
                infos = await js.consumers_info("CX_FEEDBACK")
                ours = [i for i in infos if not (i.config.durable_name or "").startswith("gateway")]
                return ours[0] if ours else None

            info = await eventually(stream_consumer, what="the stream's consumer")
            assert info is not None
            await asyncio.sleep(1)  # let the gateway pull all it would
            info = await stream_consumer()
            assert info.num_pending > count // 2, (info.delivered, info.num_pending)
