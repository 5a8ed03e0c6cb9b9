"""The routing service (issue 13): offers through the gateway under a steady load, the engine's
decisions per second inside the service against the bare engine, and one tenant's rebuild from
PostgreSQL. Each part runs alone with the other's ``--skip-`` flag.

1. **Offer latency** on the embedded suite (``start_suite``: routing on its SQLite file, as
   ``cxops up`` runs it). ``--agents`` agents (chat capacity 1, four of eight skills at levels
   2-5, available), each with its offer stream (``GET /v1/routing/agents/{id}/offers``) open
   through the gateway on one integration key, which may open any agent's stream; the gateway's
   upstream pool is raised to hold them all. Tasks (chat, one skill at level 1-2, so about half
   the agents may take each) are sent at a steady ``--rate`` for ``--seconds``, open loop: each
   at its scheduled time whatever the answers do, and its latency counted from that time, so a
   generator that falls behind is not hidden. The latency runs to the ``offer`` event on the
   agent's stream, matched to the send by the task's external id (the offer can arrive before
   the POST's answer). Each offer is accepted and its task completed, so the agents free up.
   The load generator shares the machine's cores with the suite: the rate it achieved, the
   errors and the backlog (tasks sent and not yet offered) are printed with the percentiles.
   Goal: p95 <= 50 ms, p99 <= 150 ms from the POST to the offer.
2. **The engine inside the service**: routing's ``/metrics`` read before and after the load
   give the offers made per second of the operations' ``engine`` phase
   (``cxops_routing_operation_seconds``: their checks, the engine and the rows and events it
   decided, in memory; the database's lookups and the transactions are the ``read`` and
   ``write`` phases, timed per lookup and per transaction, which commits a group of operations:
   the run prints how many per transaction). The baseline is the bare :class:`Engine` in this
   process with the same shape: the same agents, tasks arriving, each offer accepted and the
   task finished a little later, so agents free up. Goal: >= 50% of the bare engine.
3. **Rebuild** of one tenant's engine from PostgreSQL (a throwaway server, as the tests start
   it) with ``--rebuild-agents`` agents (available, chat capacity 1) and ``--rebuild-tasks``
   waiting tasks, bulk-inserted straight into the tables. The tasks require a skill at level 5,
   which no agent has, so all stay waiting and the rebuild makes no offers: it reads the rows,
   builds the engine and commits nothing but the agents' bookkeeping. Timed: the switchboard's
   ``_rebuild`` of a fresh desk, as ``Switchboard.desk()`` builds one when it takes a tenant
   (without the lease). Goal: <= 10 s.

The issue's figures are the defaults, which ``make bench`` runs (about four minutes on a
2-core machine, bounded: POSTs time out after 30 s, the drain after 60 s). Where the machine
cannot sustain ``--rate``, the run says so and what it could not do; run a lower ``--rate`` to
see where it holds. ``--routing-postgres`` puts routing's database on a throwaway PostgreSQL
server instead of the embedded SQLite file (the rest of the suite stays embedded).

    uv run python bench/routing_service.py [--agents 1000] [--rate 200] [--seconds 60]
        [--routing-postgres] [--rebuild-agents 10000] [--rebuild-tasks 100000]
        [--skip-load] [--skip-rebuild]
"""

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import sqlalchemy as sa
from common import ROOT, percentile, start_suite
from prometheus_client.parser import text_string_to_metric_families
from routing import settle, timed

from cxops.cli.supervisor import Suite
from cxops.common.db import Database
from cxops.common.migrations import upgrade
from cxops.routing.app import SPEC
from cxops.routing.changes import AGENTS, QUEUES, TASKS
from cxops.routing.domain.engine import Engine, Policy
from cxops.routing.domain.model import Agent, Presence, Task
from cxops.routing.settings import RoutingSettings
from cxops.routing.switchboard import Desk, Switchboard, policy_for

TENANT = "bench"
SKILLS = [f"s{i}" for i in range(8)]
JSON = {"content-type": "application/json"}
COMPLETE = json.dumps({"handle_seconds": 1, "resolved": True}).encode()

# ------------------------------------------------------------------------------ the shape


def agent_skills(rng: random.Random) -> dict[str, int]:
    return {skill: rng.randint(2, 5) for skill in rng.sample(SKILLS, 4)}


def task_requires(rng: random.Random) -> dict[str, int]:
    return {rng.choice(SKILLS): rng.randint(1, 2)}


# ------------------------------------------------------------------- 1. load through the suite


