"""Routing's use cases. Each change runs through the tenant's desk (:mod:`.switchboard`): checks
first, then the engine, then one transaction with its events; reads go to the repository."""

from __future__ import annotations

import hashlib
import heapq
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from uuid6 import uuid7

from cxops.common.db import Database
from cxops.common.errors import Problem
from cxops.routing import events
from cxops.routing.changes import Changes, clock, moment
from cxops.routing.domain.learning import Outcome, ProficiencyChange
from cxops.routing.domain.model import DEFAULT_TIERS, ReservationState
from cxops.routing.domain.statistics import TaskFigures, queue_figures
from cxops.routing.repository import RoutingRepository
from cxops.routing.schemas import (
    AgentCreate,
    AgentPatch,
    AgentStatus,
    CancelBody,
    CompleteBody,
    CsatBody,
    QueueCreate,
    QueuePatch,
    StatusUpdate,
    TaskCreate,
)
from cxops.routing.switchboard import (
    LIVE,
    WORKING,
    Desk,
    Switchboard,
    conflict,
    end_unanswered,
    engine_agent,
    engine_task,
    invalid,
    not_found,
    policy_for,
    set_agent_status,
    task_references,
)

# --------------------------------------------------------------------------- agents


async def create_agent(board: Switchboard, tenant: str, body: AgentCreate) -> dict[str, Any]:
    def operation(desk: Desk, changes: Changes) -> dict[str, Any]:
        if body.external_id in desk.agent_external_ids:
            raise conflict(
                f"An agent with external_id {body.external_id!r} exists.",
                errors=[
                    {
                        "field": "external_id",
                        "in": "body",
                        "message": "already exists",
                        "code": "duplicate",
                    }
                ],
            )
        now = desk.now()
        at = moment(now)
        row: dict[str, Any] = {
            "id": uuid7(),
            "tenant": tenant,
            "external_id": body.external_id,
            "name": body.name,
            "team": body.team,
            "skills": dict(body.skills),
            "channels": dict(body.channels),
            "languages": list(body.languages),
            "pinned_skills": [],
            "status": body.status.value,
            "status_reason": None,
            "status_changed_at": at,
            "last_finished_at": None,
            "consecutive_timeouts": 0,
            "created_at": at,
            "updated_at": at,
            "deleted_at": None,
        }
        desk.add_agent(row)
        changes.agent_inserts.append(row)
        changes.catalogue_changed = True
        changes.touched_agents.add(row["id"])
        desk.learner.track(str(row["id"]), row["skills"])
        desk.engine.add_agent(engine_agent(row), now)
        changes.publish(
            events.AGENT_STATUS_CHANGED,
            agent_id=row["id"],
            external_id=body.external_id,
            team=body.team,
            status=body.status.value,
            previous=None,
            reason="registered",
            changed_at=at,
        )
        return row

    return await board.run(tenant, operation)


async def patch_agent(
    board: Switchboard, tenant: str, agent_id: uuid.UUID, patch: AgentPatch
) -> dict[str, Any]:
    def operation(desk: Desk, changes: Changes) -> dict[str, Any]:
        row = desk.agents.get(agent_id)
        if row is None:
            raise not_found("agent", agent_id)
        engine_agent_now = desk.engine.agent(str(agent_id))
        for channel, units in (patch.channels or {}).items():
            load = engine_agent_now.load.get(channel, 0)
            if (units or 0) < load:
                raise conflict(
                    f"The agent holds {load} {channel} task(s) or offer(s); capacity cannot "
                    f"go below that.",
                    errors=[
                        {
                            "field": f"channels.{channel}",
                            "in": "body",
                            "message": f"below the current load of {load}",
                            "code": "at_capacity",
                        }
                    ],
                )
        channels = {**row["channels"], **(patch.channels or {})}
        if not any(units for units in channels.values()):
            raise invalid("channels", "an agent needs at least one channel")
        now = desk.now()
        at = moment(now)
        values: dict[str, Any] = {"updated_at": at}
        for name in ("name", "team", "languages"):
            given = getattr(patch, name)
            if given is not None:
                values[name] = list(given) if name == "languages" else given
        pinned = set(row["pinned_skills"])
        for skill, level in sorted((patch.skills or {}).items()):
            old = row["skills"].get(skill)
            if level is None:
                if old is not None:
                    desk.engine.remove_skill(str(agent_id), skill, now)
                    desk.learner.release(str(agent_id), skill)
                    pinned.discard(skill)
                    changes.proficiency_changed(
                        agent_id,
                        skill,
                        old,
                        None,
                        source="supervisor",
                        reason="removed by a supervisor",
                        at=at,
                    )
                continue
            desk.learner.set_manual(str(agent_id), skill, level, now)
            pinned.add(skill)
            if old != level:
                desk.engine.set_proficiency(str(agent_id), skill, level, now, reason="supervisor")
                changes.proficiency_changed(
                    agent_id,
                    skill,
                    old,
                    level,
                    source="supervisor",
                    reason="set by a supervisor",
                    at=at,
                )
        if patch.channels:
            for channel, units in sorted(patch.channels.items()):
                desk.engine.set_capacity(str(agent_id), channel, units or 0, now)
            values["channels"] = {c: u for c, u in channels.items() if u}
        values["pinned_skills"] = sorted(pinned)
        values["skills"] = dict(desk.engine.agent(str(agent_id)).skills)
        changes.touched_agents.add(agent_id)
        changes.update_agent(agent_id, **values)
        changes.catalogue_changed = bool(patch.skills or patch.channels)
        return row

    return await board.run(tenant, operation)


