"""The formats routing reads and writes: the replay scenario (``SCENARIO.json`` of ``cxops routing
replay``, and later the body of the routing API), and staffing's inputs and answers (the options
and forecast CSV of ``cxops staffing``, the bodies and responses of ``/v1/routing/staffing/...``).

A scenario is validated into the engine's own objects, and the replay's result written back as
plain JSON. Validation is all-or-nothing and names every problem's place the way a user would
find it in the file (``tasks[3].requires.billing``); nothing runs until the whole scenario is
valid. The models refuse unknown fields, so one can be an API's request body as it stands.
"""

import csv
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, Self, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from cxops.common.validation import UtcDateTime
from cxops.routing.domain.engine import Policy
from cxops.routing.domain.escalation import Action, Condition, EscalationRule, Queue
from cxops.routing.domain.learning import LearningPolicy
from cxops.routing.domain.model import (
    DEFAULT_TIERS,
    Agent,
    AttributeValue,
    Event,
    Presence,
    Task,
    Tier,
)
from cxops.routing.domain.relaxation import Relaxation, RelaxationStep
from cxops.routing.domain.replay import (
    ReplayAgent,
    ReplayResult,
    ReplayTask,
    Response,
    Scenario,
    summarise,
)
from cxops.routing.domain.staffing import Demand, IntervalPlan, PlanTotals, Staffing, Target

Proficiency = Annotated[int, Field(ge=1, le=5)]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]
PositiveSeconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Name = Annotated[str, Field(min_length=1)]
Skills = dict[Name, Proficiency]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentSpec(_Spec):
    id: Name
    skills: Skills = {}
    channels: dict[Name, Annotated[int, Field(ge=1)]] = Field(min_length=1)
    response: Literal["accept", "reject", "ignore"] = "accept"
    accept_seconds: Seconds = 0.0
    wrap_up_seconds: Seconds = 0.0
    start_seconds: Seconds = 0.0
    end_seconds: Seconds | None = None
    pinned_skills: list[Name] = []


class AttributesSpec(_Spec):
    language: Name | None = None
    sentiment: Annotated[float, Field(ge=-1, le=1)] | None = None
    repeat_contacts: Annotated[int, Field(ge=0)] | None = None
    sla_deadline_seconds: Seconds | None = None
    case_id: Name | None = None


class TaskSpec(_Spec):
    id: Name
    arrival_seconds: Seconds
    channel: Name
    handle_seconds: Seconds
    requires: Skills = {}
    optional: Skills = {}
    priority: int = 0
    tier: Name = "standard"
    queue: Name | None = None
    patience_seconds: PositiveSeconds | None = None
    attributes: AttributesSpec = AttributesSpec()
    resolved_first_contact: bool | None = None
    csat: Annotated[int, Field(ge=1, le=5)] | None = None


class TierSpec(_Spec):
    weight: int
    target_answer_seconds: Seconds


class RelaxationSpec(_Spec):
    after_seconds: Seconds
    lower_by: Annotated[int, Field(ge=0)] = 0
    drop_optional: bool = False
    overflow: Skills | None = None


class QueueSpec(_Spec):
    requires: Skills = {}
    optional: Skills = {}


class ConditionSpec(_Spec):
    wait_seconds_at_least: Seconds | None = None
    sla_seconds_left_at_most: Seconds | None = None
    priority_at_least: int | None = None
    priority_at_most: int | None = None
    tiers: list[Name] | None = None
    queues: list[Name] | None = None
    sentiment_below: Annotated[float, Field(ge=-1, le=1)] | None = None
    repeat_contacts_at_least: Annotated[int, Field(ge=0)] | None = None


class ActionSpec(_Spec):
    raise_priority: Annotated[int, Field(ge=0)] = 0
    require: Skills = {}
    move_to_queue: Name | None = None
    alert_supervisor: bool = False


class RuleSpec(_Spec):
    name: Name
    when: ConditionSpec = ConditionSpec()
    then: ActionSpec


class LearningSpec(_Spec):
    rate: Annotated[float, Field(gt=0, le=1)] = 0.05
    min_outcomes: Annotated[int, Field(ge=0)] = 20
    hysteresis: Annotated[float, Field(ge=0)] = 0.25
    max_drift: Annotated[int, Field(ge=0, le=4)] = 1