@dataclass
class Phase:
    """One open-loop run: what was sent, offered and completed, and when."""

    rate: float
    seconds: float
    #: External id -> scheduled send time (perf_counter), until its offer arrives.
    sent: dict[str, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    #: How late each POST left against its schedule (the generator's own lag).
    lags: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    #: External ids offered at least once: a later offer of one is made again (the first timed
    #: out, or was rescinded) and is answered, but its latency is the first's.
    offered_ids: set[str] = field(default_factory=set)
    offered_again: int = 0
    posts: int = 0
    created: int = 0
    offered: int = 0
    completed: int = 0
    sending_seconds: float = 0.0
    backlog_at_end: int = 0


class Desktops:
    """Every agent's offer stream, open through the gateway; each offer is accepted and its task
    completed. Offers are matched to the open-loop phase that sent their task."""

    def __init__(self, suite: Suite, headers: dict[str, str], agent_ids: list[str]) -> None:
        self.base = suite.gateway_url
        self.headers = headers
        self.agent_ids = agent_ids
        self.phase: Phase | None = None
        self.connected = 0
        self.all_connected = asyncio.Event()
        self.stream_errors: Counter[str] = Counter()
        self.answering: set[asyncio.Task[None]] = set()
        #: Set by each offer and each answer finished, for the drain to wait on.
        self.progress = asyncio.Event()
        self.streams = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=len(agent_ids) + 16),
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=None, sock_read=None),
        )
        self.work = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256),
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=30),
        )
        self.readers: list[asyncio.Task[None]] = []

    async def open(self, within: float) -> None:
        self.readers = [asyncio.create_task(self._follow(a)) for a in self.agent_ids]
        async with asyncio.timeout(within):
            await self.all_connected.wait()

    async def close(self) -> None:
        for reader in self.readers:
            reader.cancel()
        await asyncio.gather(*self.readers, *self.answering, return_exceptions=True)
        await self.streams.close()
        await self.work.close()

    async def _follow(self, agent_id: str) -> None:
        url = f"{self.base}/v1/routing/agents/{agent_id}/offers"
        try:
            async with self.streams.get(url) as response:
                if response.status != 200:
                    self.stream_errors[f"stream {response.status}"] += 1
                    return
                fields: dict[str, str] = {}
                async for raw in response.content:
                    line = raw.decode().rstrip("\r\n")
                    if line.startswith(":"):
                        if line == ": connected":
                            self.connected += 1
                            if self.connected == len(self.agent_ids):
                                self.all_connected.set()
                    elif line:
                        name, _, value = line.partition(":")
                        fields[name] = value.removeprefix(" ")
                    elif fields:
                        if fields.get("event") == "offer":
                            self._offered(json.loads(fields["data"]))
                        fields = {}
                self.stream_errors["stream ended"] += 1
        except aiohttp.ClientError as exc:
            self.stream_errors[f"stream {type(exc).__name__}"] += 1

    def _offered(self, offer: dict[str, Any]) -> None:
        received = time.perf_counter()
        self.progress.set()
        phase = self.phase
        task = offer["task"]
        external_id = task["external_id"]
        if phase is None:
            self.stream_errors["offer before any phase"] += 1
            return
        if (scheduled := phase.sent.pop(external_id, None)) is not None:
            phase.latencies.append(received - scheduled)
            phase.offered += 1
            phase.offered_ids.add(external_id)
        elif external_id in phase.offered_ids:
            phase.offered_again += 1
        else:
            self.stream_errors["offer of a task another phase sent"] += 1
        answering = asyncio.create_task(self._answer(phase, offer["reservation"]["id"], task["id"]))
        self.answering.add(answering)
        answering.add_done_callback(self.answering.discard)

    async def _answer(self, phase: Phase, reservation_id: str, task_id: str) -> None:
        routing = f"{self.base}/v1/routing"
        try:
            async with self.work.post(f"{routing}/reservations/{reservation_id}/accept") as r:
                await r.read()
                if r.status != 200:
                    phase.errors[f"accept {r.status}"] += 1
                    return
            async with self.work.post(
                f"{routing}/tasks/{task_id}/complete", data=COMPLETE, headers=JSON
            ) as r:
                await r.read()
                if r.status != 200:
                    phase.errors[f"complete {r.status}"] += 1
                    return
            phase.completed += 1
        except (aiohttp.ClientError, TimeoutError) as exc:
            phase.errors[f"answer {type(exc).__name__}"] += 1
        finally:
            self.progress.set()

    async def send(self, phase: Phase, *, label: str, seed: int) -> Phase:
        """Send ``phase.rate`` tasks a second for ``phase.seconds``, open loop; then wait
        (bounded) for the offers and completions still to come."""
        self.phase = phase
        rng = random.Random(seed)
        url = f"{self.base}/v1/routing/tasks"

        async def one(external_id: str, body: bytes) -> None:
            try:
                async with self.work.post(url, data=body, headers=JSON) as response:
                    await response.read()
                    if response.status == 201:
                        phase.created += 1
                    else:
                        phase.errors[f"POST {response.status}"] += 1
                        phase.sent.pop(external_id, None)
            except (aiohttp.ClientError, TimeoutError) as exc:
                # Left in ``sent``: the task may have been made all the same, and its offer
                # come (late) on a stream.
                phase.errors[f"POST {type(exc).__name__}"] += 1

        posts = []
        interval = 1.0 / phase.rate
        started = time.perf_counter()
        for i in range(round(phase.rate * phase.seconds)):
            scheduled = started + i * interval
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            external_id = f"{label}-{i}"
            body = {"external_id": external_id, "channel": "chat", "requires": task_requires(rng)}
            phase.sent[external_id] = scheduled
            phase.lags.append(time.perf_counter() - scheduled)
            posts.append(asyncio.create_task(one(external_id, json.dumps(body).encode())))
            phase.posts += 1
        phase.sending_seconds = time.perf_counter() - started
        phase.backlog_at_end = len(phase.sent)
        await asyncio.wait(posts, timeout=60)
        deadline = time.monotonic() + 60
        while (phase.sent or self.answering) and (left := deadline - time.monotonic()) > 0:
            self.progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.progress.wait(), timeout=min(left, 1.0))
        return phase