async def delete_agent(board: Switchboard, tenant: str, agent_id: uuid.UUID) -> None:
    def operation(desk: Desk, changes: Changes) -> None:
        row = desk.agents.get(agent_id)
        if row is None:
            raise not_found("agent", agent_id)
        now = desk.now()
        at = moment(now)
        desk.engine.remove_agent(str(agent_id), now)
        changes.set_status(agent_id, AgentStatus.OFFLINE.value, at, reason="deleted")
        changes.update_agent(agent_id, deleted_at=at)
        changes.catalogue_changed = True
        desk.remove_agent(agent_id)

    await board.run(tenant, operation)


async def set_status(
    board: Switchboard, tenant: str, agent_id: uuid.UUID, update: StatusUpdate
) -> dict[str, Any]:
    def operation(desk: Desk, changes: Changes) -> dict[str, Any]:
        set_agent_status(desk, changes, agent_id, update)
        return desk.agents[agent_id]

    return await board.run(tenant, operation)


async def agent_load(board: Switchboard, tenant: str, agent_id: uuid.UUID) -> dict[str, int]:
    """Pending offers and accepted tasks per channel, as the live engine (the owner's) holds
    them."""
    desk = await board.desk(tenant)
    try:
        return dict(desk.engine.agent(str(agent_id)).load)
    except KeyError:
        return {}


# --------------------------------------------------------------------------- queues


async def create_queue(board: Switchboard, tenant: str, body: QueueCreate) -> dict[str, Any]:
    def operation(desk: Desk, changes: Changes) -> dict[str, Any]:
        if body.name in desk.queues:
            raise conflict(
                f"A queue named {body.name!r} exists.",
                errors=[
                    {
                        "field": "name",
                        "in": "body",
                        "message": "already exists",
                        "code": "duplicate",
                    }
                ],
            )
        _check_rules(body.name, [r.model_dump(mode="json") for r in body.escalation], desk)
        at = moment(desk.now())
        row = {
            "id": uuid7(),
            "tenant": tenant,
            "name": body.name,
            "channel": body.channel,
            "requires": dict(body.requires),
            "optional": dict(body.optional),
            "priority": body.priority,
            "service_level": body.service_level.model_dump(),
            "relaxation": [s.model_dump(mode="json") for s in body.relaxation],
            "escalation": [r.model_dump(mode="json") for r in body.escalation],
            "created_at": at,
            "updated_at": at,
        }
        desk.queues[body.name] = row
        desk.engine.policy = policy_for(desk.queues, board.settings)
        changes.queue_inserts.append(row)
        changes.catalogue_changed = True
        return row

    return await board.run(tenant, operation)


