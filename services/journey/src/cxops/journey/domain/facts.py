"""What other services' events say about a customer, folded into one fact per response, case or
task, whatever order the events arrive in; and the SLA state of a case's clocks at a moment.

A fact is changed by *updates*, one per event: when the change it announces happened (``at``),
the state it left, and the fields it knows. The newest update decides the state, and each field
holds what the newest update that carried it said: an older event arriving late only fills in
what nothing newer said (a task's queue, known only to its ``created`` event). Each field keeps
the version (time and state rank) of the update that set it, so that several late events still
end in the same fact as the same events in order. Breached clocks accumulate, whatever their
order.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

RESPONSE = "response"
CASE = "case"
TASK = "task"

#: Per kind, its states in the order they normally follow; it breaks ties between two updates
#: of the same instant (a response's ``received`` and ``enriched`` share its time).
STATE_ORDER: Mapping[str, Sequence[str]] = {
    RESPONSE: ("received", "enriched"),
    CASE: ("open", "acknowledged", "action_documented", "closed"),
    TASK: ("created", "assigned", "completed", "canceled", "abandoned"),
}
#: The states in which a case or task is still open.
OPEN_STATES: Mapping[str, frozenset[str]] = {
    CASE: frozenset({"open", "acknowledged", "action_documented"}),
    TASK: frozenset({"created", "assigned"}),
}
#: A case's SLA clocks: the payload key of the deadline, and of the time from the feedback to
#: the action that stops the clock (null until done).
CASE_CLOCKS: Sequence[tuple[str, str, str]] = (
    ("acknowledge", "acknowledge_due_at", "acknowledged_after_seconds"),
    ("action", "action_due_at", "action_documented_after_seconds"),
    ("close", "close_due_at", "closed_after_seconds"),
)


@dataclass(frozen=True, slots=True)
class FactUpdate:
    """What one event says about one fact. ``customer_ref`` is ``None`` for an event that does
    not name the customer (a task's assignment); ``started_at`` is when the fact began, for an
    event that knows it; ``breach`` a clock that passed its deadline (``{clock, deadline,
    round}``)."""

    kind: str
    ref_id: str
    customer_ref: str | None
    at: datetime
    state: str
    fields: Mapping[str, Any]
    started_at: datetime | None = None
    breach: Mapping[str, Any] | None = None


#: The order of updates: their time, then their state's place in :data:`STATE_ORDER`.
Version = tuple[datetime, int]


@dataclass(frozen=True, slots=True)
class Fact:
    """``versions`` holds, for each field of ``payload``, the version of the update that set
    it."""

    customer_ref: str
    occurred_at: datetime
    state: str
    payload: Mapping[str, Any]
    last_event_at: datetime
    versions: Mapping[str, Version] = field(default_factory=dict)
    breaches: Sequence[Mapping[str, Any]] = field(default=())


def _rank(kind: str, state: str) -> int:
    order = STATE_ORDER.get(kind, ())
    return order.index(state) if state in order else -1


def apply(current: Fact | None, update: FactUpdate) -> Fact | None:
    """The fact after ``update``; ``None`` for an update about a fact not known yet that does
    not say whose it is (nothing to attach it to)."""
    version = (update.at, _rank(update.kind, update.state))
    if current is None:
        if not update.customer_ref:
            return None
        return Fact(
            customer_ref=update.customer_ref,
            occurred_at=update.started_at or update.at,
            state=update.state,
            payload=dict(update.fields),
            last_event_at=update.at,
            versions=dict.fromkeys(update.fields, version),
            breaches=_with_breach((), update.breach),
        )
    payload, versions = dict(current.payload), dict(current.versions)
    for name, value in update.fields.items():
        if name not in versions or version >= versions[name]:
            payload[name], versions[name] = value, version
    newer = version >= (current.last_event_at, _rank(update.kind, current.state))
    return Fact(
        customer_ref=(update.customer_ref if newer else None) or current.customer_ref,
        occurred_at=update.started_at or current.occurred_at,
        state=update.state if newer else current.state,
        payload=payload,
        last_event_at=update.at if newer else current.last_event_at,
        versions=versions,
        breaches=_with_breach(current.breaches, update.breach),
    )


def _with_breach(
    breaches: Sequence[Mapping[str, Any]], breach: Mapping[str, Any] | None
) -> tuple[Mapping[str, Any], ...]:
    """``breaches`` with ``breach`` added once per clock and round, in deadline order."""
    if breach is None or any(
        (b["clock"], b["round"]) == (breach["clock"], breach["round"]) for b in breaches
    ):
        return tuple(breaches)
    return tuple(sorted([*breaches, dict(breach)], key=lambda b: str(b["deadline"])))


def is_open(kind: str, state: str) -> bool:
    return state in OPEN_STATES.get(kind, frozenset())


def case_clocks(
    payload: Mapping[str, Any],
    breaches: Sequence[Mapping[str, Any]],
    *,
    now: datetime,
    due_soon: timedelta,
) -> list[dict[str, Any]]:
    """Each SLA clock of a case's current round at ``now``: its deadline, when its action was
    done (null before), whether it is ``breached`` (done late, or not done by the deadline, or
    reported breached by feedback) and whether it is ``due_soon`` (not done, not breached, due
    within ``due_soon``). Times in ``payload`` are ISO 8601 strings, as events carry them."""
    feedback_at = _time(payload.get("feedback_at"))
    round_ = payload.get("round")
    reported = {b["clock"] for b in breaches if b.get("round") == round_}
    clocks = []
    for clock, due_key, after_key in CASE_CLOCKS:
        due_at = _time(payload.get(due_key))
        after = payload.get(after_key)
        done_at = (
            feedback_at + timedelta(seconds=after)
            if after is not None and feedback_at is not None
            else None
        )
        if due_at is None:
            continue
        breached = (
            clock in reported
            or (done_at is None and now > due_at)
            or (done_at is not None and done_at > due_at)
        )
        clocks.append(
            {
                "clock": clock,
                "due_at": due_at,
                "done_at": done_at,
                "breached": breached,
                "due_soon": done_at is None and not breached and due_at - now <= due_soon,
            }
        )
    return clocks


def _time(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return None