async def create_agents(
    suite: Suite, headers: dict[str, str], count: int, rng: random.Random
) -> list[str]:
    bodies = [
        {
            "external_id": f"agent-{i}",
            "name": f"Agent {i}",
            "skills": agent_skills(rng),
            "channels": {"chat": 1},
            "status": "available",
        }
        for i in range(count)
    ]
    ids: list[str] = []
    pending = iter(bodies)
    async with aiohttp.ClientSession(headers=headers) as session:

        async def worker() -> None:
            for body in pending:
                async with session.post(
                    f"{suite.gateway_url}/v1/routing/agents", json=body
                ) as response:
                    if response.status != 201:
                        raise RuntimeError(
                            f"agent refused: {response.status} {await response.text()}"
                        )
                    ids.append((await response.json())["id"])

        await asyncio.gather(*(worker() for _ in range(8)))
    return ids


async def routing_metrics(suite: Suite) -> dict[str, float]:
    """Routing's own ``/metrics`` (no key: it is not behind the gateway)."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{suite.url('routing')}/metrics") as response:
            text = await response.text()
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            phase = sample.labels.get("phase")
            values[sample.name + (f":{phase}" if phase else "")] = sample.value
    return values


def cpu_seconds(suite: Suite) -> dict[str, float]:
    """CPU time (user + system) so far of each suite process (from ``/proc``) and of this one,
    the load generator."""
    tick = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {}
    for name, process in suite.processes.items():
        try:
            fields = Path(f"/proc/{process.pid}/stat").read_text().rpartition(")")[2].split()
        except (OSError, TypeError):
            continue
        used[name] = (int(fields[11]) + int(fields[12])) / tick
    own = resource.getrusage(resource.RUSAGE_SELF)
    used["load generator"] = own.ru_utime + own.ru_stime
    return used


def report_load(phase: Phase, agents: int) -> None:
    achieved = phase.posts / phase.sending_seconds if phase.sending_seconds else 0.0
    print(
        f"load: {agents:,} agents, {phase.rate:g} tasks/s asked for {phase.seconds:g} s, open "
        f"loop through the gateway"
    )
    print(
        f"  sent {phase.posts:,} in {phase.sending_seconds:.1f} s ({achieved:.1f}/s achieved); "
        f"201 {phase.created:,}, offered {phase.offered:,} (and {phase.offered_again:,} offered "
        f"again, timed out or rescinded), completed {phase.completed:,}"
    )
    print(
        f"  generator lag behind schedule: p50 {percentile(phase.lags, 0.5) * 1000:.1f} ms, "
        f"p99 {percentile(phase.lags, 0.99) * 1000:.1f} ms, max {max(phase.lags) * 1000:.1f} ms"
    )
    print(
        f"  backlog (sent, not yet offered): {phase.backlog_at_end:,} when sending ended, "
        f"{len(phase.sent):,} after the drain"
    )
    print(f"  errors: {dict(phase.errors) or 'none'}")
    behind = [
        f"{phase.backlog_at_end:,} tasks not yet offered when sending ended"
        if phase.backlog_at_end > phase.rate
        else "",
        f"{len(phase.sent):,} never offered" if phase.sent else "",
        f"{sum(phase.errors.values()):,} errors" if phase.errors else "",
        f"{achieved:.1f}/s sent" if achieved < 0.95 * phase.rate else "",
    ]
    reasons = ", ".join(reason for reason in behind if reason)
    print(
        f"  {phase.rate:g} tasks/s sustained on this machine: "
        + (f"no ({reasons})" if reasons else "yes (no errors, under a second's backlog)")
    )
    if phase.latencies:
        values = phase.latencies
        print(
            f"  POST -> offer on the stream: p50 {percentile(values, 0.5) * 1000:.1f} ms, "
            f"p95 {percentile(values, 0.95) * 1000:.1f} ms, "
            f"p99 {percentile(values, 0.99) * 1000:.1f} ms, max {max(values) * 1000:.1f} ms "
            f"(n={len(values):,})   (goal p95 <= 50 ms, p99 <= 150 ms)"
        )


def report_engine(before: dict[str, float], after: dict[str, float], bare: float) -> None:
    def grew(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    offers = grew("cxops_routing_offers_total")
    operations = grew("cxops_routing_operation_seconds_count:engine")
    transactions = grew("cxops_routing_commit_operations_count")
    committed = grew("cxops_routing_commit_operations_sum")
    print(f"engine inside the service ({operations:,.0f} operations, {offers:,.0f} offers):")
    for phase in ("engine", "read", "write"):
        seconds = grew(f"cxops_routing_operation_seconds_sum:{phase}")
        count = grew(f"cxops_routing_operation_seconds_count:{phase}")
        per = seconds / count * 1000 if count else 0.0
        print(f"  {phase:6} {seconds:7.2f} s in all, {count:7,.0f} times, {per:6.3f} ms each")
    if transactions:
        print(
            f"  {committed:,.0f} operations committed by {transactions:,.0f} transactions "
            f"({committed / transactions:.1f} per transaction)"
        )
    engine_seconds = grew("cxops_routing_operation_seconds_sum:engine")
    if not engine_seconds:
        print("  no engine time recorded")
        return
    inside = offers / engine_seconds
    print(f"  offers per engine-second in the service: {inside:10,.0f} decisions/s")
    print(f"  bare engine, same shape, this process:   {bare:10,.0f} decisions/s")
    print(f"  ratio service / bare engine: {inside / bare:.1%}   (goal >= 50%)")


def bare_engine(agents: int, tasks: int, *, in_flight: int, seed: int) -> float:
    """Decisions per second of the bare engine: ``agents`` as in the load, ``tasks`` arriving
    one by one, each offer accepted, each accepted task finished once ``in_flight`` newer ones
    are held (agents free up, as the bench's desktops complete what they accept). The engine's
    calls are timed (:func:`routing.timed`), the loop around them is not."""
    rng = random.Random(seed)
    engine = Engine(Policy())
    now = time.time()
    for i in range(agents):
        engine.add_agent(Agent(f"a{i}", agent_skills(rng), {"chat": 1}, Presence.READY), now)
    requirements = [task_requires(rng) for _ in range(tasks)]
    settle()
    held: deque[str] = deque()
    offers = 0
    millis = 0.0

    def accept(made: Any) -> None:
        nonlocal offers, millis
        for reservation in made:
            offers += 1
            ms, _ = timed(partial(engine.accept, reservation.id, now))
            millis += ms
            held.append(reservation.task_id)

    try:
        for i, requires in enumerate(requirements):
            now += 0.005
            task = Task(f"t{i}", "chat", now, requires, queue="+".join(sorted(requires)))
            ms, made = timed(partial(engine.task_arrived, task, now))
            millis += ms
            accept(made)
            while len(held) > in_flight:
                ms, made = timed(partial(engine.task_finished, held.popleft(), now))
                millis += ms
                accept(made)
    finally:
        gc.unfreeze()
    return offers / (millis / 1000)


async def measure_load(
    agents: int, rate: float, seconds: float, seed: int, *, postgres: bool
) -> None:
    # The baseline first, while only this process runs.
    bare = bare_engine(agents, 20_000, in_flight=10, seed=seed)
    env = {"CXOPS_GATEWAY_UPSTREAM_MAX_CONNECTIONS": str(agents + 512)}
    async with contextlib.AsyncExitStack() as stack:
        database_urls = {}
        if postgres:
            database_urls["routing"] = await stack.enter_async_context(postgres_database())
        suite = await asyncio.to_thread(start_suite, env, database_urls)
        stack.push_async_callback(asyncio.to_thread, suite.stop)
        key = suite.create_api_key(tenant=TENANT, role="integration", name="bench")
        headers = {"Authorization": f"Bearer {key}"}
        made = time.perf_counter()
        agent_ids = await create_agents(suite, headers, agents, random.Random(seed))
        made = time.perf_counter() - made
        desktops = Desktops(suite, headers, agent_ids)
        stack.push_async_callback(desktops.close)
        opened = time.perf_counter()
        await desktops.open(within=180)
        opened = time.perf_counter() - opened
        print(
            f"setup: routing on {'PostgreSQL' if postgres else 'SQLite (embedded)'}; {agents:,} "
            f"agents registered in {made:.1f} s, their offer streams open through the gateway "
            f"in {opened:.1f} s"
        )
        await desktops.send(Phase(rate=min(rate, 10), seconds=2), label="warm", seed=seed)
        before, cpu_before = await routing_metrics(suite), cpu_seconds(suite)
        started = time.perf_counter()
        phase = await desktops.send(Phase(rate=rate, seconds=seconds), label="load", seed=seed)
        elapsed = time.perf_counter() - started
        after, cpu_after = await routing_metrics(suite), cpu_seconds(suite)
        report_load(phase, agents)
        busy = {n: (cpu_after[n] - cpu_before.get(n, 0.0)) / elapsed for n in cpu_after}
        print(
            f"  cores busy over the load and its drain ({elapsed:.0f} s; {os.cpu_count()} here, "
            f"load average {os.getloadavg()[0]:.1f}): "
            + ", ".join(f"{n} {c:.2f}" for n, c in sorted(busy.items(), key=lambda i: -i[1]))
        )
        if desktops.stream_errors:
            print(f"  streams: {dict(desktops.stream_errors)}")
    report_engine(before, after, bare)


# ------------------------------------------------------------------------------- 3. rebuild


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A new database on a throwaway PostgreSQL server, as the tests start one
    (``tests/support/postgres.py``; ``make bench`` puts the repository on the path, a direct
    run gets it here); its asyncpg URL. Stopped and deleted after."""
    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))
    from tests.support.postgres import PostgresServer

    base = Path(tempfile.mkdtemp(prefix="cxops-bench-pg-"))
    server = PostgresServer(base)
    try:
        await asyncio.to_thread(server.start)
        yield await asyncio.to_thread(server.create_database, "bench")
    finally:
        await asyncio.to_thread(server.stop)
        shutil.rmtree(base, ignore_errors=True)