async def patch_queue(
    board: Switchboard, tenant: str, queue_id: uuid.UUID, patch: QueuePatch
) -> dict[str, Any]:
    def operation(desk: Desk, changes: Changes) -> dict[str, Any]:
        row = next((q for q in desk.queues.values() if q["id"] == queue_id), None)
        if row is None:
            raise not_found("queue", queue_id)
        values: dict[str, Any] = {}
        given = patch.model_dump(exclude_unset=True, mode="json")
        for name, value in given.items():
            if value is None:
                raise invalid(name, "must not be null")
            values[name] = value
        if "escalation" in values:
            _check_rules(row["name"], values["escalation"], desk)
        values["updated_at"] = moment(desk.now())
        row.update(values)
        desk.engine.policy = policy_for(desk.queues, board.settings)
        changes.queue_updates[queue_id] = values
        changes.catalogue_changed = True
        return row

    return await board.run(tenant, operation)


def _check_rules(queue: str, rules: list[dict[str, Any]], desk: Desk) -> None:
    """A queue's rules concern its own tasks; moving a task needs a queue that exists."""
    for i, rule in enumerate(rules):
        queues = rule.get("when", {}).get("queues")
        if queues is not None and queue not in queues:
            raise invalid(
                f"escalation.{i}.when.queues",
                f"a rule of queue {queue!r} applies "
                "to its own tasks; leave queues out or include it",
            )
        target = rule.get("then", {}).get("move_to_queue")
        if target is not None and target not in desk.queues and target != queue:
            raise invalid(f"escalation.{i}.then.move_to_queue", f"no queue named {target!r}")


# ---------------------------------------------------------------------------- tasks


def request_fingerprint(body: TaskCreate) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def create_task(
    board: Switchboard,
    tenant: str,
    body: TaskCreate,
    *,
    idempotency_key: str | None,
) -> tuple[dict[str, Any], bool]:
    """Accept a task into its queue; ``(row, replayed)``. A task with the same external id or
    idempotency key is a repeat: the first task is returned and nothing is stored."""
    fingerprint = request_fingerprint(body)
    references = task_references(body.external_id, idempotency_key)

    def operation(desk: Desk, changes: Changes) -> tuple[dict[str, Any], bool]:
        first = desk.earlier_task(references)
        if first is not None:
            if (
                idempotency_key is not None
                and first["request_fingerprint"] not in (None, fingerprint)
                and first["idempotency_key"] == idempotency_key
            ):
                raise Problem(
                    409,
                    "This Idempotency-Key was already used for a different request; send a "
                    "new key for a new task.",
                    slug="idempotency-key-reused",
                    title="Idempotency key reused",
                    task_id=str(first["id"]),
                )
            return first, True
        row = _new_task(desk, tenant, body, idempotency_key, fingerprint)
        desk.add_task(row)
        changes.task_inserts.append(row)
        now = clock(row["created_at"])
        if row["expires_at"] is not None:
            heapq.heappush(desk.expiries, (clock(row["expires_at"]), row["id"]))
        changes.publish(
            events.TASK_CREATED,
            task_id=row["id"],
            external_id=row["external_id"],
            queue=row["queue"],
            channel=row["channel"],
            priority=row["priority"],
            tier=row["tier"],
            customer_ref=row["customer_ref"],
            case_id=row["attributes"].get("case_id"),
            created_at=row["created_at"],
        )
        desk.engine.task_arrived(engine_task(row), now)
        return row, False

    return await board.run(tenant, operation, references=references)


