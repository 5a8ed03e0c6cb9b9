"""One operation's changes, as rows and events: what the engine decided, made durable.

An operation on a tenant's engine (a task arrives, an agent accepts, time passes) makes the
engine report what it decided as :class:`cxops.routing.domain.model.Event` values, in order.
:class:`Changes` turns each into the row changes and the CloudEvents it stands for, as it
happens (so a task's row takes the task as it was at that moment). :func:`write` writes the
changes of a group of operations in one transaction, with the events in the outbox. Nothing
here touches the engine except to read it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from uuid6 import uuid7

from cxops.common.db import CommitInfo
from cxops.common.events import Event as CloudEvent
from cxops.common.events.outbox import outbox_row, queue_events
from cxops.routing import events
from cxops.routing.domain.engine import Engine
from cxops.routing.domain.model import Event
from cxops.routing.models import (
    RoutingAgent,
    RoutingProficiencyChange,
    RoutingQueue,
    RoutingReservation,
    RoutingTask,
    RoutingTaskEvent,
)

AGENTS: sa.Table = RoutingAgent.__table__  # type: ignore[attr-defined]
QUEUES: sa.Table = RoutingQueue.__table__  # type: ignore[attr-defined]
TASKS: sa.Table = RoutingTask.__table__  # type: ignore[attr-defined]
RESERVATIONS: sa.Table = RoutingReservation.__table__  # type: ignore[attr-defined]
TASK_EVENTS: sa.Table = RoutingTaskEvent.__table__  # type: ignore[attr-defined]
PROFICIENCY: sa.Table = RoutingProficiencyChange.__table__  # type: ignore[attr-defined]

T = TypeVar("T")

#: Engine event kinds kept in a task's history (``GET /tasks/{id}``).
HISTORY_KINDS = frozenset(
    {"queued", "relaxed", "escalated", "supervisor_alert", "requeued", "updated"}
)
#: Engine reservation endings, as stored.
ENDINGS = frozenset({"accepted", "rejected", "timeout", "canceled", "rescinded"})


def moment(clock: float) -> datetime:
    """An engine clock value (seconds since the epoch) as a UTC datetime."""
    return datetime.fromtimestamp(clock, UTC)


def clock(at: datetime) -> float:
    return at.timestamp()


@dataclass
class Offer:
    """A reservation made by the operation, for the agent's live stream once committed: the
    reservation's row and the task's as they were when it was made."""

    agent_id: uuid.UUID
    reservation: dict[str, Any]
    task: dict[str, Any]


@dataclass
class Changes:
    """What one operation on ``tenant``'s engine changed; see the module's documentation."""

    tenant: str
    engine: Engine
    #: Engine reservation numbers and their stored ids, both ways (kept by the tenant's desk).
    reservation_ids: dict[int, uuid.UUID]
    reservation_numbers: dict[uuid.UUID, int]
    #: Task rows as the engine knows them: id -> (queue, channel, team) for events.
    task_rows: dict[uuid.UUID, dict[str, Any]]
    agent_rows: dict[uuid.UUID, dict[str, Any]]
    queue_inserts: list[dict[str, Any]] = field(default_factory=list)
    queue_updates: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    task_inserts: list[dict[str, Any]] = field(default_factory=list)
    agent_inserts: list[dict[str, Any]] = field(default_factory=list)
    task_updates: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    agent_updates: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    reservation_inserts: list[dict[str, Any]] = field(default_factory=list)
    reservation_updates: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    proficiency: list[dict[str, Any]] = field(default_factory=list)
    events: list[CloudEvent] = field(default_factory=list)
    offers: list[Offer] = field(default_factory=list)
    touched_agents: set[uuid.UUID] = field(default_factory=set)
    #: The operation added, removed or changed agents' skills or channels, or queues: the skills
    #: and channels the tenant knows must be counted again.
    catalogue_changed: bool = False
    #: Seconds the operation waited on its lookups in the database (:meth:`read`), told apart
    #: from its time in memory in the ``cxops_routing_operation_seconds`` metric.
    read_seconds: float = 0.0

    @property
    def empty(self) -> bool:
        """Nothing to write (a timer that found nothing due, a refused answer)."""
        return not (
            self.queue_inserts
            or self.queue_updates
            or self.agent_inserts
            or self.task_inserts
            or self.agent_updates
            or self.task_updates
            or self.reservation_inserts
            or self.reservation_updates
            or self.history
            or self.proficiency
            or self.events
        )

    async def read(self, lookup: Awaitable[T]) -> T:
        """Await one of the operation's lookups in the database, timed."""
        started = time.perf_counter()
        try:
            return await lookup
        finally:
            self.read_seconds += time.perf_counter() - started

    # --------------------------------------------------------------- row changes

    def update_task(self, task_id: uuid.UUID, **values: Any) -> None:
        self.task_updates.setdefault(task_id, {}).update(values)
        row = self.task_rows.get(task_id)
        if row is not None:
            row.update(values)

    def update_agent(self, agent_id: uuid.UUID, **values: Any) -> None:
        self.agent_updates.setdefault(agent_id, {}).update(values)
        row = self.agent_rows.get(agent_id)
        if row is not None:
            row.update(values)

    def publish(self, subject: str, **fields: Any) -> None:
        self.events.append(events.routing_event(subject, tenant=self.tenant, **fields))

    def note(
        self,
        task_id: uuid.UUID,
        kind: str,
        at: datetime,
        detail: str = "",
        agent_id: uuid.UUID | None = None,
    ) -> None:
        self.history.append(
            {
                "tenant": self.tenant,
                "task_id": task_id,
                "kind": kind,
                "at": at,
                "agent_id": agent_id,
                "detail": detail,
            }
        )

    # ------------------------------------------------------------ engine events

    def on_engine_event(self, event: Event) -> None:
        """Record one engine decision (the engine's ``on_event``)."""
        if event.kind == "restored":  # as stored: nothing to record (a rebuild has 100,000s)
            return
        at = moment(event.at)
        task_id = uuid.UUID(event.task_id) if event.task_id else None
        agent_id = uuid.UUID(event.agent_id) if event.agent_id else None
        if agent_id is not None:
            self.touched_agents.add(agent_id)
        kind = event.kind
        if kind == "offered" and task_id and agent_id and event.reservation_id is not None:
            self._offered(task_id, agent_id, event.reservation_id)
        elif kind in ENDINGS and event.reservation_id is not None:
            self._offer_ended(kind, event.reservation_id, at)
        if task_id is None:
            if kind == "agent_away" and agent_id is not None:
                self.set_status(agent_id, "away", at, reason=event.detail)
            return
        if kind == "queued" or kind == "requeued":
            self.update_task(task_id, state="pending", agent_id=None)
        elif kind in ("escalated", "updated"):
            self._revised(task_id, kind, at, event.detail)
        if kind in HISTORY_KINDS:
            self.note(task_id, kind, at, event.detail, agent_id)

    def _offered(self, task_id: uuid.UUID, agent_id: uuid.UUID, number: int) -> None:
        reservation = self.engine.reservation(number)
        stored = uuid7()
        self.reservation_ids[number] = stored
        self.reservation_numbers[stored] = number
        offered_at, expires_at = moment(reservation.offered_at), moment(reservation.expires_at)
        inserted = {
            "id": stored,
            "tenant": self.tenant,
            "task_id": task_id,
            "agent_id": agent_id,
            "channel": reservation.channel,
            "state": "pending",
            "offered_at": offered_at,
            "expires_at": expires_at,
            "ended_at": None,
        }
        self.reservation_inserts.append(inserted)
        self.update_task(task_id, state="reserved", agent_id=None)
        row = self.task_rows[task_id]
        self.publish(
            events.TASK_OFFERED,
            task_id=task_id,
            reservation_id=stored,
            agent_id=agent_id,
            queue=row["queue"],
            channel=reservation.channel,
            offered_at=offered_at,
            expires_at=expires_at,
        )
        self.offers.append(Offer(agent_id, dict(inserted), dict(row)))

    def _offer_ended(self, kind: str, number: int, at: datetime) -> None:
        stored = self.reservation_ids.get(number)
        if stored is None:  # a restored assignment's reservation: never stored as an offer
            return
        self.reservation_updates.setdefault(stored, {}).update(state=kind, ended_at=at)
        if kind != "accepted":
            return
        reservation = self.engine.reservation(number)
        task_id, agent_id = uuid.UUID(reservation.task_id), uuid.UUID(reservation.agent_id)
        row = self.task_rows[task_id]
        wait = (
            max(0.0, reservation.ended_at - clock(row["created_at"]))
            if reservation.ended_at
            else 0.0
        )
        team = self.agent_rows[agent_id].get("team")
        self.update_task(
            task_id,
            state="assigned",
            agent_id=agent_id,
            assigned_at=at,
            wait_seconds=wait,
            team=team,
        )
        self.publish(
            events.TASK_ASSIGNED,
            task_id=task_id,
            reservation_id=stored,
            agent_id=agent_id,
            team=team,
            queue=row["queue"],
            channel=row["channel"],
            wait_seconds=wait,
            assigned_at=at,
        )

    def _revised(self, task_id: uuid.UUID, kind: str, at: datetime, detail: str) -> None:
        task = self.engine.task(str(task_id))
        self.update_task(
            task_id,
            priority=task.priority,
            queue=task.queue,
            channel=task.channel,
            requires=dict(task.requires),
            optional=dict(task.optional),
            fired_rules=sorted(self.engine.fired_rules(str(task_id))),
        )
        if kind == "escalated":
            self.publish(
                events.TASK_ESCALATED,
                task_id=task_id,
                queue=task.queue,
                priority=task.priority,
                detail=detail,
                escalated_at=at,
            )

    def proficiency_changed(
        self,
        agent_id: uuid.UUID,
        skill: str,
        old_level: int | None,
        new_level: int | None,
        *,
        source: str,
        reason: str,
        at: datetime,
    ) -> None:
        """Record a skill change the operation made (the engine's own ``proficiency`` event
        carries it as text; the operation knows it as values)."""
        skills = dict(self.engine.agent(str(agent_id)).skills)
        self.update_agent(agent_id, skills=skills, updated_at=at)
        self.proficiency.append(
            {
                "tenant": self.tenant,
                "agent_id": agent_id,
                "skill": skill,
                "old_level": old_level,
                "new_level": new_level,
                "source": source,
                "reason": reason,
                "at": at,
            }
        )
        self.publish(
            events.PROFICIENCY_CHANGED,
            agent_id=agent_id,
            skill=skill,
            old_level=old_level,
            new_level=new_level,
            source=source,
            reason=reason,
            changed_at=at,
        )

    def set_status(
        self, agent_id: uuid.UUID, status: str, at: datetime, *, reason: str | None
    ) -> None:
        row = self.agent_rows[agent_id]
        previous = row.get("status")
        if previous == status:
            return
        self.update_agent(
            agent_id, status=status, status_reason=reason, status_changed_at=at, updated_at=at
        )
        self.publish(
            events.AGENT_STATUS_CHANGED,
            agent_id=agent_id,
            external_id=row["external_id"],
            team=row.get("team"),
            status=status,
            previous=previous,
            reason=reason,
            changed_at=at,
        )

    # ------------------------------------------------------------------ writing

    def settle_agents(self) -> None:
        """The engine's bookkeeping of every agent the operation touched, for a rebuild."""
        for agent_id in self.touched_agents:
            try:
                agent = self.engine.agent(str(agent_id))
            except KeyError:  # removed by the operation
                continue
            finished = moment(agent.last_finished_at) if agent.last_finished_at > 0 else None
            row = self.agent_rows.get(agent_id, {})
            if (row.get("consecutive_timeouts"), row.get("last_finished_at")) != (
                agent.consecutive_timeouts,
                finished,
            ):
                self.update_agent(
                    agent_id,
                    consecutive_timeouts=agent.consecutive_timeouts,
                    last_finished_at=finished,
                )


