"""Ownership leases on NATS key-value against a real nats-server: one holder per key, kept by
renewing, lost by a dead or displaced holder, and only routing's NATS user may use its bucket."""

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from cxops.cli.nats_auth import ensure_seeds, seed_file, server_config
from cxops.cli.nats_server import NatsServer
from cxops.common.events import Broker
from cxops.common.events.broker import client_name
from cxops.common.events.lease import (
    Leases,
    LeaseStoreUnavailable,
    lease_bucket,
    new_holder_id,
)
from cxops.common.events.permissions import service_permissions
from cxops.routing.app import OWNERS_BUCKET
from tests.support.services import eventually

#: Short enough to watch several lapse, long enough for a loaded 2-core machine to renew.
TTL = 1.5
#: Beyond a lapse: the server's expiry timer and scheduling on a busy machine.
SLACK = 1.0
BUCKET = "cxops_test_owners"
TENANT = "acme"

Connect = Callable[..., Awaitable[Broker]]
MakeLeases = Callable[..., Awaitable[Leases]]


@contextlib.asynccontextmanager
async def brokers() -> AsyncIterator[Connect]:
    """Connect brokers (one per simulated replica) and close them all at the end."""
    opened: list[Broker] = []

    async def connect(url: str, component: str = "test", seed: Path | None = None) -> Broker:
        credentials = {"nkeys_seed": str(seed)} if seed is not None else {}
        broker = Broker([url], name=client_name(component), credentials=credentials)
        await asyncio.wait_for(broker.connect(), timeout=10)
        opened.append(broker)
        return broker

    try:
        yield connect
    finally:
        for broker in opened:
            await broker.close()


@pytest.fixture
async def replica(nats_server: NatsServer) -> AsyncIterator[MakeLeases]:
    """A replica's ``Leases`` on the test bucket, each over a connection of its own."""
    async with brokers() as connect:

        async def make(holder: str, *, ttl: float = TTL) -> Leases:
            broker = await connect(nats_server.url)
            return Leases(broker, bucket=BUCKET, holder=holder, ttl_seconds=ttl)

        yield make


class Lost:
    """An ``on_lost`` that records the keys it is told about."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    async def __call__(self, key: str) -> None:
        self.keys.append(key)


@contextlib.asynccontextmanager
async def renewing(
    leases: Leases, on_lost: Lost | None = None
) -> AsyncIterator[asyncio.Task[None]]:
    """``leases.run`` in the background (the task, to cancel as a process dies), stopped at
    the end."""
    task = asyncio.create_task(leases.run(on_lost or Lost()))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_one_holder_renews_past_several_ttls_and_a_release_hands_over(
    replica: MakeLeases,
) -> None:
    a, b = await replica("replica-a"), await replica("replica-b")
    assert await a.acquire(TENANT)
    assert not await b.acquire(TENANT)
    assert await a.acquire(TENANT)  # kept
    assert await b.holder_of(TENANT) == "replica-a"
    assert await b.holder_of("nobody") is None

    lost = Lost()
    async with renewing(a, lost):
        await asyncio.sleep(3 * TTL)  # time passing, not a condition: three lapses
        assert not await b.acquire(TENANT)
        assert a.holds(TENANT) and a.held == {TENANT}
        assert lost.keys == []

        await a.release(TENANT)
        assert not a.holds(TENANT)
        assert await b.acquire(TENANT)  # at once, not after a lapse
        assert await a.holder_of(TENANT) == "replica-b"
        await a.release(TENANT)  # not ours: nothing happens
        assert await a.holder_of(TENANT) == "replica-b"
    await b.release(TENANT)
    assert await a.holder_of(TENANT) is None


async def test_a_dead_holders_lease_lapses_and_another_takes_it_within_two_ttls(
    replica: MakeLeases,
) -> None:
    a, b = await replica("replica-a"), await replica("replica-b")
    assert await a.acquire(TENANT)
    async with renewing(a) as a_renewing:
        await asyncio.sleep(TTL)  # a renews through one lapse
        assert not await b.acquire(TENANT)
        a_renewing.cancel()  # a dies: no renewal, no release
        died = time.monotonic()
        await eventually(lambda: b.acquire(TENANT), what="b to take the lapsed lease", within=10)
        failover = time.monotonic() - died
    assert failover <= 2 * TTL + SLACK, failover
    assert await a.holder_of(TENANT) == "replica-b"
    assert not a.holds(TENANT)  # by a's own clock too, without anyone telling it


async def test_a_holder_whose_entry_was_taken_over_is_told_on_its_next_renewal(
    replica: MakeLeases,
) -> None:
    a, b = await replica("replica-a"), await replica("replica-b")
    assert await a.acquire(TENANT)
    lost = Lost()
    async with renewing(a, lost):
        # A paused a, seen from outside: its entry deleted (a tombstone is left), then created
        # over that tombstone by b.
        kv = await b.broker.js.key_value(BUCKET)
        await kv.delete(TENANT)
        assert await b.acquire(TENANT)
        await eventually(lambda: now(lost.keys == [TENANT]), what="a told of its loss")
        assert not a.holds(TENANT) and a.held == frozenset()
        assert await a.holder_of(TENANT) == "replica-b"
        assert not await a.acquire(TENANT)


async def test_a_holder_cut_off_from_nats_for_a_ttl_loses_and_later_takes_again(
    nats_server: NatsServer, replica: MakeLeases
) -> None:
    a = await replica("replica-a")
    assert await a.acquire(TENANT)
    lost = Lost()
    async with renewing(a, lost):
        nats_server.stop()
        cut = time.monotonic()
        try:
            await eventually(lambda: now(lost.keys == [TENANT]), what="the lease lost")
            # The last renewal was sent at most one interval before the cut.
            assert TTL - a.renew_interval - 0.1 <= time.monotonic() - cut <= TTL + SLACK
            with pytest.raises(LeaseStoreUnavailable):
                await a.acquire(TENANT)
        finally:
            nats_server.start()
        await eventually(lambda: a.acquire(TENANT), what="the lease taken again", within=15)
        assert a.holds(TENANT)


async def test_an_existing_bucket_is_brought_to_the_leases_ttl(replica: MakeLeases) -> None:
    a = await replica("replica-a")
    await a.broker.js.create_key_value(bucket=BUCKET, ttl=3600, history=5, direct=True)
    assert await a.acquire(TENANT)  # direct gets from here on: the bucket allows them
    status = await (await a.broker.js.key_value(BUCKET)).status()
    assert (status.ttl, status.history) == (TTL, 1)
    assert await a.holder_of(TENANT) == "replica-a"


def test_holder_ids_name_the_process_and_never_repeat() -> None:
    first, second = new_holder_id(), new_holder_id()
    assert first != second and f"-{os.getpid()}-" in first


def test_a_service_may_declare_only_buckets_named_for_it() -> None:
    assert lease_bucket("routing", "owners") == OWNERS_BUCKET == "cxops_routing_owners"
    for foreign in ("cxops_journey_owners", "cxops_routing_", "cxops_routing_*", "KV_x"):
        with pytest.raises(ValueError, match="cxops_routing_"):
            service_permissions("routing", [], lease_buckets=[foreign])


# --- with authentication: the suite's own NATS users and derived permissions ---------------


@pytest.fixture
def secured_nats(tmp_path: Path) -> Iterator[tuple[NatsServer, Path]]:
    """A nats-server that knows every component by its NKey, with the permissions the code
    derives (as ``cxops up`` configures it); the seeds' directory."""
    seeds = tmp_path / "seeds"
    config = tmp_path / "nats.conf"
    config.write_text(server_config(ensure_seeds(seeds)))
    server = NatsServer(tmp_path / "nats", config_file=config).start()
    yield server, seeds
    server.stop()


