"""The delivery worker against both databases: several workers never send one delivery at
once, a worker that dies mid-send leaves it to another after its lease, and outside development
the address checks hold at creation and again at every attempt (DNS rebinding)."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cxops.common.db import Database
from cxops.common.events import Event
from cxops.common.migrations import upgrade
from cxops.common.service import cancel_and_wait
from cxops.gateway.app import MIGRATIONS
from cxops.gateway.models import WebhookDelivery
from cxops.gateway.settings import GatewaySettings
from cxops.gateway.webhooks import service
from cxops.gateway.webhooks.delivery import DeliveryWorker, webhook_client
from cxops.gateway.webhooks.retries import AttemptResult
from cxops.gateway.webhooks.schemas import EndpointCreate
from cxops.gateway.webhooks.sealing import SecretSealer
from tests.gateway.conftest import SECRET, running_gateway
from tests.gateway.test_auth import assert_problem
from tests.gateway.webhook_receiver import Receiver, receiving
from tests.support.services import eventually

#: Production refuses to start without NATS credentials; these gateways never reach NATS.
PRODUCTION_NATS = {"nats_user": "gateway", "nats_password": "not-used-in-these-tests"}

TYPE = "cx.feedback.case.opened.v1"


def settings_for(database_url: str, **overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {
        "environment": "development",
        "database_url": database_url,
        "signing_secret": SECRET,
        "webhook_poll_seconds": 0.05,
        "webhook_retry_schedule_seconds": (0.05,),
        "log_json": False,
    }
    return GatewaySettings(**(values | overrides))


class Workers:
    """Delivery workers on one database, each with an engine of its own, as gateway replicas
    have."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.sealer = SecretSealer(settings.signing_secret)
        self.databases: list[Database] = []
        self.clients = [webhook_client(timeout=settings.webhook_timeout_seconds)]

    def worker(self, clock: Callable[[], datetime] | None = None) -> DeliveryWorker:
        db = Database(self.settings.database_url)
        self.databases.append(db)
        extra: dict[str, Any] = {"clock": clock} if clock else {}
        return DeliveryWorker(
            db=db, settings=self.settings, sealer=self.sealer, http=self.clients[0], **extra
        )

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()
        for db in self.databases:
            await db.dispose()


@pytest.fixture
async def workers(database_url: str) -> AsyncIterator[Workers]:
    await upgrade(database_url, MIGRATIONS)
    pool = Workers(settings_for(database_url))
    yield pool
    await pool.close()


async def pending(workers: Workers, receiver: Receiver, count: int) -> list[str]:
    """An endpoint of tenant acme at ``receiver`` and ``count`` pending deliveries; their
    event ids."""
    async with workers.worker().db.transaction() as session:
        await service.create_endpoint(
            session,
            tenant="acme",
            body=EndpointCreate(url=receiver.url, event_types=[TYPE]),
            sealer=workers.sealer,
            checked=False,
            resolver=unused_resolver,
            now=datetime.now(UTC),
        )
        events = [
            Event.new(subject=TYPE, source="/cxops/feedback", tenant="acme", data={"i": i})
            for i in range(count)
        ]
        for event in events:
            await service.deliveries_for_events(session, events=[event], now=datetime.now(UTC))
    return [event.id for event in events]


async def unused_resolver(host: str, port: int) -> list[str]:
    raise AssertionError("no resolution expected in development")


async def statuses(db: Database) -> list[tuple[str, int]]:
    async with db.sessionmaker() as session:
        rows = await session.execute(
            sa.select(WebhookDelivery.status, WebhookDelivery.attempts)  # type: ignore[call-overload]
        )
        return [(row[0], row[1]) for row in rows]


async def test_replicas_never_send_one_delivery_twice(workers: Workers) -> None:
    async with receiving() as receiver:
        ids = await pending(workers, receiver, 40)
        replicas = [workers.worker() for _ in range(3)]
        tasks = [asyncio.create_task(replica.run()) for replica in replicas]
        try:

            async def all_sent() -> bool:
                found = await statuses(workers.databases[0])
                return len(found) == 40 and all(status == "succeeded" for status, _ in found)

            await eventually(all_sent, what="every delivery to be sent", within=30)
        finally:
            await cancel_and_wait(tasks, deadline_seconds=10)
        assert sorted(r.webhook_id for r in receiver.received) == sorted(ids)
        assert {attempts for _, attempts in await statuses(workers.databases[0])} == {1}


