"""Proactive triggers: when a customer's interaction or history calls for acting first, and
whether to act.

A trigger ``when`` one condition holds (an interaction with given attributes, repeat contacts,
negative feedback while a case is open, a stage overdue) runs its actions ``then``, unless the
customer's action log says it already did for the same thing (``duplicate``), the tenant's
frequency cap is reached (``capped``), it is the customer's night (``quiet``) or the customer is
in the trigger's holdout (``held_out``). The checks run in that order so that the holdout is
drawn among customers who would really have been contacted: treated and held-out customers then
differ only by the treatment, which is what the effect comparison needs.

Pure: plain values in, plain values out; the service loads the history and stores the decision.
"""

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cxops.stats.inference import Change, mean_change, nps_change, proportion_change
from cxops.stats.scales import DETRACTOR_CEILING, PROMOTER_FLOOR


class Outcome(StrEnum):
    TAKEN = "taken"
    HELD_OUT = "held_out"
    CAPPED = "capped"
    QUIET = "quiet"
    DUPLICATE = "duplicate"


#: Outcomes that settle a dedupe key: the customer was treated, or deliberately not. A capped or
#: quiet match may still be acted on when the same thing is reported again later.
SETTLED = frozenset({Outcome.TAKEN, Outcome.HELD_OUT})

#: Attributes naming the thing an interaction is about; the first one present keys dedupe.
SUBJECT_ATTRIBUTES = ("order_id", "shipment_id")


class Operator(StrEnum):
    EQ = "=="
    NE = "!="
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    IN = "in"


def shifted(at: datetime, by: timedelta) -> datetime:
    """``at + by``, held at the first or last representable instant rather than overflowing
    (a period asked for up to 9999-12-31, a window back from 0001-01-01)."""
    try:
        return at + by
    except OverflowError:
        edge = datetime.max if by > timedelta(0) else datetime.min
        return edge.replace(tzinfo=at.tzinfo)


def compare(op: Operator, actual: Any, expected: Any) -> bool:
    """Whether ``actual op expected``; an attribute missing or of another kind never matches
    (a string is not ``>= 24``, and neither is a boolean)."""
    if actual is None:
        return False
    if op is Operator.EQ:
        return bool(actual == expected)
    if op is Operator.NE:
        return bool(actual != expected)
    if op is Operator.IN:
        return isinstance(expected, list | tuple) and actual in expected
    numeric = (int, float, Decimal)
    if isinstance(actual, bool) or not isinstance(actual, numeric):
        return False
    if isinstance(expected, bool) or not isinstance(expected, numeric):
        return False
    if op is Operator.GT:
        return bool(actual > expected)
    if op is Operator.GE:
        return bool(actual >= expected)
    if op is Operator.LT:
        return bool(actual < expected)
    return bool(actual <= expected)


# --- conditions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class InteractionCondition:
    """An interaction of ``activity`` whose attributes meet every ``(name, op, value)``."""

    activity: str
    attributes: tuple[tuple[str, Operator, Any], ...] = ()

    def matches(self, activity: str, attributes: Mapping[str, Any]) -> bool:
        return activity == self.activity and all(
            compare(op, attributes.get(name), value) for name, op, value in self.attributes
        )


@dataclass(frozen=True)
class RepeatContacts:
    """At least ``count`` interactions of the customer within ``days`` days, this one included."""

    count: int
    days: int

    def met(self, contact_times: Iterable[datetime], at: datetime) -> bool:
        since = shifted(at, -timedelta(days=self.days))
        return sum(1 for t in contact_times if since < t <= at) >= self.count


@dataclass(frozen=True)
class Fact:
    """What journey knows from feedback: a ``response`` or a ``case``, with its state."""

    kind: str
    ref_id: str
    occurred_at: datetime
    state: str
    payload: Mapping[str, Any] = field(default_factory=dict)


#: Case states that are not over (feedback's ``open -> acknowledged -> action_documented``).
CLOSED_CASE_STATES = frozenset({"closed"})
#: At or under these a score is a complaint: an NPS detractor, an unsatisfied CSAT.
LOW_SCORES = {"nps": 6, "csat": 2}


def is_negative_response(fact: Fact) -> bool:
    """A response whose sentiment reads negative, or whose score is a detractor's."""
    if fact.kind != "response":
        return False
    sentiment = fact.payload.get("sentiment")
    label = sentiment.get("label") if isinstance(sentiment, Mapping) else sentiment
    if label == "negative":
        return True
    ceiling = LOW_SCORES.get(str(fact.payload.get("kind")))
    score = fact.payload.get("score")
    return ceiling is not None and isinstance(score, int) and score <= ceiling