class ScenarioSpec(_Spec):
    agents: list[AgentSpec] = Field(min_length=1)
    tasks: list[TaskSpec]
    tiers: dict[Name, TierSpec] | None = None
    queues: dict[Name, QueueSpec] = {}
    relaxation: list[RelaxationSpec] = []
    escalation: list[RuleSpec] = []
    offer_timeout_seconds: PositiveSeconds = 15.0
    max_consecutive_timeouts: Annotated[int, Field(ge=1)] = 3
    learning: LearningSpec | None = None

    def tier_names(self) -> set[str]:
        return set(self.tiers) if self.tiers is not None else set(DEFAULT_TIERS)

    def problems(self) -> Iterator[tuple[str, str]]:
        """What the field types cannot say: duplicates and references to undeclared names."""
        seen: set[str] = set()
        channels: set[str] = set()
        for i, agent in enumerate(self.agents):
            if agent.id in seen:
                yield f"agents[{i}].id", f"duplicate agent id {agent.id!r}"
            seen.add(agent.id)
            channels.update(agent.channels)
            if agent.end_seconds is not None and agent.end_seconds < agent.start_seconds:
                yield f"agents[{i}].end_seconds", "ends before start_seconds"
            for j, skill in enumerate(agent.pinned_skills):
                if skill not in agent.skills:
                    yield f"agents[{i}].pinned_skills[{j}]", f"{skill!r} is not in skills"
        tiers = self.tier_names()
        seen = set()
        for i, task in enumerate(self.tasks):
            if task.id in seen:
                yield f"tasks[{i}].id", f"duplicate task id {task.id!r}"
            seen.add(task.id)
            if task.channel not in channels:
                known = ", ".join(sorted(channels))
                yield (
                    f"tasks[{i}].channel",
                    f"unknown channel {task.channel!r} (agents have {known})",
                )
            if task.tier not in tiers:
                yield (
                    f"tasks[{i}].tier",
                    f"unknown tier {task.tier!r} (tiers: {', '.join(sorted(tiers))})",
                )
        seen = set()
        for i, rule in enumerate(self.escalation):
            if rule.name in seen:
                yield f"escalation[{i}].name", f"duplicate rule name {rule.name!r}"
            seen.add(rule.name)
            if rule.then.move_to_queue is not None and rule.then.move_to_queue not in self.queues:
                yield (
                    f"escalation[{i}].then.move_to_queue",
                    f"undeclared queue {rule.then.move_to_queue!r}",
                )
            for j, tier in enumerate(rule.when.tiers or ()):
                if tier not in tiers:
                    yield f"escalation[{i}].when.tiers[{j}]", f"unknown tier {tier!r}"


