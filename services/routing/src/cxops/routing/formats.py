"""The formats routing reads: the replay scenario (``SCENARIO.json`` of ``cxops routing replay``,
and later the body of the routing API) and the staffing forecast (``cxops staffing plan``'s CSV).

A scenario is validated into the engine's own objects, and the replay's result written back as
plain JSON. Validation is all-or-nothing and names every problem's place the way a user would
find it in the file (``tasks[3].requires.billing``); nothing runs until the whole scenario is
valid. The models refuse unknown fields, so one can be an API's request body as it stands.
"""

import csv
import itertools
import math
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

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


# --- the staffing forecast ------------------------------------------------------------------


class ForecastError(ValueError):
    """A forecast that cannot be planned; the message names the line and the column."""


def read_forecast(
    path: Path, *, default_aht_seconds: float
) -> tuple[list[tuple[str, float, float]], float | None]:
    """Rows of ``interval_start,volume[,aht_seconds]`` (a header row is optional) as
    ``(start, volume, aht_seconds)``, and the interval length implied by the starts. Errors
    (:class:`ForecastError`) name the line and the column."""
    intervals: list[tuple[str, float, float]] = []
    starts: list[datetime] = []
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
            start = row[0].strip()
            try:
                starts.append(datetime.fromisoformat(start))
            except ValueError as exc:
                raise ForecastError(
                    f"line {line}, interval_start: not a date-time: {start!r}"
                ) from exc
            values = [_number(row[1], line, "volume")]
            values.append(
                _number(row[2], line, "aht_seconds") if len(row) == 3 else default_aht_seconds
            )
            if values[0] < 0:
                raise ForecastError(f"line {line}, volume: must not be negative")
            if values[1] <= 0:
                raise ForecastError(f"line {line}, aht_seconds: must be positive")
            intervals.append((start, values[0], values[1]))
    if not intervals:
        raise ForecastError("the forecast has no intervals")
    steps = {(b - a).total_seconds() for a, b in itertools.pairwise(starts)}
    if len(steps) > 1 or any(step <= 0 for step in steps):
        raise ForecastError("interval starts must be in order and evenly spaced")
    return intervals, (steps.pop() if steps else None)


def _number(cell: str, line: int, column: str) -> float:
    try:
        value = float(cell)
    except ValueError as exc:
        raise ForecastError(f"line {line}, {column}: not a number: {cell.strip()!r}") from exc
    if not math.isfinite(value):
        raise ForecastError(f"line {line}, {column}: not a finite number")
    return value
