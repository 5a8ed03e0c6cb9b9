"""Replay: a scenario of agents and tasks driven through the engine in simulated time.

The what-if tool: yesterday's traffic against today's (or tomorrow's) rules. The simulation
feeds the engine what the floor would: arrivals, agents' answers to offers (after their
``accept_seconds``, or a rejection, or silence until the offer times out), shifts starting and
ending, work finishing after ``handle_seconds`` plus wrap-up, customers hanging up after their
patience. It ticks the engine at every moment the engine has something due, so relaxations,
escalations and timeouts happen at their own instants. Outcomes, when a scenario gives them, go
through proficiency learning, and its changes back into the engine.

At one instant the order is: work finishes, shifts change, agents answer, customers hang up,
tasks arrive (then ties by input order), so a replay is a pure function of its scenario.

Figures (see :class:`Figures`): a task's *answer time* is from arrival to the agent accepting
it; *service level* is the share of all arrived tasks answered within their tier's target
(abandoned and never-answered tasks count against it); an agent's *occupancy* is the share of
their logged-in time spent with at least one task (handling or wrap-up).
"""

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

from cxops.routing.domain.engine import Engine, Policy
from cxops.routing.domain.learning import LearningPolicy, Outcome, ProficiencyLearner
from cxops.routing.domain.model import Agent, Event, Presence, Reservation, Task, TaskState


class Response(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    #: Never answer: the offer times out (and enough in a row set the agent away).
    IGNORE = "ignore"


@dataclass(frozen=True, slots=True)
class ReplayAgent:
    agent: Agent
    response: Response = Response.ACCEPT
    accept_seconds: float = 0.0
    wrap_up_seconds: float = 0.0
    start_seconds: float = 0.0
    end_seconds: float | None = None
    #: Skills a supervisor set by hand: learning leaves them alone.
    pinned_skills: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ReplayTask:
    task: Task
    handle_seconds: float
    patience_seconds: float | None = None
    resolved_first_contact: bool | None = None
    csat: int | None = None

    def __post_init__(self) -> None:
        if self.handle_seconds < 0:
            raise ValueError(f"task {self.task.id}: negative handle time")
        if self.patience_seconds is not None and self.patience_seconds <= 0:
            raise ValueError(f"task {self.task.id}: patience must be positive")


@dataclass(frozen=True, slots=True)
class Scenario:
    agents: Sequence[ReplayAgent]
    tasks: Sequence[ReplayTask]
    policy: Policy = field(default_factory=Policy)
    #: Learning runs only when given (and only tasks with an outcome teach it).
    learning: LearningPolicy | None = None


@dataclass(frozen=True, slots=True)
class Assignment:
    task_id: str
    agent_id: str
    queue: str
    tier: str
    arrived_at: float
    accepted_at: float
    finished_at: float

    @property
    def answer_seconds(self) -> float:
        return self.accepted_at - self.arrived_at


@dataclass(slots=True)
class Group:
    """Answer-time figures of the tasks of one queue or one tier."""

    tasks: int = 0
    answered: int = 0
    within_target: int = 0
    abandoned: int = 0
    unanswered: int = 0
    escalations: int = 0
    answer_seconds: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float | int | None]:
        answers = sorted(self.answer_seconds)
        return {
            "tasks": self.tasks,
            "answered": self.answered,
            "abandoned": self.abandoned,
            "unanswered": self.unanswered,
            "escalations": self.escalations,
            "service_level": _ratio(self.within_target, self.tasks),
            "answer_seconds_mean": _ratio(sum(answers), len(answers)),
            "answer_seconds_p50": _quantile(answers, 0.5),
            "answer_seconds_p90": _quantile(answers, 0.9),
            "answer_seconds_max": answers[-1] if answers else None,
        }


@dataclass(slots=True)
class AgentFigures:
    offers: int = 0
    accepted: int = 0
    rejected: int = 0
    timeouts: int = 0
    rescinded: int = 0
    handled: int = 0
    handle_seconds: float = 0.0
    busy_seconds: float = 0.0
    online_seconds: float = 0.0
    went_away: int = 0

    def summary(self) -> dict[str, float | int | None]:
        return {
            "offers": self.offers,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "timeouts": self.timeouts,
            "rescinded": self.rescinded,
            "handled": self.handled,
            "went_away": self.went_away,
            "handle_seconds_mean": _ratio(self.handle_seconds, self.handled),
            "busy_seconds": self.busy_seconds,
            "online_seconds": self.online_seconds,
            "occupancy": _ratio(self.busy_seconds, self.online_seconds),
        }