def agent_rows(count: int, rng: random.Random, at: datetime) -> list[dict[str, Any]]:
    return [
        {
            "id": uuid.uuid4(),
            "tenant": TENANT,
            "external_id": f"agent-{i}",
            "name": f"Agent {i}",
            "team": f"team-{i % 20}",
            "skills": {skill: rng.randint(1, 4) for skill in rng.sample(SKILLS, 4)},
            "channels": {"chat": 1},
            "languages": ["en"],
            "pinned_skills": [],
            "status": "available",
            "status_reason": None,
            "status_changed_at": at,
            "last_finished_at": at - timedelta(seconds=rng.random() * 600),
            "consecutive_timeouts": 0,
            "created_at": at,
            "updated_at": at,
            "deleted_at": None,
        }
        for i in range(count)
    ]


def queue_rows(at: datetime) -> list[dict[str, Any]]:
    return [
        {
            "id": uuid.uuid4(),
            "tenant": TENANT,
            "name": f"q-{skill}",
            "channel": "chat",
            "requires": {skill: 5},
            "optional": {},
            "priority": 0,
            "service_level": {"answer_within_seconds": 60, "target": 0.8},
            "relaxation": [],
            "escalation": [],
            "created_at": at,
            "updated_at": at,
        }
        for skill in SKILLS
    ]


