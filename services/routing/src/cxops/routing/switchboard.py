"""Each tenant's routing engine, live in memory and durable in the database.

The engine (``domain/engine.py``) decides in microseconds from in-memory indexes; the database
holds what it must not forget. A :class:`Desk` is one tenant's engine with its rows; the
:class:`Switchboard` holds the desks of this process. Every change goes the same way, one at a
time per tenant (the desk's lock):

1. the operation checks its input against the desk (unknown queue, skill or channel; a state
   that does not allow it) and raises a problem before anything changes;
2. it changes the engine, which reports every decision to a :class:`Changes`;
3. the rows and the events are written in one transaction (the events through the outbox);
4. only then do offers reach the agents' live streams and the caller get its answer.

If the write fails, the engine is ahead of the database: the desk is marked stale and rebuilt
from the database before its next operation, so what the engine holds is never more than what
was committed. A rebuild (also at start) puts agents back with their presence and bookkeeping,
accepted tasks back on their agents, and waiting tasks back in their order with the escalation
rules that already fired and the agents who already declined them; offers that were pending are
rescinded and made again, so every offer an agent sees was made by the running engine.

Time-driven changes (offer timeouts, relaxation, escalation, a task's time to live) run on a
timer per desk that sleeps until the engine's next due moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
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

#: Where an operation's time goes, per phase: ``engine`` (its checks, the engine's decisions
#: and their rows and events, in memory), ``read`` (the lookups in the database it awaited: an
#: earlier task with the same external id or idempotency key, an ended task or reservation) and
#: ``write`` (the transaction). Offers per ``engine`` second is the engine's rate in the service.
OPERATION_SECONDS = Histogram(
    "cxops_routing_operation_seconds",
    "Time of each committed routing operation, by phase (engine, read, write)",
    ["phase"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
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
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    subscribers: dict[uuid.UUID, set[asyncio.Queue[Offer | None]]] = field(default_factory=dict)
    stale: bool = False
    changes: Changes | None = None

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

    def known_skills(self) -> set[str]:
        skills = {s for row in self.agents.values() for s in row["skills"]}
        for queue in self.queues.values():
            skills.update(queue["requires"], queue["optional"])
        return skills

    def known_channels(self) -> set[str]:
        channels = {c for row in self.agents.values() for c in row["channels"]}
        return channels | {queue["channel"] for queue in self.queues.values()}

    def next_due(self) -> float:
        heads = [self.engine.next_due() or math.inf]
        if self.expiries:
            heads.append(self.expiries[0][0])
        return min(heads)


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
        tasks = [t for t in [self._keeping, *self._timers.values()] if t is not None]
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

    async def run(self, tenant: str, operation: Callable[[Desk, Changes], T | Awaitable[T]]) -> T:
        """Apply ``operation`` to the tenant's engine and commit what it changed, alone."""
        desk = await self.desk(tenant)
        async with desk.lock:
            if not self.leases.holds(tenant_key(tenant)) or self.desks.get(tenant) is not desk:
                self._drop(tenant)
                raise NotOwner(tenant, None, reason="ownership moved during the call")
            if desk.stale:
                await self._rebuild(desk)
            changes = desk.begin()
            try:
                started = time.perf_counter()
                result = operation(desk, changes)
                if asyncio.iscoroutine(result):
                    result = await result
                changes.settle_agents()
                decided = time.perf_counter()
                await self.db.run_transaction(changes.write)
                WRITE_SECONDS.observe(time.perf_counter() - decided)
                ENGINE_SECONDS.observe(decided - started - changes.read_seconds)
                READ_SECONDS.observe(changes.read_seconds)
            except Problem:
                # Refused before the engine changed (checks come first); nothing to undo.
                if changes.events or changes.task_updates or changes.reservation_inserts:
                    desk.stale = True
                raise
            except BaseException:
                desk.stale = True
                raise
            finally:
                desk.changes = None
            self._committed(desk, changes)
            return result  # type: ignore[return-value]

    def _committed(self, desk: Desk, changes: Changes) -> None:
        for task_id, row in list(desk.tasks.items()):
            if row["state"] not in LIVE + WORKING:
                del desk.tasks[task_id]
        OFFERS.inc(len(changes.offers))
        for offer in changes.offers:
            for queue in desk.subscribers.get(offer.agent_id, ()):
                queue.put_nowait(offer)
        desk.wake.set()

    async def _rebuild(self, desk: Desk) -> None:
        """Build the tenant's engine again from the database (see the module's documentation)."""
        tenant = desk.tenant
        async with self.db.transaction() as session:
            queues = {
                row["name"]: dict(row)
                for row in (
                    await session.execute(sa.select(QUEUES).where(QUEUES.c.tenant == tenant))
                ).mappings()
            }
            agents = {
                row["id"]: dict(row)
                for row in (
                    await session.execute(
                        sa.select(AGENTS).where(
                            AGENTS.c.tenant == tenant, AGENTS.c.deleted_at.is_(None)
                        )
                    )
                ).mappings()
            }
            tasks = [
                dict(row)
                for row in (
                    await session.execute(
                        sa.select(TASKS)
                        .where(TASKS.c.tenant == tenant, TASKS.c.state.in_(LIVE + WORKING))
                        .order_by(TASKS.c.created_at, TASKS.c.id)
                    )
                ).mappings()
            ]
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
        desk.queues, desk.agents = queues, agents
        desk.tasks = {row["id"]: row for row in tasks}
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
            await self.db.run_transaction(changes.write)
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