@dataclass(frozen=True)
class NegativeFeedbackWhileCaseOpen:
    """A negative response given after a case opened, the case still open."""

    def open_case_with_complaint(self, facts: Sequence[Fact], at: datetime) -> Fact | None:
        """The earliest open case followed by a negative response by ``at``, if any: the
        trigger acts once per such case."""
        complaints = [
            f.occurred_at for f in facts if is_negative_response(f) and f.occurred_at <= at
        ]
        cases = sorted(
            (
                f
                for f in facts
                if f.kind == "case" and f.state not in CLOSED_CASE_STATES and f.occurred_at <= at
            ),
            key=lambda f: f.occurred_at,
        )
        return next((c for c in cases if any(t >= c.occurred_at for t in complaints)), None)


@dataclass(frozen=True)
class StageOverdue:
    """A handoff of journey map ``map`` broke its SLA (``cx.journey.handoff.delayed.v1``)."""

    map: str


Condition = InteractionCondition | RepeatContacts | NegativeFeedbackWhileCaseOpen | StageOverdue


# --- actions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """At most ``value`` in gestures per ``days`` days, across the trigger's customers."""

    value: Decimal
    days: int


@dataclass(frozen=True)
class Trigger:
    key: str
    version: int
    when: Condition
    #: Each ``{"type": "notify" | "create_task" | "invite_survey" | "offer_gesture", ...}``.
    actions: tuple[Mapping[str, Any], ...]
    holdout_percent: float = 0.0
    budget: Budget | None = None
    enabled: bool = True


