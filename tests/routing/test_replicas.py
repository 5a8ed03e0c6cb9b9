"""Routing as real processes under load: killed with SIGKILL and restarted, and as two replicas
on one NATS and one database where the owner of a tenant dies. Afterwards no task is lost or
doubled, no agent is over capacity, every accepted task stays assigned, and the event log never
shows a task assigned twice."""

import asyncio
import dataclasses
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace

import httpx
import nats
import pytest

from cxops.cli.processes import Process, free_port, http_ok
from cxops.cli.supervisor import Suite
from cxops.common.auth import INTERNAL_TOKEN_HEADER, CallerContext, Role, mint_internal_token
from cxops.routing.consumers import call_owner, case_task
from cxops.routing.events import CaseOpened
from cxops.routing.ownership import NotOwner
from cxops.routing.settings import RoutingSettings
from tests.support.services import eventually
from tests.support.suite import SuiteFactory

pytestmark = pytest.mark.slow

TENANT = "replicas"
LEASE_TTL = 2.0
FAST = {
    "CXOPS_ROUTING_LEASE_TTL_SECONDS": str(LEASE_TTL),
    "CXOPS_ROUTING_OFFER_TIMEOUT_SECONDS": "30",
    "CXOPS_GATEWAY_RATE_LIMIT_PER_SECOND": "100000",
    "CXOPS_GATEWAY_RATE_LIMIT_BURST": "100000",
}
AGENTS = 6
CAPACITY = 2