@dataclass(slots=True)
class Figures:
    queues: dict[str, Group]
    tiers: dict[str, Group]
    agents: dict[str, AgentFigures]
    total: Group
    simulated_seconds: float


@dataclass(slots=True)
class ReplayResult:
    events: list[Event]
    offers: list[Reservation]
    assignments: list[Assignment]
    abandoned: list[tuple[str, float]]
    figures: Figures


class _Step(IntEnum):
    """What happens at a simulated instant, in this order when instants tie."""

    FINISH = 0
    SHIFT_START = 1
    SHIFT_END = 2
    RESPOND = 3
    ABANDON = 4
    ARRIVE = 5


def replay(scenario: Scenario) -> ReplayResult:
    return _Replay(scenario).run()


class _Replay:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.events: list[Event] = []
        self.engine = Engine(scenario.policy, on_event=self.events.append)
        self.learner = ProficiencyLearner(scenario.learning) if scenario.learning else None
        self.agents = {a.agent.id: a for a in scenario.agents}
        self.tasks = {t.task.id: t for t in scenario.tasks}
        self.agenda: list[tuple[float, int, int, str]] = []
        self.order = 0
        self.offers: list[Reservation] = []
        self.accepted_at: dict[str, tuple[str, float]] = {}
        self.assignments: list[Assignment] = []
        self.abandoned: list[tuple[str, float]] = []
        self.busy: dict[str, list[tuple[float, float]]] = {a: [] for a in self.agents}

    def run(self) -> ReplayResult:
        for shift in self.scenario.agents:
            agent = shift.agent
            self._at(shift.start_seconds, _Step.SHIFT_START, agent.id)
            if shift.end_seconds is not None:
                self._at(shift.end_seconds, _Step.SHIFT_END, agent.id)
            if self.learner is not None:
                self.learner.track(agent.id, agent.skills)
                for skill in sorted(shift.pinned_skills & agent.skills.keys()):
                    self.learner.set_manual(agent.id, skill, agent.skills[skill], 0.0)
        for work in sorted(self.scenario.tasks, key=lambda t: t.task.arrival):
            task = work.task
            self._at(task.arrival, _Step.ARRIVE, task.id)
            if work.patience_seconds is not None:
                self._at(task.arrival + work.patience_seconds, _Step.ABANDON, task.id)
        end = 0.0
        while True:
            due = self.engine.next_due()
            if self.agenda and (due is None or self.agenda[0][0] <= due):
                at, step, _, subject = heapq.heappop(self.agenda)
                self._handle(at, _Step(step), subject)
            elif due is not None:
                at = due
                self._record(self.engine.tick(at))
            else:
                break
            end = max(end, at)
        return ReplayResult(
            self.events, self.offers, self.assignments, self.abandoned, self._figures(end)
        )

    def _at(self, at: float, step: _Step, subject: str) -> None:
        self.order += 1
        heapq.heappush(self.agenda, (at, step, self.order, subject))

    def _handle(self, at: float, step: _Step, subject: str) -> None:
        engine = self.engine
        if step is _Step.ARRIVE:
            self._record(engine.task_arrived(self.tasks[subject].task, at))
        elif step is _Step.SHIFT_START:
            agent = self.agents[subject].agent
            fresh = Agent(agent.id, dict(agent.skills), dict(agent.capacity), Presence.READY, at)
            self._record(engine.add_agent(fresh, at))
        elif step is _Step.SHIFT_END:
            self._record(engine.agent_offline(subject, at))
        elif step is _Step.RESPOND:
            self._respond(int(subject), at)
        elif step is _Step.ABANDON:
            if engine.task_state(subject) in (TaskState.WAITING, TaskState.OFFERED):
                self.abandoned.append((subject, at))
                self._record(engine.cancel_task(subject, at))
        else:
            self._finish(subject, at)

    def _record(self, offers: Iterable[Reservation]) -> None:
        """Schedule each new offer's answer; an ignored offer is left to time out."""
        for offer in offers:
            self.offers.append(offer)
            spec = self.agents[offer.agent_id]
            timeout = self.engine.policy.offer_timeout_seconds
            if spec.response is Response.IGNORE or spec.accept_seconds >= timeout:
                continue
            self._at(offer.offered_at + spec.accept_seconds, _Step.RESPOND, str(offer.id))

    def _respond(self, reservation_id: int, at: float) -> None:
        engine = self.engine
        reservation = engine.reservation(reservation_id)
        if reservation.ended_at is not None:  # rescinded, canceled meanwhile
            return
        if self.agents[reservation.agent_id].response is Response.REJECT:
            self._record(engine.reject(reservation_id, at))
            return
        self._record(engine.accept(reservation_id, at))
        task = self.tasks[reservation.task_id]
        self.accepted_at[reservation.task_id] = (reservation.agent_id, at)
        wrap_up = self.agents[reservation.agent_id].wrap_up_seconds
        self._at(at + task.handle_seconds + wrap_up, _Step.FINISH, reservation.task_id)

    def _finish(self, task_id: str, at: float) -> None:
        engine = self.engine
        spec = self.tasks[task_id]
        agent_id, accepted_at = self.accepted_at[task_id]
        task = engine.task(task_id)
        self.assignments.append(
            Assignment(task_id, agent_id, task.queue, task.tier, spec.task.arrival, accepted_at, at)
        )
        self.busy[agent_id].append((accepted_at, at))
        self._record(engine.task_finished(task_id, at))
        if self.learner is None or (spec.resolved_first_contact is None and spec.csat is None):
            return
        outcome = Outcome(
            agent_id,
            task.queue,
            tuple(task.requires),
            spec.handle_seconds,
            at,
            spec.resolved_first_contact,
            spec.csat,
        )
        for change in self.learner.observe(outcome):
            self._record(
                engine.set_proficiency(
                    change.agent_id, change.skill, change.new, at, reason=change.reason
                )
            )

    def _figures(self, end: float) -> Figures:
        engine = self.engine
        tiers_policy = engine.policy.tiers
        queues: dict[str, Group] = {}
        tiers: dict[str, Group] = {}
        total = Group()
        answered = {a.task_id: a for a in self.assignments}
        abandoned = {task_id for task_id, _ in self.abandoned}
        escalated: dict[str, int] = {}
        for event in self.events:
            if event.kind == "escalated" and event.task_id is not None:
                escalated[event.task_id] = escalated.get(event.task_id, 0) + 1
        for spec in self.scenario.tasks:
            task = engine.task(spec.task.id)
            groups = (
                queues.setdefault(task.queue, Group()),
                tiers.setdefault(task.tier, Group()),
                total,
            )
            assignment = answered.get(task.id)
            target = tiers_policy[task.tier].target_answer_seconds
            for group in groups:
                group.tasks += 1
                group.escalations += escalated.get(task.id, 0)
                if assignment is not None:
                    group.answered += 1
                    group.answer_seconds.append(assignment.answer_seconds)
                    group.within_target += assignment.answer_seconds <= target
                elif task.id in abandoned:
                    group.abandoned += 1
                else:
                    group.unanswered += 1
        return Figures(
            dict(sorted(queues.items())),
            dict(sorted(tiers.items())),
            self._agent_figures(end),
            total,
            end,
        )

    def _agent_figures(self, end: float) -> dict[str, AgentFigures]:
        figures = {agent_id: AgentFigures() for agent_id in sorted(self.agents)}
        counters = {
            "offered": "offers",
            "accepted": "accepted",
            "rejected": "rejected",
            "timeout": "timeouts",
            "rescinded": "rescinded",
            "agent_away": "went_away",
        }
        for event in self.events:
            name = counters.get(event.kind)
            if name is not None and event.agent_id is not None:
                agent = figures[event.agent_id]
                setattr(agent, name, getattr(agent, name) + 1)
        for assignment in self.assignments:
            agent = figures[assignment.agent_id]
            agent.handled += 1
            agent.handle_seconds += self.tasks[assignment.task_id].handle_seconds
        for agent_id, agent in figures.items():
            spec = self.agents[agent_id]
            stop = end if spec.end_seconds is None else min(end, spec.end_seconds)
            agent.online_seconds = max(0.0, stop - spec.start_seconds)
            agent.busy_seconds = _union_length(self.busy[agent_id])
        return figures


def _union_length(intervals: Iterable[tuple[float, float]]) -> float:
    total = 0.0
    current: tuple[float, float] | None = None
    for start, stop in sorted(intervals):
        if current is None or start > current[1]:
            if current is not None:
                total += current[1] - current[0]
            current = (start, stop)
        else:
            current = (current[0], max(current[1], stop))
    if current is not None:
        total += current[1] - current[0]
    return total


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _quantile(ordered: Sequence[float], q: float) -> float | None:
    """The nearest-rank quantile: an answer time that some task actually had."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summarise(groups: Mapping[str, Group]) -> dict[str, dict[str, float | int | None]]:
    return {name: group.summary() for name, group in groups.items()}
