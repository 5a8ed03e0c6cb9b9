"""Each tenant's routing engine, live in memory and durable in the database.

The engine (``domain/engine.py``) decides in microseconds from in-memory indexes; the database
holds what it must not forget. A :class:`Desk` is one tenant's engine with its rows; the
:class:`Switchboard` holds the desks of this process. Every change goes the same way, one at a
time per tenant (the desk's worker):

1. the operation checks its input against the desk (unknown queue, skill or channel; a state
   that does not allow it) and raises a problem before anything changes;
2. it changes the engine, which reports every decision to a :class:`Changes`;
3. the rows and the events are written in one transaction (the events through the outbox);
4. only then do offers reach the agents' live streams and the caller get its answer.

Operations that arrive while a transaction is being written wait, and then go together: the
worker applies each in turn to the engine and writes all their changes in one transaction (a
group commit). A tenant's rate is then bounded by the engine, not by one transaction per
operation; each caller still gets its answer only once its own changes are committed. A
repeated task is recognised from memory (the open tasks by external id and idempotency key) and
from one lookup per group for the stored ones, so a group never inserts a task twice.

If the write fails, the engine is ahead of the database: every operation of the group fails,
the desk is marked stale and rebuilt from the database before its next operation, so what the
engine holds is never more than what was committed. A rebuild (also at start) puts agents back
with their presence and bookkeeping, accepted tasks back on their agents, and waiting tasks back
in their order with the escalation rules that already fired and the agents who already declined
them; offers that were pending are rescinded and made again, so every offer an agent sees was
made by the running engine.

Time-driven changes (offer timeouts, relaxation, escalation, a task's time to live) run on a
timer per desk that sleeps until the engine's next due moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import heapq
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

import httpx
import sqlalchemy as sa
from prometheus_client import Counter, Histogram

from cxops.common.db import Database
from cxops.common.errors import Problem
from cxops.common.events.lease import Leases, LeaseStoreUnavailable, lease_bucket, new_holder_id
from cxops.common.service import ServiceState
from cxops.routing import events
from cxops.routing.changes import (
    AGENTS,
    QUEUES,
    RESERVATIONS,
    TASKS,
    Changes,
    Offer,
    clock,
    moment,
    write,
)
from cxops.routing.domain.engine import Engine, Policy
from cxops.routing.domain.escalation import Queue
from cxops.routing.domain.learning import ProficiencyLearner
from cxops.routing.domain.model import (
    DEFAULT_TIERS,
    Agent,
    AttributeValue,
    Presence,
    Task,
)
from cxops.routing.formats import RelaxationSpec, RuleSpec, escalation_rule, relaxation
from cxops.routing.ownership import NotOwner, holder_id, holder_url, tenant_key
from cxops.routing.schemas import (
    AgentStatus,
    StatusUpdate,
)
from cxops.routing.settings import RoutingSettings

log = logging.getLogger("cxops.routing")

T = TypeVar("T")
#: Who owns each tenant's engine: one lease per tenant.
OWNERS_BUCKET = lease_bucket("routing", "owners")

#: Where routing's time goes, per phase: ``engine`` (one operation's checks, the engine's
#: decisions and their rows and events, in memory), ``read`` (a lookup in the database awaited
#: before or during operations: the stored tasks a group's new tasks may repeat, an ended task or
#: reservation) and ``write`` (one transaction, committing a group of operations). Offers per
#: ``engine`` second is the engine's rate in the service.
OPERATION_SECONDS = Histogram(
    "cxops_routing_operation_seconds",
    "Time of routing's operations and transactions, by phase (engine, read, write)",
    ["phase"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
#: Operations committed by each transaction: more than one when they arrive faster than a
#: transaction is written (see the module's documentation).
COMMIT_OPERATIONS = Histogram(
    "cxops_routing_commit_operations",
    "Routing operations committed together by one transaction",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
ENGINE_SECONDS = OPERATION_SECONDS.labels("engine")
READ_SECONDS = OPERATION_SECONDS.labels("read")
WRITE_SECONDS = OPERATION_SECONDS.labels("write")
#: Offers committed and sent to the agents' live streams (those a rebuild makes again too).
OFFERS = Counter("cxops_routing_offers_total", "Offers made to agents")

PRESENCE = {
    AgentStatus.AVAILABLE: Presence.READY,
    AgentStatus.AWAY: Presence.AWAY,
    AgentStatus.BREAK: Presence.AWAY,
    AgentStatus.OFFLINE: Presence.OFFLINE,
}
LIVE = ("pending", "reserved")
WORKING = ("assigned", "wrapping")


def invalid(field_name: str, message: str, *, code: str = "invalid") -> Problem:
    """A 422 naming the body field at fault, shaped like every validation error."""
    return Problem(
        422,
        f"{field_name}: {message}",
        slug="validation-error",
        title="Unprocessable Content",
        errors=[{"field": field_name, "in": "body", "message": message, "code": code}],
    )


def not_found(kind: str, item_id: object) -> Problem:
    return Problem(404, f"No {kind} {item_id} in this tenant.", slug=f"{kind}-not-found")


def conflict(detail: str, **extensions: Any) -> Problem:
    return Problem(409, detail, slug="state-conflict", title="Conflict", **extensions)


@dataclass
class Desk:
    """One tenant's engine and the rows it was built from, kept in step with every commit."""

    tenant: str
    engine: Engine
    queues: dict[str, dict[str, Any]] = field(default_factory=dict)
    agents: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    #: Tasks not yet ended (pending, reserved, assigned, wrapping).
    tasks: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    reservation_ids: dict[int, uuid.UUID] = field(default_factory=dict)
    reservation_numbers: dict[uuid.UUID, int] = field(default_factory=dict)
    #: (expires clock, task id): tasks with a time to live.
    expiries: list[tuple[float, uuid.UUID]] = field(default_factory=list)
    learner: ProficiencyLearner = field(default_factory=ProficiencyLearner)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    subscribers: dict[uuid.UUID, set[asyncio.Queue[Offer | None]]] = field(default_factory=dict)
    stale: bool = False
    changes: Changes | None = None
    #: Operations waiting for the worker, and the worker while it runs.
    calls: list[Call] = field(default_factory=list)
    worker: asyncio.Task[None] | None = None
    #: The tasks in :attr:`tasks` by external id and by idempotency key.
    task_references: dict[Reference, uuid.UUID] = field(default_factory=dict)
    #: Stored tasks the group's new tasks may repeat, found by one lookup per group.
    found: dict[Reference, dict[str, Any]] = field(default_factory=dict)
    agent_external_ids: dict[str, uuid.UUID] = field(default_factory=dict)
    #: The skills and channels some agent or queue has; ``None`` until asked for again after
    #: an operation changed agents or queues (:attr:`Changes.catalogue_changed`).
    catalogue: tuple[frozenset[str], frozenset[str]] | None = None

    def now(self) -> float:
        return max(time.time(), self.engine.now)

    def begin(self) -> Changes:
        self.changes = Changes(
            tenant=self.tenant,
            engine=self.engine,
            reservation_ids=self.reservation_ids,
            reservation_numbers=self.reservation_numbers,
            task_rows=self.tasks,
            agent_rows=self.agents,
        )
        return self.changes

    def record(self, event: Any) -> None:
        """The engine's ``on_event``: into the operation's changes."""
        if self.changes is not None:
            self.changes.on_engine_event(event)

    def known_skills(self) -> frozenset[str]:
        return self._catalogue()[0]

    def known_channels(self) -> frozenset[str]:
        return self._catalogue()[1]

    def _catalogue(self) -> tuple[frozenset[str], frozenset[str]]:
        if self.catalogue is None:
            skills = {s for row in self.agents.values() for s in row["skills"]}
            channels = {c for row in self.agents.values() for c in row["channels"]}
            for queue in self.queues.values():
                skills.update(queue["requires"], queue["optional"])
                channels.add(queue["channel"])
            self.catalogue = frozenset(skills), frozenset(channels)
        return self.catalogue

    def add_agent(self, row: dict[str, Any]) -> None:
        self.agents[row["id"]] = row
        self.agent_external_ids[row["external_id"]] = row["id"]

    def remove_agent(self, agent_id: uuid.UUID) -> None:
        row = self.agents.pop(agent_id)
        self.agent_external_ids.pop(row["external_id"], None)

    def add_task(self, row: dict[str, Any]) -> None:
        self.tasks[row["id"]] = row
        for reference in task_references(row["external_id"], row["idempotency_key"]):
            self.task_references[reference] = row["id"]

    def forget_task(self, task_id: uuid.UUID) -> None:
        row = self.tasks.pop(task_id, None)
        if row is not None:
            for reference in task_references(row["external_id"], row["idempotency_key"]):
                self.task_references.pop(reference, None)

    def earlier_task(self, references: tuple[Reference, ...]) -> dict[str, Any] | None:
        """The task a repeated request refers to, by external id first: open or created by an
        operation not yet committed (from memory), else stored (found for the group)."""
        for reference in references:
            task_id = self.task_references.get(reference)
            if task_id is not None:
                return self.tasks[task_id]
            if (stored := self.found.get(reference)) is not None:
                return stored
        return None

    def next_due(self) -> float:
        heads = [self.engine.next_due() or math.inf]
        if self.expiries:
            heads.append(self.expiries[0][0])
        return min(heads)


