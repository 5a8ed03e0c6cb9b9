"""Escalation rules: when every condition of a rule holds for a live task, the rule fires once
for that task: it raises the priority, requires a senior skill, moves the task to another
queue and/or alerts a supervisor, and the firing is recorded with its reason.

Rules are data, e.g.::

    EscalationRule(
        "angry-repeat-caller",
        Condition(sentiment_below=-0.3, repeat_contacts_at_least=2),
        Action(raise_priority=2, require={"retention": 3}, alert_supervisor=True),
    )

Two conditions depend on the clock and make a rule *come due* at a moment: ``wait_seconds_at_least``
(due at arrival + the wait) and ``sla_seconds_left_at_most`` (due that long before the task's
``sla_deadline`` attribute, the closed-loop case's deadline on the engine's clock). The others
look at the task as it is when the rule comes due, and again each time the task changes, so a
rule on ``priority_at_least`` can follow another rule's raise. Task attributes read by rules:
``sentiment`` (-1..1, of the customer's last feedback), ``repeat_contacts`` (contacts about the
same matter before this one) and ``sla_deadline``. A rule whose attribute is missing never fires.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from cxops.routing.domain.model import Task, check_proficiencies

SENTIMENT = "sentiment"
REPEAT_CONTACTS = "repeat_contacts"
SLA_DEADLINE = "sla_deadline"


@dataclass(frozen=True, slots=True)
class Queue:
    """A named requirement set: where ``Action.move_to_queue`` sends a task. Moving replaces
    the task's required and optional skills with the queue's; the channel stays."""

    name: str
    requires: Mapping[str, int] = field(default_factory=dict)
    optional: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_proficiencies(f"queue {self.name}", self.requires)
        check_proficiencies(f"queue {self.name}", self.optional)


@dataclass(frozen=True, slots=True)
class Condition:
    """Every condition given must hold (an empty condition always holds)."""

    wait_seconds_at_least: float | None = None
    sla_seconds_left_at_most: float | None = None
    priority_at_least: int | None = None
    priority_at_most: int | None = None
    tiers: frozenset[str] | None = None
    queues: frozenset[str] | None = None
    sentiment_below: float | None = None
    repeat_contacts_at_least: int | None = None

    def __post_init__(self) -> None:
        if self.wait_seconds_at_least is not None and self.wait_seconds_at_least < 0:
            raise ValueError(f"wait_seconds_at_least is negative: {self.wait_seconds_at_least}")

    def due(self, task: Task) -> float | None:
        """The clock time from which the time conditions hold, or ``None`` if they never can
        (the task has no SLA deadline but the rule needs one)."""
        due = task.arrival
        if self.wait_seconds_at_least is not None:
            due = task.arrival + self.wait_seconds_at_least
        if self.sla_seconds_left_at_most is not None:
            deadline = _number(task, SLA_DEADLINE)
            if deadline is None:
                return None
            due = max(due, deadline - self.sla_seconds_left_at_most)
        return due

    def reason(self, task: Task, now: float) -> str | None:
        """Why the rule fires now, as the facts that matched; ``None`` if some do not hold."""
        facts: list[str] = []
        wait = now - task.arrival
        # Compared as ``due <= now``, the sum the engine schedules, so rounding cannot disagree.
        if self.wait_seconds_at_least is not None:
            if task.arrival + self.wait_seconds_at_least > now:
                return None
            facts.append(f"waited {wait:g}s >= {self.wait_seconds_at_least:g}s")
        if self.sla_seconds_left_at_most is not None:
            deadline = _number(task, SLA_DEADLINE)
            if deadline is None or deadline - self.sla_seconds_left_at_most > now:
                return None
            facts.append(
                f"SLA deadline in {deadline - now:g}s <= {self.sla_seconds_left_at_most:g}s"
            )
        if self.priority_at_least is not None:
            if task.priority < self.priority_at_least:
                return None
            facts.append(f"priority {task.priority} >= {self.priority_at_least}")
        if self.priority_at_most is not None:
            if task.priority > self.priority_at_most:
                return None
            facts.append(f"priority {task.priority} <= {self.priority_at_most}")
        if self.tiers is not None:
            if task.tier not in self.tiers:
                return None
            facts.append(f"tier {task.tier}")
        if self.queues is not None:
            if task.queue not in self.queues:
                return None
            facts.append(f"queue {task.queue}")
        if self.sentiment_below is not None:
            sentiment = _number(task, SENTIMENT)
            if sentiment is None or sentiment >= self.sentiment_below:
                return None
            facts.append(f"sentiment {sentiment:g} < {self.sentiment_below:g}")
        if self.repeat_contacts_at_least is not None:
            repeats = _number(task, REPEAT_CONTACTS)
            if repeats is None or repeats < self.repeat_contacts_at_least:
                return None
            facts.append(f"repeat contacts {repeats:g} >= {self.repeat_contacts_at_least}")
        return "; ".join(facts) or "always"


@dataclass(frozen=True, slots=True)
class Action:
    raise_priority: int = 0
    #: Skills the task now also needs (a senior skill); a higher existing minimum is kept.
    require: Mapping[str, int] = field(default_factory=dict)
    move_to_queue: str | None = None
    alert_supervisor: bool = False

    def __post_init__(self) -> None:
        check_proficiencies("escalation action", self.require)

    def apply(self, task: Task, queues: Mapping[str, Queue]) -> dict[str, object]:
        """The changes to make to ``task``, as keyword arguments of ``Engine.update_task``."""
        changes: dict[str, object] = {}
        if self.raise_priority:
            changes["priority"] = task.priority + self.raise_priority
        requires, optional = dict(task.requires), dict(task.optional)
        if self.move_to_queue is not None:
            queue = queues[self.move_to_queue]
            changes["queue"] = queue.name
            requires, optional = dict(queue.requires), dict(queue.optional)
            changes["optional"] = optional
        for skill, minimum in self.require.items():
            requires[skill] = max(requires.get(skill, 0), minimum)
        if requires != task.requires:
            changes["requires"] = requires
        return changes

    def describe(self) -> str:
        parts: list[str] = []
        if self.raise_priority:
            parts.append(f"priority +{self.raise_priority}")
        if self.move_to_queue is not None:
            parts.append(f"to queue {self.move_to_queue}")
        if self.require:
            parts.append("requires " + ",".join(f"{s}>={m}" for s, m in self.require.items()))
        if self.alert_supervisor:
            parts.append("supervisor alerted")
        return ", ".join(parts) or "recorded"


@dataclass(frozen=True, slots=True)
class EscalationRule:
    name: str
    when: Condition = field(default_factory=Condition)
    then: Action = field(default_factory=Action)


def check_rules(rules: tuple[EscalationRule, ...], queues: Mapping[str, Queue]) -> None:
    """Refuse rules that cannot run: duplicate names, moves to undeclared queues."""
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            raise ValueError(f"escalation rule {rule.name!r} is declared twice")
        seen.add(rule.name)
        target = rule.then.move_to_queue
        if target is not None and target not in queues:
            raise ValueError(f"escalation rule {rule.name!r} moves to undeclared queue {target!r}")


def _number(task: Task, name: str) -> float | None:
    value = task.attributes.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