@dataclass(frozen=True)
class QuietHours:
    """From ``start`` to ``end`` local time (across midnight when ``end <= start``)."""

    start: time
    end: time

    def contains(self, local: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


@dataclass(frozen=True)
class ContactPolicy:
    """A tenant's limits on proactive contact: at most ``max_contacts`` in ``per_days`` days per
    customer across all triggers, none during ``quiet_hours`` of the customer's zone."""

    max_contacts: int
    per_days: int
    quiet_hours: QuietHours
    timezone: str


@dataclass(frozen=True)
class LoggedAction:
    """One row of the customer's action log, as the decision needs it."""

    trigger_key: str
    dedupe_key: str
    outcome: Outcome
    at: datetime


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    #: What was done (empty unless ``taken``); a gesture over budget is kept with
    #: ``"offered": False`` so the log says why it was not offered.
    actions: tuple[Mapping[str, Any], ...]


def in_holdout(tenant: str, trigger_key: str, customer_id: str, percent: float) -> bool:
    """The same answer for the same customer on every replica and after every restart: a hash
    of tenant, trigger and customer into 10,000 buckets, the lowest ``percent`` held out."""
    if percent <= 0:
        return False
    digest = hashlib.sha256(f"{tenant}\x1f{trigger_key}\x1f{customer_id}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % 10_000
    return bucket < math.floor(percent * 100)


def customer_zone(attributes: Mapping[str, Any], default: str) -> ZoneInfo:
    """The interaction's ``timezone`` attribute if it names a zone, else the tenant's."""
    named = attributes.get("timezone")
    if isinstance(named, str):
        try:
            return ZoneInfo(named)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo(default)


def is_quiet(at: datetime, zone: ZoneInfo, quiet_hours: QuietHours) -> bool:
    try:
        local = at.astimezone(zone)
    except OverflowError:  # the last hours of 9999 east of UTC: the zone's clock has no day
        local = at
    return quiet_hours.contains(local.time().replace(tzinfo=None))


def dedupe_key(trigger_key: str, attributes: Mapping[str, Any], day: date) -> str:
    """The trigger and what the interaction is about (its order or shipment), else the day:
    a delayed shipment reported five times is acted on once."""
    for name in SUBJECT_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool):
            return f"{trigger_key}:{name}:{value}"
    return f"{trigger_key}:day:{day.isoformat()}"


def gesture_spent(log: Iterable[Mapping[str, Any]]) -> Decimal:
    """The value of the gestures offered in ``log`` (each an actions list entry)."""
    return sum(
        (
            Decimal(str(a["value"]))
            for a in log
            if a.get("type") == "offer_gesture" and a.get("offered", True)
        ),
        Decimal(0),
    )


def decide(
    *,
    tenant: str,
    trigger: Trigger,
    customer_id: str,
    dedupe: str,
    at: datetime,
    zone: ZoneInfo,
    policy: ContactPolicy,
    log: Sequence[LoggedAction],
    spent_in_budget_period: Decimal = Decimal(0),
) -> Decision:
    """What to do for a customer the trigger matched, given their action log (every trigger's,
    newest or oldest first) and what the trigger's gestures cost over its budget period."""
    if any(a.dedupe_key == dedupe and a.outcome in SETTLED for a in log):
        return Decision(Outcome.DUPLICATE, ())
    since = shifted(at, -timedelta(days=policy.per_days))
    contacts = sum(1 for a in log if a.outcome is Outcome.TAKEN and since < a.at <= at)
    if contacts >= policy.max_contacts:
        return Decision(Outcome.CAPPED, ())
    if is_quiet(at, zone, policy.quiet_hours):
        return Decision(Outcome.QUIET, ())
    if in_holdout(tenant, trigger.key, customer_id, trigger.holdout_percent):
        return Decision(Outcome.HELD_OUT, ())
    return Decision(Outcome.TAKEN, within_budget(trigger, spent_in_budget_period))


def within_budget(trigger: Trigger, spent: Decimal) -> tuple[Mapping[str, Any], ...]:
    """The trigger's actions, each gesture marked offered or not by what its budget has left."""
    done: list[Mapping[str, Any]] = []
    for action in trigger.actions:
        if action.get("type") != "offer_gesture":
            done.append(action)
            continue
        value = Decimal(str(action["value"]))
        affordable = trigger.budget is None or spent + value <= trigger.budget.value
        if affordable:
            spent += value
            done.append({**action, "offered": True})
        else:
            done.append({**action, "offered": False, "reason": "over_budget"})
    return tuple(done)


# --- effect --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Followed:
    """One customer the trigger matched (``treated``: the actions ran; else held out), and
    what followed within the follow-up window."""

    customer_id: str
    treated: bool
    complained: bool
    contacts_after: int
    #: The first NPS score given after the trigger, if any.
    nps_after: int | None
    gesture_cost: Decimal = Decimal(0)


@dataclass(frozen=True)
class Effect:
    """Treated against held out: each difference is treated minus held out. A comparison is
    None when a side has too few customers for its test (no one, or under two for a mean)."""

    treated: int
    held_out: int
    complaints: Change | None
    repeat_contacts: Change | None
    nps: Change | None
    gesture_cost: Decimal
    #: Complaints the treatment avoided: the held-out complaint rate applied to the treated,
    #: less the treated's complaints (negative when treatment did worse).
    complaints_avoided: float | None
    cost_per_complaint_avoided: Decimal | None


def _sd(values: Sequence[int]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _nps_groups(scores: Sequence[int]) -> tuple[int, int, int]:
    promoters = sum(1 for s in scores if s >= PROMOTER_FLOOR)
    detractors = sum(1 for s in scores if s <= DETRACTOR_CEILING)
    return promoters, len(scores) - promoters - detractors, detractors


def effect(followed: Sequence[Followed]) -> Effect:
    treated = [f for f in followed if f.treated]
    held = [f for f in followed if not f.treated]
    complaints = None
    avoided: float | None = None
    if treated and held:
        complaints = proportion_change(
            sum(f.complained for f in held),
            len(held),
            sum(f.complained for f in treated),
            len(treated),
        )
        avoided = -complaints.difference * len(treated)
    repeat = None
    if len(treated) >= 2 and len(held) >= 2:
        a = [f.contacts_after for f in held]
        b = [f.contacts_after for f in treated]
        repeat = mean_change(sum(a) / len(a), _sd(a), len(a), sum(b) / len(b), _sd(b), len(b))
    nps = None
    held_scores = [f.nps_after for f in held if f.nps_after is not None]
    treated_scores = [f.nps_after for f in treated if f.nps_after is not None]
    if held_scores and treated_scores:
        nps = nps_change(*_nps_groups(held_scores), *_nps_groups(treated_scores))
    cost = sum((f.gesture_cost for f in treated), Decimal(0))
    per_complaint = None
    if avoided is not None and avoided > 0:
        per_complaint = (cost / Decimal(str(avoided))).quantize(Decimal("0.01"))
    return Effect(
        treated=len(treated),
        held_out=len(held),
        complaints=complaints,
        repeat_contacts=repeat,
        nps=nps,
        gesture_cost=cost,
        complaints_avoided=avoided,
        cost_per_complaint_avoided=per_complaint,
    )