#: How a request names the task it would repeat: ``("external_id" | "idempotency_key", value)``.
Reference = tuple[str, str]


def task_references(external_id: str | None, idempotency_key: str | None) -> tuple[Reference, ...]:
    return tuple(
        (kind, value)
        for kind, value in (("external_id", external_id), ("idempotency_key", idempotency_key))
        if value is not None
    )


@dataclass
class Call:
    """An operation waiting for its tenant's worker, and where its answer goes."""

    operation: Callable[[Desk, Changes], Any]
    answer: asyncio.Future[Any]
    #: The tasks it may repeat, looked up in the database with the others of its group.
    references: tuple[Reference, ...] = ()

    def settle(self, result: Any = None, error: BaseException | None = None) -> None:
        if self.answer.done():  # its caller went away
            return
        if isinstance(error, Exception):
            self.answer.set_exception(error)
        elif error is not None:  # the worker was cancelled (the service is stopping)
            self.answer.cancel()
        else:
            self.answer.set_result(result)


async def _rows(session: Any, query: sa.Select[Any]) -> list[dict[str, Any]]:
    """Every row of ``query`` as a plain dict (built from tuples: a rebuild reads many)."""
    result = await session.execute(query)
    keys = list(result.keys())
    return [dict(zip(keys, values, strict=True)) for values in result.all()]


