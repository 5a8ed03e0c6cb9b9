"""Closed-loop cases: when a response opens one, the states it walks through, and its SLA clocks.

**Rules.** A :class:`CaseRule` is conditions that must all hold for one response; a
:class:`CaseRules` set opens a case when any rule matches (the first match is recorded in the
case's history). The owning team is that of the first response topic with an owner in
``topic_teams``, else ``default_team``. Until a tenant sets its own, :data:`DEFAULT_RULES` open a
case for NPS <= 6, CSAT <= 2 and CES >= 5.

**States.** ``open -> acknowledged -> action_documented -> closed``, and ``reopen`` from closed
back to open; ``assign`` changes the owner in any state but closed. :data:`TRANSITIONS` is the
whole table: anything else raises :class:`TransitionRefused`, which names the actions allowed
from the current state. Each transition returns the new case and the history entry to store.

**Clocks.** Acknowledge, document the corrective action and close, each within its time of the
negative feedback's occurred time (24 h, 72 h, 7 days by default). A case carries the tenant's
:class:`SlaPolicy` as it was when the case opened, so a later change of the setting does not move
running clocks. A clock is met when its action comes before its deadline and breached when the
deadline comes first; each breach is recorded once. A case still unacknowledged half way through
its acknowledge clock escalates to its team's supervisor, once. :func:`next_due` gives the one
moment a service arms a timer for; :func:`check_clocks` records what fell due when it fires.

A reopen starts a new round: all three clocks restart from the reopen with the same durations,
the escalation can fire again, and the breaches of earlier rounds stay recorded.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from cxops.feedback.domain.sentiment import SentimentLabel
from cxops.stats.scales import SCALES, SurveyKind

#: The team of a case whose topics have no owner: routing's fallback queue has the same name.
DEFAULT_TEAM = "cases"


@dataclass(frozen=True, slots=True)
class ResponseFacts:
    """What the rules look at in one feedback response. A free-text response has no ``kind``
    and no ``score``; one not analysed yet has no sentiment."""

    kind: SurveyKind | None = None
    score: int | None = None
    sentiment: SentimentLabel | None = None
    sentiment_confidence: float | None = None
    topics: Sequence[str] = ()
    tier: str | None = None


@dataclass(frozen=True, slots=True)
class CaseRule:
    """Every condition given must hold. A response has one kind, so a rule takes at most one
    score condition (one with two could never match); a rule with no condition would open a case
    for every response, so it is refused."""

    name: str
    nps_at_most: int | None = None
    csat_at_most: int | None = None
    ces_at_least: int | None = None
    #: Negative sentiment with a confidence strictly above this.
    negative_sentiment_above: float | None = None
    #: Any of the response's topics is one of these.
    topics: frozenset[str] | None = None
    tiers: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("a case rule needs a name")
        scores = {
            SurveyKind.NPS: self.nps_at_most,
            SurveyKind.CSAT: self.csat_at_most,
            SurveyKind.CES: self.ces_at_least,
        }
        given = {kind: limit for kind, limit in scores.items() if limit is not None}
        if len(given) > 1:
            raise ValueError(f"rule {self.name}: more than one score condition ({len(given)})")
        for kind, limit in given.items():
            if not SCALES[kind].contains(limit):
                raise ValueError(f"rule {self.name}: {kind} {limit} is off its scale")
        confidence = self.negative_sentiment_above
        if confidence is not None and not 0 <= confidence < 1:
            raise ValueError(f"rule {self.name}: sentiment confidence {confidence} not in [0, 1)")
        if self.topics is not None and not self.topics:
            raise ValueError(f"rule {self.name}: an empty topic set never matches")
        if self.tiers is not None and not self.tiers:
            raise ValueError(f"rule {self.name}: an empty tier set never matches")
        if not given and confidence is None and self.topics is None and self.tiers is None:
            raise ValueError(f"rule {self.name} has no condition")

    def matches(self, facts: ResponseFacts) -> bool:
        if self.nps_at_most is not None and not _scored(facts, SurveyKind.NPS, self.nps_at_most):
            return False
        if self.csat_at_most is not None and not _scored(facts, SurveyKind.CSAT, self.csat_at_most):
            return False
        if self.ces_at_least is not None and not (
            facts.kind is SurveyKind.CES
            and facts.score is not None
            and facts.score >= self.ces_at_least
        ):
            return False
        if self.negative_sentiment_above is not None and not (
            facts.sentiment is SentimentLabel.NEGATIVE
            and facts.sentiment_confidence is not None
            and facts.sentiment_confidence > self.negative_sentiment_above
        ):
            return False
        if self.topics is not None and self.topics.isdisjoint(facts.topics):
            return False
        return self.tiers is None or facts.tier in self.tiers


def _scored(facts: ResponseFacts, kind: SurveyKind, at_most: int) -> bool:
    return facts.kind is kind and facts.score is not None and facts.score <= at_most


DEFAULT_RULES: tuple[CaseRule, ...] = (
    CaseRule("nps-detractor", nps_at_most=6),
    CaseRule("csat-dissatisfied", csat_at_most=2),
    CaseRule("ces-high-effort", ces_at_least=5),
)


@dataclass(frozen=True, slots=True)
class CaseRules:
    """A tenant's setting. Rules are tried in order; the first that matches is the one
    recorded."""

    rules: tuple[CaseRule, ...] = DEFAULT_RULES
    #: Topic -> owning team (the taxonomy's ``owner`` fields).
    topic_teams: Mapping[str, str] = field(default_factory=dict)
    default_team: str = DEFAULT_TEAM

    def __post_init__(self) -> None:
        names = [rule.name for rule in self.rules]
        if len(set(names)) != len(names):
            raise ValueError("case rule names repeat: the history could not tell them apart")
        if not self.default_team.strip():
            raise ValueError("the default team is blank")


@dataclass(frozen=True, slots=True)
class CaseDecision:
    """Whether a case opens and, if it does, the rule that matched, the owning team and the
    topic that named it (``None``: no topic has an owner, the default team takes the case)."""

    opens: bool
    rule: str | None = None
    team: str | None = None
    topic: str | None = None


def evaluate(facts: ResponseFacts, rules: CaseRules) -> CaseDecision:
    matched = next((rule for rule in rules.rules if rule.matches(facts)), None)
    if matched is None:
        return CaseDecision(opens=False)
    owned = next((topic for topic in facts.topics if topic in rules.topic_teams), None)
    if owned is None:
        return CaseDecision(opens=True, rule=matched.name, team=rules.default_team)
    return CaseDecision(opens=True, rule=matched.name, team=rules.topic_teams[owned], topic=owned)


class CaseState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    ACTION_DOCUMENTED = "action_documented"
    CLOSED = "closed"


class CaseAction(StrEnum):
    #: Only :func:`open_case` makes it: no state leads to it, so it is in no transition.
    OPEN = "open"
    ASSIGN = "assign"
    ACKNOWLEDGE = "acknowledge"
    DOCUMENT_ACTION = "document_action"
    CLOSE = "close"
    REOPEN = "reopen"


TRANSITIONS: Mapping[tuple[CaseState, CaseAction], CaseState] = {
    (CaseState.OPEN, CaseAction.ASSIGN): CaseState.OPEN,
    (CaseState.ACKNOWLEDGED, CaseAction.ASSIGN): CaseState.ACKNOWLEDGED,
    (CaseState.ACTION_DOCUMENTED, CaseAction.ASSIGN): CaseState.ACTION_DOCUMENTED,
    (CaseState.OPEN, CaseAction.ACKNOWLEDGE): CaseState.ACKNOWLEDGED,
    (CaseState.ACKNOWLEDGED, CaseAction.DOCUMENT_ACTION): CaseState.ACTION_DOCUMENTED,
    (CaseState.ACTION_DOCUMENTED, CaseAction.CLOSE): CaseState.CLOSED,
    (CaseState.CLOSED, CaseAction.REOPEN): CaseState.OPEN,
}


def allowed_actions(state: CaseState) -> tuple[CaseAction, ...]:
    return tuple(action for (source, action) in TRANSITIONS if source is state)


class TransitionRefused(Exception):
    """An action the case's state does not allow (the service answers 409)."""

    def __init__(self, state: CaseState, action: CaseAction) -> None:
        self.state = state
        self.action = action
        self.allowed = allowed_actions(state)
        allowed = ", ".join(self.allowed)
        super().__init__(f"cannot {action} a case that is {state}; allowed: {allowed}")