def task_rows(count: int, rng: random.Random, at: datetime) -> Iterator[dict[str, Any]]:
    """Waiting tasks over the last hour, each needing level 5 of one skill (no agent has it)."""
    for i in range(count):
        skill = rng.choice(SKILLS)
        yield {
            "id": uuid.uuid4(),
            "tenant": TENANT,
            "external_id": f"task-{i}",
            "idempotency_key": None,
            "request_fingerprint": None,
            "channel": "chat",
            "queue": f"q-{skill}",
            "requires": {skill: 5},
            "optional": {},
            "priority": rng.randint(0, 3),
            "tier": rng.choice(("standard", "standard", "gold", "platinum")),
            "customer_ref": f"cust-{i % 5000}",
            "attributes": {"language": "en"},
            "timeout_seconds": None,
            "state": "pending",
            "reason": None,
            "agent_id": None,
            "team": None,
            "fired_rules": [],
            "created_at": at - timedelta(seconds=3600 * (count - i) / count),
            "expires_at": None,
            "assigned_at": None,
            "wrapping_at": None,
            "ended_at": None,
            "wait_seconds": None,
            "handle_seconds": None,
            "resolved": None,
            "csat": None,
        }


async def fill(db: Database, agents: int, tasks: int, seed: int) -> float:
    """Insert the tenant's rows in bulk (Core executemany, 5,000 rows a statement batch)."""
    rng = random.Random(seed)
    at = datetime.now(UTC)
    started = time.perf_counter()
    async with db.engine.begin() as connection:
        await connection.execute(sa.insert(QUEUES), queue_rows(at))
        await connection.execute(sa.insert(AGENTS), agent_rows(agents, rng, at))
        rows = task_rows(tasks, rng, at)
        while chunk := [row for _, row in zip(range(5000), rows, strict=False)]:
            await connection.execute(sa.insert(TASKS), chunk)
    return time.perf_counter() - started