def policy_for(queues: dict[str, dict[str, Any]], settings: RoutingSettings) -> Policy:
    """The engine's policy from the tenant's queues: each queue's relaxation steps, and its
    escalation rules restricted to its own tasks (named ``<queue>/<rule>``)."""
    rules = []
    for name, queue in sorted(queues.items()):
        for spec in queue["escalation"]:
            rule = escalation_rule(RuleSpec.model_validate(spec))
            rules.append(
                replace(
                    rule,
                    name=f"{name}/{rule.name}",
                    when=replace(rule.when, queues=frozenset({name})),
                )
            )
    return Policy(
        tiers=dict(DEFAULT_TIERS),
        relaxation_by_queue={
            name: relaxation(RelaxationSpec.model_validate(s) for s in queue["relaxation"])
            for name, queue in queues.items()
        },
        offer_timeout_seconds=settings.offer_timeout_seconds,
        max_consecutive_timeouts=settings.max_consecutive_timeouts,
        queues={name: Queue(name, q["requires"], q["optional"]) for name, q in queues.items()},
        escalation=tuple(rules),
    )


def engine_agent(row: dict[str, Any]) -> Agent:
    finished = row.get("last_finished_at")
    return Agent(
        str(row["id"]),
        dict(row["skills"]),
        dict(row["channels"]),
        PRESENCE[AgentStatus(row["status"])],
        clock(finished) if finished is not None else 0.0,
        consecutive_timeouts=row.get("consecutive_timeouts", 0),
    )