def _new_task(
    desk: Desk, tenant: str, body: TaskCreate, idempotency_key: str | None, fingerprint: str
) -> dict[str, Any]:
    queue = desk.queues.get(body.queue) if body.queue is not None else None
    if body.queue is not None and queue is None:
        raise invalid("queue", f"no queue named {body.queue!r}", code="unknown_queue")
    channel = body.channel or (queue["channel"] if queue else None)
    if queue is not None and body.channel is not None and body.channel != queue["channel"]:
        raise invalid("channel", f"queue {body.queue!r} takes {queue['channel']!r} tasks")
    if channel not in desk.known_channels():
        raise invalid(
            "channel", f"no agent or queue has channel {channel!r}", code="unknown_channel"
        )
    requires = dict(queue["requires"]) if queue else dict(body.requires or {})
    optional = (
        dict(queue["optional"]) if queue and body.optional is None else dict(body.optional or {})
    )
    known = desk.known_skills()
    for place, skills in (("requires", requires), ("optional", optional)):
        for skill in skills:
            if skill not in known:
                raise invalid(
                    f"{place}.{skill}",
                    f"no agent or queue has skill {skill!r}",
                    code="unknown_skill",
                )
    if body.tier not in DEFAULT_TIERS:
        raise invalid(
            "tier",
            f"unknown tier {body.tier!r} (tiers: {', '.join(sorted(DEFAULT_TIERS))})",
            code="unknown_tier",
        )
    now = desk.now()
    created = moment(now)
    priority = body.priority if body.priority is not None else (queue["priority"] if queue else 0)
    name = queue["name"] if queue else ("+".join(sorted(requires)) or str(channel))
    attributes = body.attributes.model_dump(mode="json", exclude_none=True)
    return {
        "id": uuid7(),
        "tenant": tenant,
        "external_id": body.external_id,
        "idempotency_key": idempotency_key,
        "request_fingerprint": fingerprint,
        "channel": channel,
        "queue": name,
        "requires": requires,
        "optional": optional,
        "priority": priority,
        "tier": body.tier,
        "customer_ref": body.customer_ref,
        "attributes": attributes,
        "timeout_seconds": body.timeout_seconds,
        "state": "pending",
        "reason": None,
        "agent_id": None,
        "team": None,
        "fired_rules": [],
        "created_at": created,
        "expires_at": moment(now + body.timeout_seconds) if body.timeout_seconds else None,
        "assigned_at": None,
        "wrapping_at": None,
        "ended_at": None,
        "wait_seconds": None,
        "handle_seconds": None,
        "resolved": None,
        "csat": None,
    }


async def cancel_task(
    board: Switchboard, tenant: str, task_id: uuid.UUID, body: CancelBody, stored: Any
) -> dict[str, Any]:
    async def operation(desk: Desk, changes: Changes) -> dict[str, Any]:
        row = await _open_task(desk, changes, task_id, stored)
        if row["state"] not in LIVE:
            raise _wrong_state(row, "canceled", "only a pending or reserved task")
        end_unanswered(desk, changes, task_id, body.reason, desk.now())
        return row

    return await board.run(tenant, operation)


async def wrap_task(
    board: Switchboard,
    tenant: str,
    task_id: uuid.UUID,
    stored: Any,
    agent_only: uuid.UUID | None = None,
) -> dict[str, Any]:
    async def operation(desk: Desk, changes: Changes) -> dict[str, Any]:
        row = await _open_task(desk, changes, task_id, stored)
        _check_owner(row["agent_id"], agent_only)
        if row["state"] != "assigned":
            raise _wrong_state(row, "wrapped", "only an assigned task")
        changes.update_task(task_id, state="wrapping", wrapping_at=moment(desk.now()))
        return row

    return await board.run(tenant, operation)


async def complete_task(
    board: Switchboard,
    tenant: str,
    task_id: uuid.UUID,
    body: CompleteBody,
    stored: Any,
    agent_only: uuid.UUID | None = None,
) -> dict[str, Any]:
    async def operation(desk: Desk, changes: Changes) -> dict[str, Any]:
        row = await _open_task(desk, changes, task_id, stored)
        _check_owner(row["agent_id"], agent_only)
        if row["state"] not in WORKING:
            raise _wrong_state(row, "completed", "only an assigned or wrapping task")
        now = desk.now()
        at = moment(now)
        agent_id = row["agent_id"]
        changes.touched_agents.add(agent_id)
        changes.update_task(
            task_id,
            state="completed",
            ended_at=at,
            handle_seconds=body.handle_seconds,
            resolved=body.resolved,
            csat=body.csat,
        )
        changes.publish(
            events.TASK_COMPLETED,
            task_id=task_id,
            agent_id=agent_id,
            team=row["team"],
            queue=row["queue"],
            channel=row["channel"],
            tier=row["tier"],
            customer_ref=row["customer_ref"],
            case_id=row["attributes"].get("case_id"),
            wait_seconds=row["wait_seconds"] or 0.0,
            handle_seconds=body.handle_seconds,
            resolved=body.resolved,
            csat=body.csat,
            completed_at=at,
        )
        # After the completion is announced: the offers the freed agent gets follow it.
        desk.engine.task_finished(str(task_id), now)
        _learn(desk, changes, row, body, now)
        return row

    return await board.run(tenant, operation)