class ScenarioError(ValueError):
    """Every problem of a scenario, each as (place, message)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{place}: {message}" for place, message in problems))


def load_scenario(data: object) -> Scenario:
    """Validate decoded JSON into a runnable scenario, or raise :class:`ScenarioError`."""
    try:
        spec = ScenarioSpec.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError([_problem(error) for error in exc.errors()]) from None
    problems = list(spec.problems())
    if problems:
        raise ScenarioError(problems)
    return _scenario(spec)


def _problem(error: Mapping[str, Any]) -> tuple[str, str]:
    place = ""
    for part in error["loc"]:
        place += f"[{part}]" if isinstance(part, int) else (f".{part}" if place else str(part))
    return place or "scenario", error["msg"]


def _scenario(spec: ScenarioSpec) -> Scenario:
    tiers = (
        {name: Tier(name, t.weight, t.target_answer_seconds) for name, t in spec.tiers.items()}
        if spec.tiers is not None
        else dict(DEFAULT_TIERS)
    )
    queues = {name: Queue(name, q.requires, q.optional) for name, q in spec.queues.items()}
    policy = Policy(
        tiers=tiers,
        relaxation=relaxation(spec.relaxation),
        offer_timeout_seconds=spec.offer_timeout_seconds,
        max_consecutive_timeouts=spec.max_consecutive_timeouts,
        queues=queues,
        escalation=tuple(escalation_rule(rule) for rule in spec.escalation),
    )
    learning = None
    if spec.learning is not None:
        learning = LearningPolicy(**spec.learning.model_dump())
    agents = [
        ReplayAgent(
            Agent(a.id, dict(a.skills), dict(a.channels), Presence.READY, a.start_seconds),
            Response(a.response),
            a.accept_seconds,
            a.wrap_up_seconds,
            a.start_seconds,
            a.end_seconds,
            frozenset(a.pinned_skills),
        )
        for a in spec.agents
    ]
    return Scenario(agents, [_task(t) for t in spec.tasks], policy, learning)


def _task(spec: TaskSpec) -> ReplayTask:
    given = spec.attributes.model_dump(exclude_none=True)
    attributes: dict[str, AttributeValue] = {
        ("sla_deadline" if name == "sla_deadline_seconds" else name): value
        for name, value in given.items()
    }
    queue = spec.queue or "+".join(sorted(spec.requires)) or spec.channel
    task = Task(
        spec.id,
        spec.channel,
        spec.arrival_seconds,
        dict(spec.requires),
        dict(spec.optional),
        spec.priority,
        spec.tier,
        queue,
        attributes,
    )
    return ReplayTask(
        task, spec.handle_seconds, spec.patience_seconds, spec.resolved_first_contact, spec.csat
    )


def relaxation(steps: Iterable[RelaxationSpec]) -> Relaxation:
    return Relaxation(
        [RelaxationStep(s.after_seconds, s.lower_by, s.drop_optional, s.overflow) for s in steps]
    )


def escalation_rule(spec: RuleSpec) -> EscalationRule:
    when = spec.when
    return EscalationRule(
        spec.name,
        Condition(
            wait_seconds_at_least=when.wait_seconds_at_least,
            sla_seconds_left_at_most=when.sla_seconds_left_at_most,
            priority_at_least=when.priority_at_least,
            priority_at_most=when.priority_at_most,
            tiers=frozenset(when.tiers) if when.tiers is not None else None,
            queues=frozenset(when.queues) if when.queues is not None else None,
            sentiment_below=when.sentiment_below,
            repeat_contacts_at_least=when.repeat_contacts_at_least,
        ),
        Action(
            spec.then.raise_priority,
            dict(spec.then.require),
            spec.then.move_to_queue,
            spec.then.alert_supervisor,
        ),
    )


def report(result: ReplayResult) -> dict[str, Any]:
    """The replay as JSON: every offer and assignment, what escalated and why, and the figures
    per queue, tier and agent."""
    figures = result.figures
    events = result.events
    return {
        "totals": {
            **figures.total.summary(),
            "offers": len(result.offers),
            "simulated_seconds": figures.simulated_seconds,
        },
        "queues": summarise(figures.queues),
        "tiers": summarise(figures.tiers),
        "agents": {name: agent.summary() for name, agent in figures.agents.items()},
        "offers": [
            {
                "reservation": offer.id,
                "task": offer.task_id,
                "agent": offer.agent_id,
                "offered_at": offer.offered_at,
                "state": str(offer.state),
                "ended_at": offer.ended_at,
            }
            for offer in result.offers
        ],
        "assignments": [
            {
                "task": a.task_id,
                "agent": a.agent_id,
                "queue": a.queue,
                "tier": a.tier,
                "arrived_at": a.arrived_at,
                "accepted_at": a.accepted_at,
                "answer_seconds": a.answer_seconds,
                "finished_at": a.finished_at,
            }
            for a in result.assignments
        ],
        "escalations": _events(events, "escalated"),
        "supervisor_alerts": _events(events, "supervisor_alert"),
        "relaxations": _events(events, "relaxed"),
        "abandoned": [{"task": task_id, "at": at} for task_id, at in result.abandoned],
        "agents_away": [
            {"agent": e.agent_id, "at": e.at, "reason": e.detail}
            for e in events
            if e.kind == "agent_away"
        ],
        "proficiency_changes": [
            {"agent": e.agent_id, "at": e.at, "change": e.detail}
            for e in events
            if e.kind == "proficiency"
        ],
    }


def _events(events: list[Event], kind: str) -> list[dict[str, Any]]:
    return [{"task": e.task_id, "at": e.at, "detail": e.detail} for e in events if e.kind == kind]


# --- staffing: one interval (Erlang C, Erlang A) and a forecast's plan --------------------------
#
# One definition of each input for ``cxops staffing`` (its options, its forecast CSV) and for
# ``POST /v1/routing/staffing/...`` (the request bodies), and one of each answer (the command's
# ``--json`` and the responses), so that the same input can never give two different figures.

#: Sizes that keep one calculation within a fraction of a second (Erlang C costs one step per
#: agent; a plan, one per agent of every interval), far above any real queue.
MAX_AGENTS = 100_000
MAX_TRAFFIC_ERLANGS = 50_000
MAX_INTERVALS = 10_000
MAX_PLAN_AGENTS = 2_000_000
MAX_VOLUME = 10_000_000
DAY_SECONDS = 86_400
DAY_MINUTES = 1_440
#: Customers who wait days are in effect Erlang C's, who never hang up: more only costs work.
MAX_PATIENCE_SECONDS = 1_000_000

#: Problems of a plan's intervals reported at most (the first ones).
MAX_PROBLEMS = 20

DEFAULT_INTERVAL_MINUTES = 30.0
DEFAULT_SHRINKAGE = 0.0
DEFAULT_MAX_OCCUPANCY = 1.0
#: Erlang A's default service level (Erlang C has none: it must be given).
DEFAULT_ERLANG_A_SERVICE_LEVEL = 0.8


def _whole_number(value: Any) -> Any:
    """``14.0`` is the integer 14, as in JSON Schema; ``14.5``, ``"14"`` and ``true`` stay what
    they are, for the strict integer check to refuse."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Quantities are JSON numbers (strict: a string or a boolean is refused, as the schema says),