def engine_task(row: dict[str, Any]) -> Task:
    attributes: dict[str, AttributeValue] = {}
    for name, value in row["attributes"].items():
        if name == "sla_deadline" and isinstance(value, str):
            attributes[name] = clock(datetime.fromisoformat(value))
        elif value is not None:
            attributes[name] = value
    return Task(
        str(row["id"]),
        row["channel"],
        clock(row["created_at"]),
        dict(row["requires"]),
        dict(row["optional"]),
        row["priority"],
        row["tier"],
        row["queue"],
        attributes,
    )


class Switchboard:
    """The live desks of this process (a :class:`cxops.common.service.Component`)."""

    def __init__(self, state: ServiceState) -> None:
        self.db: Database = state.db
        settings = state.settings
        assert isinstance(settings, RoutingSettings)
        self.settings = settings
        self.broker = state.broker
        self.leases = Leases(
            state.broker,
            bucket=OWNERS_BUCKET,
            holder=holder_id(settings.instance_url, new_holder_id()),
            ttl_seconds=settings.lease_ttl_seconds,
            replicas=settings.stream_replicas,
        )
        #: The hop to another replica that owns a tenant (no read timeout: offer streams).
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.forward_timeout_seconds, read=None), trust_env=False
        )
        self.desks: dict[str, Desk] = {}
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._building: dict[str, asyncio.Lock] = {}
        self._keeping: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Keep the leases, and take every tenant with work that has no owner (at start, and
        whenever an owner dies), in the background: NATS may not be reachable yet."""
        self._keeping = asyncio.create_task(self._keep(), name="cxops-routing-ownership")

    async def stop(self) -> None:
        workers = [desk.worker for desk in self.desks.values()]
        tasks = [t for t in [self._keeping, *self._timers.values(), *workers] if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.broker.is_connected:
            await self.leases.release_all()  # the others take over at once, not after the TTL
        await self.http.aclose()

    async def _keep(self) -> None:
        await asyncio.gather(self.leases.run(self._lost), self._scan())

    async def _scan(self) -> None:
        while True:
            if self.broker.is_connected:
                try:
                    for tenant in await self._tenants_with_work():
                        if tenant not in self.desks:
                            with contextlib.suppress(NotOwner):
                                await self.desk(tenant)
                except Exception:
                    log.exception("routing could not scan for tenants without an owner")
            await asyncio.sleep(self.leases.renew_interval)

    async def _tenants_with_work(self) -> list[str]:
        async with self.db.transaction() as session:
            tenants = await session.scalars(
                sa.union(
                    sa.select(AGENTS.c.tenant).where(AGENTS.c.deleted_at.is_(None)),
                    sa.select(TASKS.c.tenant).where(TASKS.c.state.in_(LIVE + WORKING)),
                ).execution_options(all_tenants=True)
            )
            return sorted(set(tenants))

    def _lost(self, key: str) -> None:
        for tenant in [t for t in self.desks if tenant_key(t) == key]:
            log.warning("routing lost tenant %s to another replica", tenant)
            self._drop(tenant)

    def _drop(self, tenant: str) -> None:
        """Forget a tenant this replica no longer owns: its timer stops, its offer streams end
        (their clients reconnect, through the owner)."""
        desk = self.desks.pop(tenant, None)
        timer = self._timers.pop(tenant, None)
        if timer is not None:
            timer.cancel()
        if desk is not None:
            desk.stale = True
            calls, desk.calls = desk.calls, []
            for call in calls:  # not run: their callers ask the new owner
                call.settle(error=NotOwner(tenant, None, reason="ownership moved during the call"))
            for listeners in desk.subscribers.values():
                for queue in listeners:
                    queue.put_nowait(None)

    # -------------------------------------------------------------- the pipeline

    async def desk(self, tenant: str) -> Desk:
        """The tenant's desk, owned here; :class:`NotOwner` if another replica owns it."""
        key = tenant_key(tenant)
        desk = self.desks.get(tenant)
        if desk is not None and self.leases.holds(key):
            return desk
        building = self._building.setdefault(tenant, asyncio.Lock())
        async with building:
            desk = self.desks.get(tenant)
            if desk is not None and self.leases.holds(key):
                return desk
            self._drop(tenant)
            await self._own(tenant, key)
            desk = Desk(tenant=tenant, engine=Engine(policy_for({}, self.settings)))
            desk.engine = Engine(desk.engine.policy, on_event=desk.record)
            desk.stale = True
            self.desks[tenant] = desk
            self._timers[tenant] = asyncio.create_task(
                self._timer(desk), name=f"cxops-routing-timer-{tenant}"
            )
            await self.run(tenant, lambda desk, changes: None)
        return desk

    async def _own(self, tenant: str, key: str) -> None:
        """Take the tenant's lease, or raise :class:`NotOwner` saying who has it."""
        for _ in range(50):  # the broker connects in the background at start
            if self.broker.is_connected:
                break
            await asyncio.sleep(0.1)
        try:
            if await self.leases.acquire(key):
                return
            holder = await self.leases.holder_of(key)
        except LeaseStoreUnavailable as exc:
            raise NotOwner(tenant, None, reason=f"the lease store is unavailable ({exc})") from exc
        raise NotOwner(tenant, holder_url(holder) if holder else None)

    async def run(
        self,
        tenant: str,
        operation: Callable[[Desk, Changes], T | Awaitable[T]],
        *,
        references: tuple[Reference, ...] = (),
    ) -> T:
        """Apply ``operation`` to the tenant's engine and answer once what it changed is
        committed (with the operations of its group); ``references`` name the stored tasks it
        may repeat (see :meth:`Desk.earlier_task`)."""
        desk = await self.desk(tenant)
        call = Call(operation, asyncio.get_running_loop().create_future(), references)
        desk.calls.append(call)
        if desk.worker is None:
            desk.worker = asyncio.create_task(self._work(desk), name=f"cxops-routing-{tenant}")
        result: T = await call.answer
        return result

    async def _work(self, desk: Desk) -> None:
        """Run the desk's calls, a group at a time: all those that arrived meanwhile."""
        try:
            while desk.calls:
                group, desk.calls = desk.calls, []
                try:
                    await self._group(desk, group)
                except BaseException as exc:
                    desk.stale = True
                    gone = NotOwner(desk.tenant, None, reason="ownership moved during the call")
                    for call in group:
                        call.settle(error=gone if self.desks.get(desk.tenant) is not desk else exc)
                    if not isinstance(exc, Exception):
                        raise
                    log.exception("routing could not run operations of tenant %s", desk.tenant)
                finally:
                    desk.found.clear()
        finally:
            desk.worker = None

    async def _group(self, desk: Desk, group: list[Call]) -> None:
        tenant = desk.tenant
        if not self.leases.holds(tenant_key(tenant)) or self.desks.get(tenant) is not desk:
            self._drop(tenant)
            raise NotOwner(tenant, None, reason="ownership moved during the call")
        if desk.stale:
            await self._rebuild(desk)
        await self._look_up(desk, group)
        applied: list[tuple[Call, Changes, Any]] = []
        for i, call in enumerate(group):
            if call.answer.done():  # its caller went away before it ran: nothing happened
                continue
            outcome = await self._apply(desk, call)
            if outcome is not None:
                applied.append((call, *outcome))
            if desk.stale:  # the operation failed half-way: the rest wait for a rebuild
                desk.calls[:0] = group[i + 1 :]
                del group[i + 1 :]
                break
        await self._commit(desk, applied)

    async def _look_up(self, desk: Desk, group: list[Call]) -> None:
        """Find, in one query, the stored tasks the group's new tasks may repeat (those not
        open in memory)."""
        wanted: dict[str, set[str]] = {}
        for call in group:
            for kind, value in call.references:
                if (kind, value) not in desk.task_references:
                    wanted.setdefault(kind, set()).add(value)
        if not wanted:
            return
        query = sa.select(TASKS).where(
            TASKS.c.tenant == desk.tenant,
            sa.or_(*(TASKS.c[kind].in_(values) for kind, values in wanted.items())),
        )
        started = time.perf_counter()
        # One hand-off to the database's writer (on SQLite, one thread hop, not one per step).
        rows = await self.db.run_transaction(
            lambda connection, info: [dict(row) for row in connection.execute(query).mappings()]
        )
        READ_SECONDS.observe(time.perf_counter() - started)
        for row in rows:
            for reference in task_references(row["external_id"], row["idempotency_key"]):
                desk.found[reference] = row

    async def _apply(self, desk: Desk, call: Call) -> tuple[Changes, Any] | None:
        """Run one operation on the engine; its changes, or ``None`` when it was refused (its
        caller has the problem)."""
        changes = desk.begin()
        started = time.perf_counter()
        try:
            result = call.operation(desk, changes)
            if asyncio.iscoroutine(result):
                result = await result
            changes.settle_agents()
        except Problem as problem:
            # Refused before the engine changed (checks come first); nothing to undo.
            if changes.events or changes.task_updates or changes.reservation_inserts:
                desk.stale = True
            call.settle(error=problem)
            return None
        except Exception as exc:  # noqa: BLE001 - handed to the call it belongs to
            desk.stale = True
            call.settle(error=exc)
            return None
        finally:
            desk.changes = None
        ENGINE_SECONDS.observe(time.perf_counter() - started - changes.read_seconds)
        if changes.read_seconds:
            READ_SECONDS.observe(changes.read_seconds)
        if changes.catalogue_changed:
            desk.catalogue = None
        return changes, result

    async def _commit(self, desk: Desk, applied: list[tuple[Call, Changes, Any]]) -> None:
        """Write the group's changes in one transaction, then answer each of its calls."""
        writing = [changes for _, changes, _ in applied if not changes.empty]
        if writing:
            started = time.perf_counter()
            try:
                await self.db.run_transaction(partial(write, writing))
            except Exception as exc:  # noqa: BLE001 - handed to every call of the group
                desk.stale = True
                for call, _, _ in applied:
                    call.settle(error=exc)
                return
            WRITE_SECONDS.observe(time.perf_counter() - started)
            COMMIT_OPERATIONS.observe(len(writing))
        for call, changes, result in applied:
            self._committed(desk, changes)
            call.settle(result)

    def _committed(self, desk: Desk, changes: Changes) -> None:
        for task_id, values in changes.task_updates.items():
            if values.get("state", "pending") not in LIVE + WORKING:
                desk.forget_task(task_id)
        OFFERS.inc(len(changes.offers))
        for offer in changes.offers:
            for queue in desk.subscribers.get(offer.agent_id, ()):
                queue.put_nowait(offer)
        desk.wake.set()

    async def _rebuild(self, desk: Desk) -> None:
        """Build the tenant's engine again from the database (see the module's documentation).

        The cycle collector waits meanwhile: a rebuild makes millions of objects, none of them
        garbage, and the collector would walk them again and again as they are made (over a
        third of a large rebuild's time, bench/routing_service.py)."""
        collecting = gc.isenabled()
        gc.disable()
        try:
            await self._build(desk)
        finally:
            if collecting:
                gc.enable()

    async def _build(self, desk: Desk) -> None:
        tenant = desk.tenant
        async with self.db.transaction() as session:
            queues = {
                row["name"]: row
                for row in await _rows(session, sa.select(QUEUES).where(QUEUES.c.tenant == tenant))
            }
            agents = {
                row["id"]: row
                for row in await _rows(
                    session,
                    sa.select(AGENTS).where(
                        AGENTS.c.tenant == tenant, AGENTS.c.deleted_at.is_(None)
                    ),
                )
            }
            tasks = await _rows(
                session,
                sa.select(TASKS)
                .where(TASKS.c.tenant == tenant, TASKS.c.state.in_(LIVE + WORKING))
                .order_by(TASKS.c.created_at, TASKS.c.id),
            )
            # The offers of the open tasks, by a subquery: there may be more tasks than a
            # statement may carry parameters.
            open_tasks = sa.select(TASKS.c.id).where(
                TASKS.c.tenant == tenant, TASKS.c.state.in_(LIVE + WORKING)
            )
            reservations = (
                await session.execute(
                    sa.select(
                        RESERVATIONS.c.id,
                        RESERVATIONS.c.task_id,
                        RESERVATIONS.c.agent_id,
                        RESERVATIONS.c.state,
                    ).where(
                        RESERVATIONS.c.tenant == tenant,
                        RESERVATIONS.c.task_id.in_(open_tasks.scalar_subquery()),
                    )
                )
            ).all()
        desk.queues, desk.catalogue = queues, None
        desk.agents, desk.agent_external_ids = {}, {}
        for row in agents.values():
            desk.add_agent(row)
        desk.tasks, desk.task_references = {}, {}
        for row in tasks:
            desk.add_task(row)
        desk.reservation_ids.clear()
        desk.reservation_numbers.clear()
        desk.learner = ProficiencyLearner()
        desk.engine = Engine(policy_for(queues, self.settings), on_event=desk.record)
        desk.expiries = [
            (clock(row["expires_at"]), row["id"]) for row in tasks if row["expires_at"] is not None
        ]
        heapq.heapify(desk.expiries)
        declined: dict[uuid.UUID, set[str]] = {}
        pending: list[uuid.UUID] = []
        for reservation_id, task_id, agent_id, state in reservations:
            if state in ("rejected", "timeout"):
                declined.setdefault(task_id, set()).add(str(agent_id))
            elif state == "pending":
                pending.append(reservation_id)
        changes = desk.begin()
        try:
            now = desk.now()
            at = moment(now)
            for reservation_id in pending:  # offered by an engine that is gone: made again
                changes.reservation_updates[reservation_id] = {"state": "rescinded", "ended_at": at}
            for row in agents.values():
                desk.engine.add_agent(engine_agent(row), now)
                desk.learner.track(str(row["id"]), row["skills"])
                for skill in row["pinned_skills"]:
                    if skill in row["skills"]:
                        desk.learner.set_manual(str(row["id"]), skill, row["skills"][skill], now)
            for row in tasks:
                if row["state"] in WORKING and row["agent_id"] in agents:
                    desk.engine.restore_assignment(
                        engine_task(row),
                        str(row["agent_id"]),
                        now,
                        fired=row["fired_rules"],
                        declined_by=declined.get(row["id"], ()),
                    )
            for row in tasks:
                if row["state"] in LIVE:
                    desk.engine.restore_task(
                        engine_task(row),
                        now,
                        fired=row["fired_rules"],
                        declined_by=declined.get(row["id"], ()),
                    )
                elif row["agent_id"] not in agents:  # its agent is gone: back in the queue
                    changes.update_task(row["id"], state="pending", agent_id=None)
                    desk.engine.restore_task(engine_task(row), now, fired=row["fired_rules"])
            changes.settle_agents()
            await self.db.run_transaction(partial(write, [changes]))
        finally:
            desk.changes = None
        desk.stale = False
        self._committed(desk, changes)
        log.info(
            "routing rebuilt tenant %s: %d agents, %d open tasks, %d offers made again",
            tenant,
            len(agents),
            len(tasks),
            len(changes.offers),
        )

    async def _timer(self, desk: Desk) -> None:
        """Run what falls due: offer timeouts, relaxation and escalation, times to live."""
        while True:
            due = desk.next_due()
            delay = None if math.isinf(due) else max(0.0, due - time.time())
            desk.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(desk.wake.wait(), timeout=delay)
            if desk.next_due() > time.time():
                continue
            try:
                await self.run(desk.tenant, _tick)
            except Exception:
                log.exception("routing timer of tenant %s failed; retrying", desk.tenant)
                await asyncio.sleep(1.0)

    # ---------------------------------------------------------------- live offers

    @contextlib.asynccontextmanager
    async def offers_of(
        self, tenant: str, agent_id: uuid.UUID
    ) -> AsyncIterator[asyncio.Queue[Offer | None]]:
        """A queue of the offers made to the agent from now on, while the block runs."""
        desk = await self.desk(tenant)
        queue: asyncio.Queue[Offer | None] = asyncio.Queue()
        desk.subscribers.setdefault(agent_id, set()).add(queue)
        try:
            yield queue
        finally:
            listeners = desk.subscribers.get(agent_id, set())
            listeners.discard(queue)
            if not listeners:
                desk.subscribers.pop(agent_id, None)
                self._after_grace(desk, agent_id)

    def _after_grace(self, desk: Desk, agent_id: uuid.UUID) -> None:
        """An agent whose every live stream dropped goes offline after the grace period,
        unless a stream came back meanwhile; its pending offers are rescinded."""
        grace = self.settings.stream_grace_seconds

        async def check() -> None:
            await asyncio.sleep(grace)
            if desk.subscribers.get(agent_id) or agent_id not in desk.agents:
                return
            if desk.agents[agent_id]["status"] == AgentStatus.OFFLINE:
                return
            with contextlib.suppress(Problem):
                await self.run(
                    desk.tenant,
                    lambda d, c: set_agent_status(
                        d,
                        c,
                        agent_id,
                        StatusUpdate(
                            status=AgentStatus.OFFLINE, reason="the agent's live stream dropped"
                        ),
                    ),
                )

        asyncio.get_running_loop().create_task(check())