def rss_mib(field_name: str) -> float | None:
    """A line of /proc/self/status (VmRSS, VmHWM) in MiB, if there is one."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Start VmHWM again from the current RSS (Linux: ``5`` into ``clear_refs``)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


async def measure_rebuild(agents: int, tasks: int, seed: int) -> None:
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(postgres_database())
        await upgrade(url, SPEC.migrations)
        db = Database(url)
        stack.push_async_callback(db.dispose)
        filled = await fill(db, agents, tasks, seed)
        async with db.engine.begin() as connection:
            await connection.execute(sa.text("ANALYZE"))
        settings = RoutingSettings(environment="development", database_url=url)
        # Only the switchboard's database and settings are used by a rebuild.
        board = Switchboard(SimpleNamespace(db=db, settings=settings, broker=None))  # type: ignore[arg-type]
        stack.push_async_callback(board.http.aclose)
        desk = Desk(tenant=TENANT, engine=Engine(policy_for({}, settings)))
        desk.engine = Engine(desk.engine.policy, on_event=desk.record)
        gc.collect()
        rss_before = rss_mib("VmRSS")
        peak_known = reset_peak_rss()
        started = time.perf_counter()
        await board._rebuild(desk)
        seconds = time.perf_counter() - started
        peak = rss_mib("VmHWM") if peak_known else None
        print(
            f"rebuild: one tenant from PostgreSQL, {len(desk.agents):,} agents and "
            f"{len(desk.tasks):,} open tasks ({desk.engine.waiting_count:,} waiting in the "
            f"engine; rows inserted in {filled:.1f} s)"
        )
        print(f"  rebuild {seconds:.2f} s   (goal <= 10 s)")
        if rss_before is not None and peak is not None:
            print(f"  RSS {rss_before:.0f} MiB before, peak {peak:.0f} MiB during the rebuild")
        else:
            maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"  peak RSS of this process so far {maxrss:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=200.0, help="tasks a second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rebuild-agents", type=int, default=10_000)
    parser.add_argument("--rebuild-tasks", type=int, default=100_000)
    parser.add_argument("--skip-load", action="store_true", help="parts 1 and 2 left out")
    parser.add_argument("--skip-rebuild", action="store_true", help="part 3 left out")
    parser.add_argument(
        "--routing-postgres",
        action="store_true",
        help="routing's database on a throwaway PostgreSQL server instead of its SQLite file",
    )
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    if not args.skip_load:
        asyncio.run(
            measure_load(
                args.agents, args.rate, args.seconds, args.seed, postgres=args.routing_postgres
            )
        )
    if not args.skip_rebuild:
        asyncio.run(measure_rebuild(args.rebuild_agents, args.rebuild_tasks, args.seed))


if __name__ == "__main__":
    main()