# finite, and in bounds.
Volume = Annotated[
    float,
    Field(
        strict=True,
        allow_inf_nan=False,
        ge=0,
        le=MAX_VOLUME,
        description="Contacts offered in the interval.",
    ),
]
AhtSeconds = Annotated[
    float,
    Field(
        strict=True,
        allow_inf_nan=False,
        ge=0.001,
        le=DAY_SECONDS,
        description="Mean handle time, seconds.",
    ),
]
IntervalMinutes = Annotated[
    float,
    Field(
        strict=True,
        allow_inf_nan=False,
        ge=0.001,
        le=DAY_MINUTES,
        description="Interval length, minutes.",
    ),
]
TargetSeconds = Annotated[
    float,
    Field(
        strict=True,
        allow_inf_nan=False,
        ge=0,
        le=DAY_SECONDS,
        description="Answer within this many seconds.",
    ),
]
ServiceLevel = Annotated[
    float,
    Field(
        strict=True,
        allow_inf_nan=False,
        gt=0,
        lt=1,
        description="Share of contacts to answer within the target, above 0 and below 1.",
    ),
]
Shrinkage = Annotated[
    float,
    Field(
        strict=True,
        allow_inf_nan=False,
        ge=0,
        lt=1,
        description=(
            "Share of paid time off the phones (breaks, training, absence), from 0, below 1."
        ),
    ),
]
MaxOccupancy = Annotated[
    float,
    Field(
        strict=True,
        allow_inf_nan=False,
        gt=0,
        le=1,
        description="Highest acceptable occupancy, above 0, at most 1.",
    ),
]
PatienceSeconds = Annotated[
    float,
    Field(
        strict=True,
        allow_inf_nan=False,
        ge=0.001,
        le=MAX_PATIENCE_SECONDS,
        description="Customers' mean patience before hanging up, seconds.",
    ),
]
#: Agents asked about; Erlang A needs at least one.
ErlangCAgents = Annotated[
    int, Field(strict=True, ge=0, le=MAX_AGENTS), BeforeValidator(_whole_number)
]
ErlangAAgents = Annotated[
    int, Field(strict=True, ge=1, le=MAX_AGENTS), BeforeValidator(_whole_number)
]
_AGENTS = "Evaluate this many agents instead of sizing (the fewest that meet the target)."

#: Where a problem is, as pydantic says it: ``("intervals", 3, "interval_start")``.
Place = tuple[str | int, ...]


class InputProblem(NamedTuple):
    """One problem of a staffing input: where, a stable code, and what is wrong."""

    place: Place
    code: str
    message: str