# ------------------------------------------------------------------- operations
#
# Each takes the desk and the operation's changes, checks first and changes after.


def _tick(desk: Desk, changes: Changes) -> None:
    now = desk.now()
    desk.engine.tick(now)
    while desk.expiries and desk.expiries[0][0] <= now:
        _, task_id = heapq.heappop(desk.expiries)
        row = desk.tasks.get(task_id)
        if row is not None and row["state"] in LIVE:
            end_unanswered(desk, changes, task_id, "timed_out", now)


def end_unanswered(
    desk: Desk, changes: Changes, task_id: uuid.UUID, reason: str, now: float
) -> None:
    row = desk.tasks[task_id]
    desk.engine.cancel_task(str(task_id), now)
    at = moment(now)
    waited = max(0.0, now - clock(row["created_at"]))
    state = (
        "abandoned"
        if reason == "abandoned"
        else ("timed_out" if reason == "timed_out" else "canceled")
    )
    changes.update_task(task_id, state=state, reason=reason, ended_at=at, agent_id=None)
    if state == "abandoned":
        changes.publish(
            events.TASK_ABANDONED,
            task_id=task_id,
            queue=row["queue"],
            channel=row["channel"],
            waited_seconds=waited,
            abandoned_at=at,
        )
    else:
        changes.publish(
            events.TASK_CANCELED,
            task_id=task_id,
            queue=row["queue"],
            channel=row["channel"],
            reason=reason,
            waited_seconds=waited,
            canceled_at=at,
        )


def set_agent_status(
    desk: Desk, changes: Changes, agent_id: uuid.UUID, update: StatusUpdate
) -> None:
    if agent_id not in desk.agents:
        raise not_found("agent", agent_id)
    now = desk.now()
    engine = desk.engine
    presence = PRESENCE[update.status]
    if presence is Presence.READY:
        engine.agent_available(str(agent_id), now)
    elif presence is Presence.AWAY:
        engine.agent_away(str(agent_id), now)
    else:
        engine.agent_offline(str(agent_id), now)
    changes.touched_agents.add(agent_id)
    changes.set_status(agent_id, update.status.value, moment(now), reason=update.reason)