def _learn(
    desk: Desk, changes: Changes, row: dict[str, Any], body: CompleteBody, now: float
) -> None:
    """The outcome nudges the agent's proficiency in the skills the task needed."""
    agent_id = row["agent_id"]
    if agent_id not in desk.agents or not row["requires"]:
        return
    outcome = Outcome(
        agent_id=str(agent_id),
        queue=row["queue"],
        skills=tuple(sorted(row["requires"])),
        handle_seconds=body.handle_seconds,
        at=now,
        resolved_first_contact=body.resolved,
        csat=body.csat,
    )
    _relevel(desk, changes, agent_id, desk.learner.observe(outcome), now)


def _relevel(
    desk: Desk,
    changes: Changes,
    agent_id: uuid.UUID,
    learned: list[ProficiencyChange],
    now: float,
) -> None:
    for change in learned:
        desk.engine.set_proficiency(str(agent_id), change.skill, change.new, now, reason="learning")
        changes.proficiency_changed(
            agent_id,
            change.skill,
            change.old,
            change.new,
            source="learning",
            reason=change.reason,
            at=moment(now),
        )


async def rate_task(
    board: Switchboard, tenant: str, task_id: uuid.UUID, body: CsatBody, stored: Any
) -> dict[str, Any]:
    """The customer's CSAT for a completed task that had none (the survey answered after the
    contact): stored on the task and learned from, once. The same CSAT again changes nothing;
    another is a 409."""

    async def operation(desk: Desk, changes: Changes) -> dict[str, Any]:
        row = await _open_task(desk, changes, task_id, stored)
        if row["state"] != "completed":
            raise _wrong_state(row, "rated", "only a completed task")
        if row["csat"] is not None:
            if row["csat"] == body.csat:
                return row
            raise conflict(f"Task {task_id} was already rated {row['csat']}.", state=row["state"])
        changes.update_task(task_id, csat=body.csat)
        row = {**row, "csat": body.csat}
        agent_id = row["agent_id"]
        if agent_id in desk.agents and row["requires"]:
            now = desk.now()
            skills = tuple(sorted(row["requires"]))
            learned = desk.learner.observe_csat(str(agent_id), skills, body.csat, now)
            _relevel(desk, changes, agent_id, learned, now)
        return row

    return await board.run(tenant, operation)


def stored_task(db: Database, tenant: str) -> Callable[[uuid.UUID], Awaitable[Any]]:
    """The lookup of an ended task as stored, for operations on tasks."""

    async def find(task_id: uuid.UUID) -> dict[str, Any] | None:
        async with db.transaction() as session:
            return await RoutingRepository(session, tenant=tenant).task(task_id)

    return find


async def _open_task(
    desk: Desk, changes: Changes, task_id: uuid.UUID, stored: Any
) -> dict[str, Any]:
    """The task if it is open (from the desk), else as stored (ended), else 404."""
    row = desk.tasks.get(task_id)
    if row is None:
        ended: dict[str, Any] | None = await changes.read(stored(task_id))
        if ended is None:
            raise not_found("task", task_id)
        return ended
    return row


def _wrong_state(row: dict[str, Any], verb: str, allowed: str) -> Exception:
    return conflict(
        f"Task {row['id']} is {row['state']}: {allowed} can be {verb}.", state=row["state"]
    )


# --------------------------------------------------------------------- reservations