@asynccontextmanager
async def routing_client(suite: Suite, base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Calls straight to one routing replica, as the gateway makes them."""
    token = mint_internal_token(
        CallerContext(tenant=TENANT, role=Role.ADMIN, subject="test"),
        secret=suite.signing_secret,
        ttl_seconds=3600,
    )
    async with httpx.AsyncClient(
        base_url=f"{base_url}/v1/routing",
        headers={INTERNAL_TOKEN_HEADER: token},
        timeout=30,
        trust_env=False,
    ) as client:
        yield client


async def set_up(client: httpx.AsyncClient) -> list[str]:
    queue = await client.post(
        "/queues", json={"name": "care", "channel": "chat", "requires": {"care": 1}}
    )
    assert queue.status_code == 201, queue.text
    agents = []
    for i in range(AGENTS):
        made = await client.post(
            "/agents",
            json={
                "external_id": f"agent-{i}",
                "name": f"Agent {i}",
                "skills": {"care": 1 + i % 5},
                "channels": {"chat": CAPACITY},
                "status": "available",
            },
        )
        assert made.status_code == 201, made.text
        agents.append(made.json()["id"])
    return agents


@dataclasses.dataclass
class Load:
    """Tasks created and offers accepted while things fail; what the platform was told."""

    created: dict[str, str] = dataclasses.field(default_factory=dict)  # external id -> task id
    accepted: set[str] = dataclasses.field(default_factory=set)  # task ids
    refused: int = 0
    stop: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    async def run(self, client: httpx.AsyncClient, agents: list[str], count: int) -> None:
        for n in range(count):
            if self.stop.is_set():
                return
            external = f"task-{n}"
            while external not in self.created:  # a retry is safe: the external id repeats
                try:
                    answer = await client.post(
                        "/tasks", json={"queue": "care", "external_id": external}
                    )
                except httpx.HTTPError:
                    answer = None
                if answer is not None and answer.status_code == 201:
                    self.created[external] = answer.json()["id"]
                else:
                    self.refused += 1
                    await asyncio.sleep(0.1)
            if n % 3 == 0:
                await self.accept_some(client, agents)

    async def accept_some(self, client: httpx.AsyncClient, agents: list[str]) -> None:
        for agent in agents:
            try:
                offers = await client.get(f"/agents/{agent}/reservations?state=pending")
                if offers.status_code != 200:
                    continue
                for offer in offers.json():
                    answer = await client.post(f"/reservations/{offer['id']}/accept")
                    if answer.status_code == 200:
                        self.accepted.add(offer["task_id"])
            except httpx.HTTPError:
                continue


async def check_invariants(suite: Suite, client: httpx.AsyncClient, load: Load) -> None:
    tasks = (await client.get("/tasks?limit=500")).json()
    by_external = Counter(t["external_id"] for t in tasks)
    assert set(by_external) == set(load.created), "a task was lost or made up"
    assert max(by_external.values()) == 1, "a task was stored twice"
    assert {t["id"] for t in tasks} == set(load.created.values())
    states = {t["id"]: t for t in tasks}
    for task_id in load.accepted:
        assert states[task_id]["state"] == "assigned", states[task_id]
    for agent in (await client.get("/agents")).json():
        held = sum(1 for t in tasks if t["agent_id"] == agent["id"] and t["state"] == "assigned")
        offers = (await client.get(f"/agents/{agent['id']}/reservations?state=pending")).json()
        assert held + len(offers) <= CAPACITY, (agent["external_id"], held, len(offers))
        assert agent["load"].get("chat", 0) == held + len(offers)

    # The gateway's identity may read every stream with consumers of its own.
    connection = await nats.connect(**suite.nats_options("gateway"))
    try:
        js = connection.jetstream()
        subscription = await js.pull_subscribe("cx.routing.task.assigned.v1", stream="CX_ROUTING")
        assigned: Counter[str] = Counter()
        while True:
            try:
                batch = await subscription.fetch(500, timeout=2)
            except (nats.errors.TimeoutError, TimeoutError):  # the client raises either
                break
            for message in batch:
                if (message.headers or {}).get("ce-tenant") == TENANT:
                    assigned[json.loads(message.data)["task_id"]] += 1
    finally:
        await connection.close()
    # An accept whose answer was lost to the kill is assigned without the load knowing it.
    assert load.accepted <= set(assigned)
    assert all(states[task_id]["state"] == "assigned" for task_id in assigned)
    assert max(assigned.values()) == 1, "a task was assigned twice"


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_sigkill_while_tasks_arrive_loses_and_doubles_nothing(
    suite_factory: SuiteFactory, database: str
) -> None:
    suite = await asyncio.to_thread(suite_factory.start, database=database, env=FAST)
    async with routing_client(suite, suite.url("routing")) as client:
        agents = await set_up(client)
        load = Load()
        running = asyncio.create_task(load.run(client, agents, 120))
        await eventually(lambda: asyncio.sleep(0, len(load.created) >= 30), what="30 tasks")
        await asyncio.to_thread(suite.kill, "routing")
        await asyncio.to_thread(suite.start_process, "routing")
        await running
        await load.accept_some(client, agents)
        await check_invariants(suite, client, load)


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_the_other_replica_takes_over_when_the_owner_dies(
    suite_factory: SuiteFactory, database: str
) -> None:
    suite = await asyncio.to_thread(suite_factory.start, database=database, env=FAST)
    owner_url = suite.url("routing")
    spec = suite.spec("routing")
    port = free_port()
    other_url = f"http://127.0.0.1:{port}"
    command = list(spec.command)
    command[command.index("--port") + 1] = str(port)
    other = Process(
        dataclasses.replace(
            spec,
            name="routing-2",
            command=command,
            port=port,
            env={**(spec.env or {}), "CXOPS_ROUTING_INSTANCE_URL": other_url},
            log_file=spec.log_file.with_name("routing-2.log"),
            ready=http_ok(f"{other_url}/readyz"),
        )
    )
    await asyncio.to_thread(other.start)
    try:
        await asyncio.to_thread(other.wait_ready, 60)
        async with (
            routing_client(suite, owner_url) as first,
            routing_client(suite, other_url) as second,
        ):
            agents = await set_up(first)  # the first replica takes the tenant
            # The second forwards to the owner: the same answers either way.
            assert (await second.get("/agents")).json() == (await first.get("/agents")).json()
            load = Load()
            running = asyncio.create_task(load.run(second, agents, 90))
            await eventually(lambda: asyncio.sleep(0, len(load.created) >= 30), what="30 tasks")
            killed_at = time.monotonic()
            await asyncio.to_thread(suite.kill, "routing")

            async def taken_over() -> bool:
                answer = await second.get("/agents")
                return answer.status_code == 200

            await eventually(taken_over, what="the other replica to take over", within=30)
            takeover = time.monotonic() - killed_at
            await running
            await load.accept_some(second, agents)
            await check_invariants(suite, second, load)
        print(f"takeover after {takeover:.2f}s (lease TTL {LEASE_TTL}s)")
        assert takeover <= 2 * LEASE_TTL + 1.0, takeover  # + the scan's and the test's polling
    finally:
        await asyncio.to_thread(other.stop)


async def test_a_case_consumed_by_a_replica_that_does_not_own_the_tenant_reaches_the_owner(
    suite_factory: SuiteFactory,
) -> None:
    """The hop a non-owner's case consumer takes: the task is made by the owner, over its API,
    and a redelivered case stores nothing twice."""
    suite = await asyncio.to_thread(suite_factory.start, database="sqlite", env=FAST)
    async with routing_client(suite, suite.url("routing")) as client:
        await set_up(client)  # the running replica owns the tenant
        settings = RoutingSettings(environment="development", signing_secret=suite.signing_secret)
        case = CaseOpened.model_validate({"case_id": "c-77", "team": "care", "customer_ref": "x"})
        async with httpx.AsyncClient(trust_env=False) as http:
            hop = SimpleNamespace(settings=settings, http=http)
            moved = NotOwner(TENANT, suite.url("routing"))
            for _ in range(2):
                await call_owner(hop, TENANT, moved, "/tasks", case_task(case, "care"))  # type: ignore[arg-type]
        tasks = (await client.get("/tasks", params={"customer_ref": "x"})).json()
        assert [(t["external_id"], t["queue"]) for t in tasks] == [("case-c-77", "care")]