async def test_a_worker_that_dies_mid_send_leaves_the_delivery_to_another_after_its_lease(
    workers: Workers,
) -> None:
    async with receiving() as receiver:
        (event_id,) = await pending(workers, receiver, 1)
        start = datetime.now(UTC)
        lease = timedelta(seconds=workers.settings.webhook_lease_seconds)
        dying = workers.worker(clock=lambda: start)
        (held,) = await dying.claim(limit=10)
        assert held.attempts == 1 and held.event_id == event_id

        early = workers.worker(clock=lambda: start + lease - timedelta(seconds=1))
        assert await early.claim(limit=10) == []
        late = workers.worker(clock=lambda: start + lease + timedelta(seconds=1))
        (taken,) = await late.claim(limit=10)
        assert taken.id == held.id and taken.attempts == 2
        assert taken.lease_token != held.lease_token

        await dying.record(held, AttemptResult(204))  # too late: the lease is another's now
        assert await statuses(workers.databases[0]) == [("pending", 2)]
        await late.send(taken)
        assert await statuses(workers.databases[0]) == [("succeeded", 2)]
        assert [r.webhook_id for r in receiver.received] == [event_id]


def resolver_of(answers: dict[str, list[list[str]]]) -> Any:
    """Each lookup of a name gets its next answer (the last one repeats): DNS that changes."""
    calls: dict[str, int] = {}

    async def resolve_name(host: str, port: int) -> list[str]:
        index = calls.get(host, 0)
        calls[host] = index + 1
        return answers[host][min(index, len(answers[host]) - 1)]

    return resolve_name


async def test_outside_development_only_https_to_public_addresses(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, environment="production", **PRODUCTION_NATS) as gateway:
        gateway.state.webhooks.resolver = resolver_of(
            {
                "hooks.example.com": [["93.184.216.34"]],
                "internal.example.com": [["10.0.0.8"]],
                "metadata.example.com": [["169.254.169.254"]],
                "split.example.com": [["93.184.216.34", "127.0.0.1"]],
            }
        )
        admin = await gateway.key(tenant="acme")
        refused = [
            "http://hooks.example.com/x",
            "https://127.0.0.1/x",
            "https://[::1]/x",
            "https://10.1.1.1/x",
            "https://169.254.169.254/latest/meta-data",
            "https://[fd00:ec2::254]/x",
            "https://internal.example.com/x",
            "https://metadata.example.com/x",
            "https://split.example.com/x",
        ]
        for url in refused:
            response = await gateway.client.post(
                "/v1/webhooks/endpoints", headers=admin, json={"url": url, "event_types": [TYPE]}
            )
            problem = assert_problem(response, 422)
            assert [error["field"] for error in problem["errors"]] == ["url"], url
        created = await gateway.client.post(
            "/v1/webhooks/endpoints",
            headers=admin,
            json={"url": "https://hooks.example.com/x", "event_types": [TYPE]},
        )
        assert created.status_code == 201, created.text
        patched = await gateway.client.patch(
            f"/v1/webhooks/endpoints/{created.json()['id']}",
            headers=admin,
            json={"url": "https://internal.example.com/x"},
        )
        assert [e["field"] for e in assert_problem(patched, 422)["errors"]] == ["url"]


async def test_a_name_that_turns_internal_after_creation_is_refused_at_delivery(
    tmp_path: Path,
) -> None:
    async with running_gateway(tmp_path, environment="production", **PRODUCTION_NATS) as gateway:
        # Public when the endpoint is written, loopback when the delivery is attempted.
        gateway.state.webhooks.resolver = resolver_of(
            {"rebind.example.com": [["93.184.216.34"], ["127.0.0.1"]]}
        )
        admin = await gateway.key(tenant="acme")
        created = await gateway.client.post(
            "/v1/webhooks/endpoints",
            headers=admin,
            json={"url": "https://rebind.example.com/x", "event_types": [TYPE]},
        )
        assert created.status_code == 201, created.text
        sent = await gateway.client.post(
            f"/v1/webhooks/endpoints/{created.json()['id']}/test", headers=admin
        )
        assert sent.status_code == 200, sent.text
        delivery = sent.json()
        assert delivery["status"] == "pending" and delivery["last_response_code"] is None
        assert "refused destination" in delivery["last_error"]
        assert "127.0.0.1 is a loopback address" in delivery["last_error"]


async def test_endpoint_ids_are_uuids(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, environment="development") as gateway:
        admin = await gateway.key(tenant="acme")
        response = await gateway.client.get("/v1/webhooks/endpoints/not-a-uuid", headers=admin)
        assert_problem(response, 422)
        missing = await gateway.client.get(f"/v1/webhooks/endpoints/{uuid.uuid4()}", headers=admin)
        assert_problem(missing, 404)