def write(group: list[Changes], connection: sa.Connection, info: CommitInfo) -> None:
    """The changes of a group of operations, in order, in one transaction (run by
    ``Database.run_transaction``), with as few statements as their shapes allow: a row inserted
    and then updated within the group is inserted as it ends up; the rest of the inserts go one
    statement per table, and updates of the same columns one statement per table and columns."""
    inserts: dict[sa.Table, dict[uuid.UUID, dict[str, Any]]] = {}
    updates: dict[sa.Table, dict[uuid.UUID, dict[str, Any]]] = {}
    appended: dict[sa.Table, list[dict[str, Any]]] = {TASK_EVENTS: [], PROFICIENCY: []}
    for changes in group:
        for table, rows in (
            (QUEUES, changes.queue_inserts),
            (AGENTS, changes.agent_inserts),
            (TASKS, changes.task_inserts),
            (RESERVATIONS, changes.reservation_inserts),
        ):
            for row in rows:
                inserts.setdefault(table, {})[row["id"]] = dict(row)
        for table, changed in (
            (QUEUES, changes.queue_updates),
            (AGENTS, changes.agent_updates),
            (TASKS, changes.task_updates),
            (RESERVATIONS, changes.reservation_updates),
        ):
            for row_id, values in changed.items():
                inserted = inserts.get(table, {}).get(row_id)
                if inserted is not None:
                    inserted.update(values)
                else:
                    updates.setdefault(table, {}).setdefault(row_id, {}).update(values)
        appended[TASK_EVENTS] += changes.history
        appended[PROFICIENCY] += changes.proficiency
    for table, rows_by_id in inserts.items():
        connection.execute(sa.insert(table), list(rows_by_id.values()))
    for table, values_by_id in updates.items():
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row_id, values in values_by_id.items():
            by_columns.setdefault(tuple(sorted(values)), []).append(
                {"row_id": row_id, **{f"new_{column}": value for column, value in values.items()}}
            )
        for columns, parameters in by_columns.items():
            statement = (
                sa.update(table)
                .where(table.c.tenant == group[0].tenant, table.c.id == sa.bindparam("row_id"))
                .values({c: sa.bindparam(f"new_{c}", type_=table.c[c].type) for c in columns})
            )
            connection.execute(statement, parameters)
    for table, rows in appended.items():
        if rows:
            connection.execute(sa.insert(table), rows)
    queue_events(connection, info, [outbox_row(e) for c in group for e in c.events])