class CaseInputError(ValueError):
    """An allowed action with unusable input: a blank text, a naive time (the service answers
    422)."""


class RootCauseCategory(StrEnum):
    PEOPLE = "people"
    PROCESS = "process"
    POLICY = "policy"
    PRODUCT = "product"
    TECHNOLOGY = "technology"
    PARTNER = "partner"


@dataclass(frozen=True, slots=True)
class RootCause:
    """``why_chain`` is the five-whys answers in order, at least one."""

    category: RootCauseCategory
    why_chain: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.why_chain or any(not why.strip() for why in self.why_chain):
            raise CaseInputError("a root cause needs a why chain of non-blank answers")


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """A tenant's SLA clocks, each counted from the start of the case's round (the feedback's
    occurred time, or the last reopen)."""

    acknowledge_within: timedelta = timedelta(hours=24)
    action_within: timedelta = timedelta(hours=72)
    close_within: timedelta = timedelta(days=7)

    def __post_init__(self) -> None:
        for name in ("acknowledge_within", "action_within", "close_within"):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be positive")


class Clock(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    ACTION = "action"
    CLOSE = "close"


@dataclass(frozen=True, slots=True)
class Breach:
    """A clock whose deadline passed without its action, in one round of the case."""

    clock: Clock
    round: int
    deadline: datetime


@dataclass(frozen=True, slots=True)
class Case:
    """One case as it stands. The ``*_at`` action times, the corrective action, the root cause
    and the resolution are those of the current round: a reopen clears them (the history keeps
    them). ``breaches`` keeps every round's."""

    state: CaseState
    team: str
    rule: str
    #: When the negative feedback occurred: the clocks and the elapsed times count from it.
    feedback_at: datetime
    opened_at: datetime
    sla: SlaPolicy
    topic: str | None = None
    owner: str | None = None
    round: int = 1
    reopened_at: datetime | None = None
    acknowledged_at: datetime | None = None
    action_documented_at: datetime | None = None
    closed_at: datetime | None = None
    corrective_action: str | None = None
    root_cause: RootCause | None = None
    resolution: str | None = None
    customer_contacted: bool | None = None
    escalated_at: datetime | None = None
    breaches: tuple[Breach, ...] = ()

    @property
    def round_started_at(self) -> datetime:
        return self.reopened_at or self.feedback_at


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One line of a case's history; ``from_state`` is ``None`` for its opening. ``detail``
    holds the action's input (rule, owner, corrective action, resolution...) as JSON values."""

    action: CaseAction
    by: str
    at: datetime
    from_state: CaseState | None
    to_state: CaseState
    detail: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Transition:
    case: Case
    entry: HistoryEntry


def open_case(
    decision: CaseDecision, *, feedback_at: datetime, at: datetime, by: str, sla: SlaPolicy
) -> Transition:
    """The case a matching response opens, ``by`` whoever opened it (the system, usually)."""
    if not decision.opens or decision.rule is None or decision.team is None:
        raise CaseInputError("the rules open no case for this response")
    _require_time(feedback_at, "feedback_at")
    _require_time(at, "at")
    _require_text(by, "by")
    case = Case(
        state=CaseState.OPEN,
        team=decision.team,
        rule=decision.rule,
        topic=decision.topic,
        feedback_at=feedback_at,
        opened_at=at,
        sla=sla,
    )
    detail = {"rule": decision.rule, "team": decision.team, "topic": decision.topic}
    return Transition(case, HistoryEntry(CaseAction.OPEN, by, at, None, case.state, detail))


def assign(case: Case, *, owner: str, by: str, at: datetime) -> Transition:
    _target(case, CaseAction.ASSIGN)
    _require_text(owner, "owner")
    return _move(case, CaseAction.ASSIGN, by, at, {"owner": owner}, owner=owner)


def acknowledge(case: Case, *, by: str, at: datetime) -> Transition:
    return _move(case, CaseAction.ACKNOWLEDGE, by, at, {}, acknowledged_at=at)


def document_action(
    case: Case, *, corrective_action: str, root_cause: RootCause, by: str, at: datetime
) -> Transition:
    _target(case, CaseAction.DOCUMENT_ACTION)
    _require_text(corrective_action, "corrective_action")
    detail = {
        "corrective_action": corrective_action,
        "root_cause": {
            "category": str(root_cause.category),
            "why_chain": list(root_cause.why_chain),
        },
    }
    return _move(
        case,
        CaseAction.DOCUMENT_ACTION,
        by,
        at,
        detail,
        action_documented_at=at,
        corrective_action=corrective_action,
        root_cause=root_cause,
    )


def close(
    case: Case, *, resolution: str, customer_contacted: bool, by: str, at: datetime
) -> Transition:
    _target(case, CaseAction.CLOSE)
    _require_text(resolution, "resolution")
    detail = {"resolution": resolution, "customer_contacted": customer_contacted}
    return _move(
        case,
        CaseAction.CLOSE,
        by,
        at,
        detail,
        closed_at=at,
        resolution=resolution,
        customer_contacted=customer_contacted,
    )


def reopen(case: Case, *, by: str, at: datetime, reason: str | None = None) -> Transition:
    """Start a new round: every clock restarts from ``at`` with the case's SLA (a reopened case
    must be acknowledged, actioned and closed again, on time), the round's action times and
    texts are cleared and the escalation may fire again. Breaches already recorded stay."""
    return _move(
        case,
        CaseAction.REOPEN,
        by,
        at,
        {"reason": reason, "round": case.round + 1},
        round=case.round + 1,
        reopened_at=at,
        acknowledged_at=None,
        action_documented_at=None,
        closed_at=None,
        corrective_action=None,
        root_cause=None,
        resolution=None,
        customer_contacted=None,
        escalated_at=None,
    )


def _move(
    case: Case,
    action: CaseAction,
    by: str,
    at: datetime,
    detail: Mapping[str, object],
    **changes: Any,
) -> Transition:
    target = _target(case, action)
    _require_text(by, "by")
    _require_time(at, "at")
    moved = replace(case, state=target, **changes)
    return Transition(moved, HistoryEntry(action, by, at, case.state, target, detail))


def _target(case: Case, action: CaseAction) -> CaseState:
    """Checked before the input, so a refused action is refused whatever came with it."""
    target = TRANSITIONS.get((case.state, action))
    if target is None:
        raise TransitionRefused(case.state, action)
    return target


def _require_text(value: str, name: str) -> None:
    if not value.strip():
        raise CaseInputError(f"{name} is blank")


def _require_time(value: datetime, name: str) -> None:
    if value.utcoffset() is None:
        raise CaseInputError(f"{name} has no timezone")


class ClockStatus(StrEnum):
    PENDING = "pending"
    MET = "met"
    BREACHED = "breached"


def deadlines(case: Case) -> Mapping[Clock, datetime]:
    """The current round's deadlines. A deadline is the first instant at which its clock is
    breached: the action is on time strictly before it."""
    start = case.round_started_at
    return {
        Clock.ACKNOWLEDGE: start + case.sla.acknowledge_within,
        Clock.ACTION: start + case.sla.action_within,
        Clock.CLOSE: start + case.sla.close_within,
    }


def clock_status(case: Case, now: datetime) -> Mapping[Clock, ClockStatus]:
    """Met: the action happened before the deadline. Breached: the deadline came without it (or
    the action came at or after it). Pending: neither yet."""
    status = {}
    for clock, deadline in deadlines(case).items():
        done = _done_at(case, clock)
        if done is not None and done < deadline:
            status[clock] = ClockStatus.MET
        elif (done or now) >= deadline:
            status[clock] = ClockStatus.BREACHED
        else:
            status[clock] = ClockStatus.PENDING
    return status


def breached_clocks(case: Case, now: datetime) -> tuple[Clock, ...]:
    return tuple(c for c, s in clock_status(case, now).items() if s is ClockStatus.BREACHED)


def escalation_at(case: Case) -> datetime | None:
    """When a case still unacknowledged goes to its team's supervisor: half its acknowledge
    clock into the round. ``None`` once acknowledged or escalated in this round."""
    if case.acknowledged_at is not None or case.escalated_at is not None:
        return None
    return case.round_started_at + case.sla.acknowledge_within / 2


@dataclass(frozen=True, slots=True)
class ClockCheck:
    """The case with what fell due recorded, and what fell due now: the breaches and whether
    to escalate, each to be published once."""

    case: Case
    breaches: tuple[Breach, ...]
    escalate: bool


def check_clocks(case: Case, now: datetime) -> ClockCheck:
    """Record what has fallen due by ``now`` and was not recorded yet. Run it when a timer fires,
    after each transition and after a restart; it is idempotent, so a late or repeated timer
    fires nothing twice."""
    _require_time(now, "now")
    recorded = {b.clock for b in case.breaches if b.round == case.round}
    fired = tuple(
        Breach(clock, case.round, deadlines(case)[clock])
        for clock in breached_clocks(case, now)
        if clock not in recorded
    )
    moment = escalation_at(case)
    escalate = moment is not None and now >= moment
    checked = replace(
        case,
        breaches=case.breaches + fired,
        escalated_at=now if escalate else case.escalated_at,
    )
    return ClockCheck(checked, fired, escalate)


def next_due(case: Case, now: datetime) -> datetime | None:
    """The moment to arm the case's one timer for: the earliest breach or escalation not
    recorded yet, or ``now`` if one is already overdue (a timer lost in a restart); ``None`` when
    nothing is left to fall due in this round (every clock met or its breach recorded, and no
    escalation pending)."""
    recorded = {b.clock for b in case.breaches if b.round == case.round}
    status = clock_status(case, now)
    moments = [
        deadline
        for clock, deadline in deadlines(case).items()
        if status[clock] is not ClockStatus.MET and clock not in recorded
    ]
    escalation = escalation_at(case)
    if escalation is not None:
        moments.append(escalation)
    return max(min(moments), now) if moments else None


@dataclass(frozen=True, slots=True)
class Elapsed:
    """Seconds from the feedback's occurred time to each action of the current round (after a
    reopen too: the customer has waited since the feedback), ``None`` before the action."""

    acknowledge: float | None
    action: float | None
    close: float | None


def elapsed(case: Case) -> Elapsed:
    def since_feedback(at: datetime | None) -> float | None:
        return None if at is None else (at - case.feedback_at).total_seconds()

    return Elapsed(
        acknowledge=since_feedback(case.acknowledged_at),
        action=since_feedback(case.action_documented_at),
        close=since_feedback(case.closed_at),
    )


def _done_at(case: Case, clock: Clock) -> datetime | None:
    return {
        Clock.ACKNOWLEDGE: case.acknowledged_at,
        Clock.ACTION: case.action_documented_at,
        Clock.CLOSE: case.closed_at,
    }[clock]


#: How long after a case closes the same root cause coming back counts as a recurrence.
RECURRENCE_WINDOW = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class CauseRecord:
    """One case with its corrective action documented: the root cause's category, its topic and
    team, when the case opened and, if it did, when it closed."""

    category: RootCauseCategory
    topic: str | None
    team: str
    opened_at: datetime
    closed_at: datetime | None = None

    @property
    def key(self) -> tuple[RootCauseCategory, str | None, str]:
        return (self.category, self.topic, self.team)


@dataclass(frozen=True, slots=True)
class ParetoRow:
    """One root cause (category x topic x team): its cases, their share of all cases in the
    window, the running share down the sorted list, and how many of its cases were
    recurrences."""

    category: RootCauseCategory
    topic: str | None
    team: str
    count: int
    share: float
    cumulative_share: float
    recurrences: int


def root_cause_pareto(
    records: Sequence[CauseRecord],
    *,
    start: datetime,
    end: datetime,
    window: timedelta = RECURRENCE_WINDOW,
) -> tuple[ParetoRow, ...]:
    """The root causes of the cases opened in ``[start, end)``, most frequent first (ties in
    category, topic and team order, so the answer does not depend on the input's order).

    A case is a recurrence when another case with the same root cause closed before it opened
    (strictly: a case is never a recurrence of itself), at most ``window`` before. ``records``
    may hold cases outside the period too: those closed in the ``window`` before ``start`` are
    what makes a case early in the period a recurrence.
    """
    _require_time(start, "start")
    _require_time(end, "end")
    closings: dict[tuple[RootCauseCategory, str | None, str], list[datetime]] = {}
    for record in records:
        if record.closed_at is not None:
            closings.setdefault(record.key, []).append(record.closed_at)
    counts: dict[tuple[RootCauseCategory, str | None, str], list[int]] = {}
    for record in records:
        if not start <= record.opened_at < end:
            continue
        tally = counts.setdefault(record.key, [0, 0])
        tally[0] += 1
        if any(
            closed < record.opened_at <= closed + window for closed in closings.get(record.key, ())
        ):
            tally[1] += 1
    total = sum(count for count, _ in counts.values())
    ordered = sorted(
        counts.items(), key=lambda item: (-item[1][0], item[0][0], item[0][1] or "", item[0][2])
    )
    rows = []
    running = 0
    for (category, topic, team), (count, recurrences) in ordered:
        running += count
        rows.append(
            ParetoRow(
                category=category,
                topic=topic,
                team=team,
                count=count,
                share=count / total,
                cumulative_share=running / total,
                recurrences=recurrences,
            )
        )
    return tuple(rows)