def place_text(place: Place) -> str:
    """``("intervals", 3, "volume")`` → ``intervals[3].volume``."""
    text = ""
    for part in place:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class StaffingInputError(ValueError):
    """Every problem of a staffing input, each with its place."""

    def __init__(self, problems: list[InputProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{place_text(p.place)}: {p.message}" for p in problems))


class _StaffingInput(_Spec):
    def problems(self) -> Iterator[InputProblem]:
        """What the field types cannot say; nothing is computed while there is one."""
        return iter(())


StaffingInputT = TypeVar("StaffingInputT", bound=_StaffingInput)


def staffing_input(model: type[StaffingInputT], data: Mapping[str, object]) -> StaffingInputT:
    """``data`` (a command's options) as ``model``, or :class:`StaffingInputError` with every
    problem: what the API answers 422 for, the command refuses, with the same words."""
    try:
        request = model.model_validate(data)
    except ValidationError as exc:
        raise StaffingInputError(
            [InputProblem(tuple(e["loc"]), e["type"], e["msg"]) for e in exc.errors()]
        ) from None
    problems = list(request.problems())
    if problems:
        raise StaffingInputError(problems)
    return request


def _size_problems(
    place: Place, traffic: float, max_occupancy: float, *, sizing: bool, interval: str = ""
) -> Iterator[InputProblem]:
    """An interval's traffic (``place`` + ``volume``) and the agents sizing it may need (at
    ``max_occupancy``, a field of the request itself) within bounds."""
    if traffic > MAX_TRAFFIC_ERLANGS:
        yield InputProblem(
            (*place, "volume"),
            "traffic_too_large",
            f"makes {traffic:,.1f} erlangs of traffic (volume * aht_seconds / the interval "
            f"length); at most {MAX_TRAFFIC_ERLANGS:,} are computed",
        )
    elif sizing and traffic / max_occupancy > MAX_AGENTS:
        yield InputProblem(
            ("max_occupancy",),
            "too_many_agents",
            f"would need more than {MAX_AGENTS:,} agents for the {traffic:,.1f} erlangs "
            f"of {interval or 'the interval'}; at most {MAX_AGENTS:,} are computed",
        )


class _OneInterval(_StaffingInput):
    """One interval's demand and the service goal."""

    volume: Volume
    interval_minutes: IntervalMinutes = DEFAULT_INTERVAL_MINUTES
    aht_seconds: AhtSeconds
    target_seconds: TargetSeconds
    service_level: ServiceLevel
    shrinkage: Shrinkage = DEFAULT_SHRINKAGE
    max_occupancy: MaxOccupancy = DEFAULT_MAX_OCCUPANCY
    agents: int | None = None  # each request states its own bounds

    def demand(self) -> Demand:
        return Demand(self.volume, self.aht_seconds, self.interval_minutes * 60)

    def target(self) -> Target:
        return Target(self.target_seconds, self.service_level, self.shrinkage, self.max_occupancy)

    def problems(self) -> Iterator[InputProblem]:
        yield from _size_problems(
            (), self.demand().traffic_erlangs, self.max_occupancy, sizing=self.agents is None
        )


class ErlangCRequest(_OneInterval):
    """Erlang C for one interval: the agents that meet the target, or, with ``agents``, what
    that many achieve. The options of ``cxops staffing erlang-c``."""

    agents: ErlangCAgents | None = Field(default=None, description=_AGENTS)


class ErlangARequest(_OneInterval):
    """Erlang A for one interval: Erlang C with customers who hang up after an exponentially
    distributed patience. The options of ``cxops staffing erlang-a``."""

    service_level: ServiceLevel = DEFAULT_ERLANG_A_SERVICE_LEVEL
    patience_seconds: PatienceSeconds
    agents: ErlangAAgents | None = Field(default=None, description=_AGENTS)


class ForecastInterval(_Spec):
    """One row of a forecast: ``interval_start,volume[,aht_seconds]`` in the CSV."""

    interval_start: UtcDateTime
    volume: Volume
    aht_seconds: AhtSeconds | None = Field(
        default=None,
        description="Mean handle time in this interval, seconds; by default the plan's.",
    )


def _uneven_start(starts: Sequence[datetime]) -> tuple[int, str] | None:
    """The first start out of order or off the spacing of the first two, and why."""
    if len(starts) < 2:
        return None
    step = starts[1] - starts[0]
    for i in range(1, len(starts)):
        gap = starts[i] - starts[i - 1]
        if gap <= timedelta(0):
            return i, (
                "interval starts must be in order and evenly spaced: this one is not after "
                "the previous"
            )
        if gap != step:
            return i, (
                f"interval starts must be in order and evenly spaced: this one is {gap} after "
                f"the previous, the first two are {step} apart"
            )
    return None


class StaffingPlanRequest(_StaffingInput):
    """Erlang C for every interval of a forecast, and the totals. The forecast CSV and the
    options of ``cxops staffing plan``."""

    intervals: list[ForecastInterval] = Field(
        min_length=1,
        max_length=MAX_INTERVALS,
        description=(
            "The forecast, starts in order and evenly spaced (a time without an offset is UTC)."
        ),
    )
    interval_minutes: IntervalMinutes | None = Field(
        default=None,
        description="Interval length, minutes; by default the spacing of the starts, else 30.",
    )
    aht_seconds: AhtSeconds = Field(description="Mean handle time where an interval has none.")
    target_seconds: TargetSeconds
    service_level: ServiceLevel
    shrinkage: Shrinkage = DEFAULT_SHRINKAGE
    max_occupancy: MaxOccupancy = DEFAULT_MAX_OCCUPANCY

    def interval_seconds(self) -> float:
        if self.interval_minutes is not None:
            return self.interval_minutes * 60
        if len(self.intervals) > 1:
            return (
                self.intervals[1].interval_start - self.intervals[0].interval_start
            ).total_seconds()
        return DEFAULT_INTERVAL_MINUTES * 60

    def rows(self) -> list[tuple[str, float, float]]:
        """The intervals as the domain plans them: ``(start, volume, aht_seconds)``."""
        return [
            (
                interval.interval_start.isoformat(),
                interval.volume,
                interval.aht_seconds if interval.aht_seconds is not None else self.aht_seconds,
            )
            for interval in self.intervals
        ]

    def target(self) -> Target:
        return Target(self.target_seconds, self.service_level, self.shrinkage, self.max_occupancy)

    def problems(self) -> Iterator[InputProblem]:
        uneven = _uneven_start([interval.interval_start for interval in self.intervals])
        if uneven is not None:
            yield InputProblem(
                ("intervals", uneven[0], "interval_start"), "uneven_starts", uneven[1]
            )
            return
        seconds = self.interval_seconds()
        agents = 0.0
        found: dict[Place, InputProblem] = {}  # each place once, the first interval's
        for i, (_, volume, aht) in enumerate(self.rows()):
            traffic = volume * aht / seconds
            for problem in _size_problems(
                ("intervals", i),
                traffic,
                self.max_occupancy,
                sizing=True,
                interval=f"intervals[{i}]",
            ):
                found.setdefault(problem.place, problem)
            agents += traffic / self.max_occupancy
        if found:
            yield from list(found.values())[:MAX_PROBLEMS]
        elif agents > MAX_PLAN_AGENTS:
            yield InputProblem(
                ("intervals",),
                "plan_too_large",
                f"would need more than {MAX_PLAN_AGENTS:,} agents over all intervals together "
                f"(about {agents:,.0f}); at most {MAX_PLAN_AGENTS:,} are computed in one plan",
            )


class ForecastError(ValueError):
    """A forecast that cannot be planned; the message names the line and the column."""


def read_forecast(path: Path, options: Mapping[str, object]) -> StaffingPlanRequest:
    """The forecast CSV at ``path`` (rows of ``interval_start,volume[,aht_seconds]``, a header
    row optional) with the plan's other fields (``options``: the command's), as the
    :class:`StaffingPlanRequest` the API receives. A :class:`ForecastError` names the line and
    the column of a bad row, the field of a bad option, and refuses a forecast that is empty."""
    intervals: list[ForecastInterval] = []
    lines: list[int] = []
    with path.open(newline="") as handle:
        for line, row in enumerate(csv.reader(handle), start=1):
            if not row or all(not cell.strip() for cell in row):
                continue
            if line == 1 and row[0].strip().lower() == "interval_start":
                if [c.strip() for c in row] not in (
                    ["interval_start", "volume"],
                    ["interval_start", "volume", "aht_seconds"],
                ):
                    raise ForecastError(f"line 1: unknown columns {row}")
                continue
            if len(row) not in (2, 3):
                raise ForecastError(f"line {line}: expected interval_start,volume[,aht_seconds]")
            fields: dict[str, object] = {
                "interval_start": row[0].strip(),
                "volume": _cell_number(row[1], line, "volume"),
            }
            if len(row) == 3:
                fields["aht_seconds"] = _cell_number(row[2], line, "aht_seconds")
            try:
                intervals.append(ForecastInterval.model_validate(fields))
            except ValidationError as exc:
                raise ForecastError(
                    "; ".join(
                        f"line {line}, {place_text(tuple(e['loc']))}: {e['msg']}"
                        for e in exc.errors()
                    )
                ) from None
            lines.append(line)
    if not intervals:
        raise ForecastError("the forecast has no intervals")
    try:
        return staffing_input(StaffingPlanRequest, {**options, "intervals": intervals})
    except StaffingInputError as exc:
        raise ForecastError("; ".join(_forecast_place(p, lines) for p in exc.problems)) from None


def _forecast_place(problem: InputProblem, lines: Sequence[int]) -> str:
    """An interval's problem at its line of the CSV; an option's at its name."""
    place = problem.place
    if len(place) > 1 and place[0] == "intervals" and isinstance(place[1], int):
        column = f", {place_text(place[2:])}" if len(place) > 2 else ""
        return f"line {lines[place[1]]}{column}: {problem.message}"
    return f"{place_text(place)}: {problem.message}"


def _cell_number(cell: str, line: int, column: str) -> float:
    try:
        value = float(cell)
    except ValueError as exc:
        raise ForecastError(f"line {line}, {column}: not a number: {cell.strip()!r}") from exc
    if not math.isfinite(value):
        raise ForecastError(f"line {line}, {column}: not a finite number")
    return value


# The answers: ``cxops staffing ... --json`` prints them, the API returns them.


def _rounded(value: object) -> object:
    """Figures to 6 decimals; an infinite wait is ``null``."""
    if isinstance(value, float):
        return None if math.isinf(value) else round(value, 6)
    return value


class _Answer(BaseModel):
    model_config = ConfigDict(frozen=True)


class StaffingFigures(_Answer):
    """What a number of agents achieves in one interval (Erlang C)."""

    traffic_erlangs: float = Field(
        description="Offered load in erlangs: volume * aht_seconds / the interval length."
    )
    agents: int = Field(
        description="Agents on the phones: the fewest that meet the target, or those asked about."
    )
    staff: int = Field(description="Paid staff that leaves that many agents after shrinkage.")
    wait_probability: float = Field(description="Share of contacts that wait at all.")
    service_level: float = Field(description="Share of contacts answered within the target.")
    asa_seconds: float | None = Field(
        description=(
            "Average speed of answer, seconds; null when the agents cannot keep up "
            "(the wait grows without bound)."
        )
    )
    occupancy: float = Field(description="Share of the agents' time spent on contacts.")

    @classmethod
    def of(cls, figures: Staffing) -> Self:
        """The domain's figures, rounded to 6 decimals (this class's fields only)."""
        return cls.model_validate(
            {name: _rounded(getattr(figures, name)) for name in cls.model_fields}
        )


class AbandonmentFigures(StaffingFigures):
    """Erlang A's figures: service level is the share of all offered contacts answered within
    the target; the speed of answer is the mean wait of answered contacts."""

    abandon_probability: float = Field(description="Share of contacts that hang up unanswered.")


class _PlannedDemand(_Answer):
    interval_start: datetime = Field(description="The interval's start, in UTC.")
    volume: float = Field(description="Contacts offered in the interval.")
    aht_seconds: float = Field(description="Mean handle time in the interval, seconds.")


class PlannedInterval(StaffingFigures, _PlannedDemand):
    """One interval of a plan: its demand and the Erlang C figures of the fewest agents."""


class StaffingPlanTotals(_Answer):
    volume: float = Field(description="Contacts over the plan.")
    agent_hours: float = Field(description="Agent hours on the phones.")
    staff_hours: float = Field(description="Paid staff hours (after shrinkage).")
    peak_agents: int
    peak_staff: int
    service_level: float = Field(description="Service level averaged over contacts.")
    asa_seconds: float = Field(description="Average speed of answer averaged over contacts.")

    @classmethod
    def of(cls, totals: PlanTotals) -> Self:
        return cls.model_validate(
            {name: _rounded(getattr(totals, name)) for name in cls.model_fields}
        )


class StaffingPlan(_Answer):
    """Every interval of a forecast sized with Erlang C, and the totals."""

    interval_minutes: float = Field(description="The interval length the plan used.")
    intervals: list[PlannedInterval]
    totals: StaffingPlanTotals

    @classmethod
    def of(
        cls, request: StaffingPlanRequest, rows: Sequence[IntervalPlan], totals: PlanTotals
    ) -> Self:
        return cls(
            interval_minutes=request.interval_seconds() / 60,
            intervals=[
                PlannedInterval.model_validate(
                    {
                        "interval_start": interval.interval_start,
                        "volume": row.volume,
                        "aht_seconds": row.aht_seconds,
                        **StaffingFigures.of(row.staffing).model_dump(),
                    }
                )
                for interval, row in zip(request.intervals, rows, strict=True)
            ],
            totals=StaffingPlanTotals.of(totals),
        )


class StaffingFromHistoryRequest(_Spec):
    """A queue's past period, to size from what it really saw: its tasks per interval and
    their handle times become the forecast of a plan."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    queue: Annotated[str, Field(min_length=1, max_length=64)]
    start: UtcDateTime = Field(alias="from", description="The period's start (inclusive).")
    end: UtcDateTime = Field(alias="to", description="The period's end (exclusive).")
    interval_minutes: IntervalMinutes = DEFAULT_INTERVAL_MINUTES
    target_seconds: TargetSeconds | None = Field(
        default=None, description="By default the queue's `answer_within_seconds`."
    )
    service_level: ServiceLevel | None = Field(
        default=None, description="By default the queue's service-level target."
    )
    shrinkage: Shrinkage = DEFAULT_SHRINKAGE
    max_occupancy: MaxOccupancy = DEFAULT_MAX_OCCUPANCY


class UnplannablePeriod(ValueError):
    """A period that cannot be planned, and why."""

    def __init__(self, problem: InputProblem) -> None:
        super().__init__(f"{place_text(problem.place)}: {problem.message}")
        self.problem = problem


def plan_from_history(
    request: StaffingFromHistoryRequest,
    *,
    arrivals: Sequence[tuple[datetime, float | None]],
    answer_within_seconds: float,
    target: float,
) -> StaffingPlanRequest:
    """The plan request a period's tasks call for: per interval, the tasks that arrived and the
    mean handle time of those completed (the period's mean where an interval has none).
    ``arrivals`` are (created, handle seconds or None) of the queue's tasks in the period.
    Raises :class:`UnplannablePeriod` when the period cannot be planned."""
    step = timedelta(minutes=request.interval_minutes)
    if request.end <= request.start:
        raise UnplannablePeriod(InputProblem(("to",), "empty_period", "must be after from"))
    count = math.ceil((request.end - request.start) / step)
    if count > MAX_INTERVALS:
        message = f"at most {MAX_INTERVALS} intervals of {request.interval_minutes} minutes"
        raise UnplannablePeriod(InputProblem(("to",), "too_many_intervals", message))
    handled = [seconds for _, seconds in arrivals if seconds is not None and seconds > 0]
    if not handled:
        message = "no task of the queue was completed in the period: no handle time to plan with"
        raise UnplannablePeriod(InputProblem(("from",), "no_handle_time", message))
    mean = sum(handled) / len(handled)
    volumes = [0] * count
    handles: list[list[float]] = [[] for _ in range(count)]
    for created, seconds in arrivals:
        slot = int((created - request.start) / step)
        if 0 <= slot < count:
            volumes[slot] += 1
            if seconds is not None and seconds > 0:
                handles[slot].append(seconds)
    return StaffingPlanRequest(
        intervals=[
            ForecastInterval(
                interval_start=request.start + i * step,
                volume=float(volumes[i]),
                aht_seconds=sum(handles[i]) / len(handles[i]) if handles[i] else None,
            )
            for i in range(count)
        ],
        interval_minutes=request.interval_minutes,
        aht_seconds=mean,
        target_seconds=request.target_seconds
        if request.target_seconds is not None
        else answer_within_seconds,
        service_level=request.service_level if request.service_level is not None else target,
        shrinkage=request.shrinkage,
        max_occupancy=request.max_occupancy,
    )