async def answer_offer(
    board: Switchboard,
    tenant: str,
    reservation_id: uuid.UUID,
    *,
    accept: bool,
    stored: Any,
    agent_only: uuid.UUID | None,
) -> dict[str, Any]:
    """Accept or reject a pending reservation; anything else is a 409 saying why."""

    async def operation(desk: Desk, changes: Changes) -> dict[str, Any] | str:
        number = desk.reservation_numbers.get(reservation_id)
        reservation = desk.engine.reservation(number) if number is not None else None
        if reservation is None:
            row = await changes.read(stored(reservation_id))
            if row is None:
                raise not_found("reservation", reservation_id)
            _check_owner(row["agent_id"], agent_only)
            raise _not_pending(reservation_id, row["state"])
        _check_owner(uuid.UUID(reservation.agent_id), agent_only)
        now = desk.now()
        # What fell due first (this offer's own timeout, say) happens first, and is committed
        # even when it leaves nothing to answer: the 409 comes after the commit (below).
        desk.engine.tick(now)
        if reservation.state is not ReservationState.PENDING:
            return reservation.state.value
        if accept:
            desk.engine.accept(number, now)  # type: ignore[arg-type]
        else:
            desk.engine.reject(number, now)  # type: ignore[arg-type]
        stored_row = {
            "id": reservation_id,
            "task_id": uuid.UUID(reservation.task_id),
            "agent_id": uuid.UUID(reservation.agent_id),
            "channel": reservation.channel,
            "state": reservation.state.value,
            "offered_at": moment(reservation.offered_at),
            "expires_at": moment(reservation.expires_at),
            "ended_at": moment(reservation.ended_at) if reservation.ended_at else None,
        }
        return stored_row

    answered = await board.run(tenant, operation)
    if isinstance(answered, str):  # the state it was in when the answer came
        raise _not_pending(reservation_id, answered)
    return answered


def _check_owner(agent_id: uuid.UUID | None, agent_only: uuid.UUID | None) -> None:
    """An agent's key answers only its own offers and finishes only its own tasks."""
    if agent_only is not None and agent_id != agent_only:
        raise Problem(403, "An agent answers only the offers made to them.", slug="forbidden")


WHY_NOT_PENDING = {
    "accepted": "it was already accepted",
    "rejected": "it was rejected",
    "timeout": "it timed out",
    "canceled": "its task was canceled",
    "rescinded": "it was rescinded (the agent went away or offline, or routing restarted)",
}


def _not_pending(reservation_id: uuid.UUID, state: str) -> Exception:
    return conflict(
        f"Reservation {reservation_id} is {state}: {WHY_NOT_PENDING.get(state, state)}.",
        state=state,
    )


# ------------------------------------------------------------------------ statistics


async def queue_statistics(
    board: Switchboard,
    tenant: str,
    queue: dict[str, Any],
    repository: RoutingRepository,
    *,
    start: datetime | None,
    end: datetime | None,
) -> dict[str, Any]:
    """The queue now (from the live engine) and over a window (from the database): today
    (UTC) unless ``start``/``end`` say otherwise."""
    now = datetime.now(UTC)
    end = end or now
    start = start or now.replace(hour=0, minute=0, second=0, microsecond=0)
    rows, offers = await repository.queue_window(queue["name"], start, end)
    level = queue["service_level"]
    window = queue_figures(
        (
            TaskFigures(
                r["state"],
                r["wait_seconds"],
                str(r["agent_id"]) if r["agent_id"] else None,
                r["handle_seconds"],
            )
            for r in rows
        ),
        offers,
        answer_within_seconds=level["answer_within_seconds"],
        target=level["target"],
        window_seconds=max(0.0, (min(end, now) - start).total_seconds()),
    )
    return {
        "queue": queue["name"],
        "now": await _queue_now(board, tenant, queue),
        "window": {"from": start, "to": end, **window},
    }


async def _queue_now(board: Switchboard, tenant: str, queue: dict[str, Any]) -> dict[str, Any]:
    desk = await board.desk(tenant)
    clock_now = desk.now()
    waiting = [t for t in desk.tasks.values() if t["queue"] == queue["name"] and t["state"] in LIVE]
    by_priority: dict[str, int] = {}
    for row in waiting:
        by_priority[str(row["priority"])] = by_priority.get(str(row["priority"]), 0) + 1
    eligible: dict[str, int] = {}
    channel = queue["channel"]
    for row in desk.agents.values():
        if row["channels"].get(channel, 0) <= 0 or any(
            row["skills"].get(skill, 0) < level for skill, level in queue["requires"].items()
        ):
            continue
        status = desk.engine.agent(str(row["id"])).status.value
        if row["status"] == AgentStatus.BREAK:
            status = "break"
        eligible[status] = eligible.get(status, 0) + 1
    oldest = min((clock(t["created_at"]) for t in waiting), default=None)
    return {
        "waiting": len(waiting),
        "waiting_by_priority": dict(sorted(by_priority.items(), key=lambda i: -int(i[0]))),
        "longest_waiting_seconds": None if oldest is None else max(0.0, clock_now - oldest),
        "eligible_agents_by_status": eligible,
    }