async def test_only_routing_may_use_its_lease_bucket(
    secured_nats: tuple[NatsServer, Path], caplog: pytest.LogCaptureFixture
) -> None:
    server, seeds = secured_nats
    caplog.set_level(logging.DEBUG, logger="cxops.events")

    async with brokers() as connect:

        async def as_component(component: str, bucket: str, holder: str) -> Leases:
            broker = await connect(server.url, component, seed_file(seeds, component))
            return Leases(broker, bucket=bucket, holder=holder, ttl_seconds=TTL)

        # Two routing replicas: the first creates the bucket; reads are message gets.
        a = await as_component("routing", OWNERS_BUCKET, "routing-a")
        b = await as_component("routing", OWNERS_BUCKET, "routing-b")
        assert await a.acquire(TENANT)
        lost = Lost()
        async with renewing(a, lost):
            await asyncio.sleep(TTL)  # renewals through a lapse
            assert await b.holder_of(TENANT) == "routing-a" and lost.keys == []
            assert not await b.acquire(TENANT)
            await a.release(TENANT)
            assert await b.acquire(TENANT)

        # An operator changed the bucket (a longer TTL, direct gets): a replica that starts
        # brings the TTL back and reads with direct gets.
        js = a.broker.js
        stream = (await js.stream_info(f"KV_{OWNERS_BUCKET}")).config
        stream.max_age, stream.allow_direct = 60.0, True
        await js.update_stream(stream)
        c = await as_component("routing", OWNERS_BUCKET, "routing-c")
        assert await c.holder_of(TENANT) == "routing-b"
        status = await (await js.key_value(OWNERS_BUCKET)).status()
        assert status.ttl == TTL and status.stream_info.config.allow_direct
        await b.release(TENANT)
        assert await c.acquire(TENANT)
        await c.release(TENANT)

        # Another component can neither use routing's bucket nor keep one routing's way.
        for component, bucket in (
            ("journey", OWNERS_BUCKET),
            ("gateway", OWNERS_BUCKET),
            ("journey", lease_bucket("journey", "owners")),
            ("routing", lease_bucket("routing", "undeclared")),
        ):
            intruder = await as_component(component, bucket, f"{component}-x")
            with pytest.raises(LeaseStoreUnavailable):
                await intruder.acquire(TENANT)
        refused = " ".join(r.getMessage().lower() for r in caplog.records)
        for stream in ("KV_cxops_routing_owners", "KV_cxops_journey_owners"):
            said = f'permissions violation for publish to "$js.api.stream.create.{stream.lower()}"'
            assert said in refused
        assert "kv_cxops_routing_undeclared" in refused
        # Nor write or read its keys directly.
        journey = await connect(server.url, "journey", seed_file(seeds, "journey"))
        js = journey.nc.jetstream(timeout=1)
        caplog.clear()
        with pytest.raises(TimeoutError):
            await js.publish(f"$KV.{OWNERS_BUCKET}.{TENANT}", b"journey")
        with pytest.raises(TimeoutError):
            await js.get_msg(f"KV_{OWNERS_BUCKET}", subject=f"$KV.{OWNERS_BUCKET}.{TENANT}")
        with pytest.raises(TimeoutError):
            await js.get_msg(
                f"KV_{OWNERS_BUCKET}", subject=f"$KV.{OWNERS_BUCKET}.{TENANT}", direct=True
            )
        await eventually(
            lambda: now(
                sum("permissions violation" in r.getMessage().lower() for r in caplog.records) >= 3
            ),
            what="three permissions violations",
        )


async def now(value: bool) -> bool:
    """A condition already evaluated, for :func:`eventually` (which awaits its check)."""
    return value
