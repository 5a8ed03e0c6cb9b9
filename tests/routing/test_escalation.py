"""Escalation rules: each condition and action, once per task, recorded with the reason."""

import pytest

from cxops.routing.domain.engine import Engine, Policy
from cxops.routing.domain.escalation import Action, Condition, EscalationRule, Queue
from cxops.routing.domain.model import Agent, Event, Presence, Task


def engine_with(
    rules: list[EscalationRule], *agents: Agent, **policy: object
) -> tuple[Engine, list[Event]]:
    events: list[Event] = []
    engine = Engine(Policy(escalation=tuple(rules), **policy), on_event=events.append)  # type: ignore[arg-type]
    for agent in agents:
        engine.add_agent(agent, 0.0)
    return engine, events


def fired(events: list[Event], kind: str = "escalated") -> list[tuple[float, str | None, str]]:
    return [(e.at, e.task_id, e.detail) for e in events if e.kind == kind]


def test_wait_rule_fires_at_its_moment_and_raises_priority() -> None:
    rule = EscalationRule("slow", Condition(wait_seconds_at_least=60), Action(raise_priority=3))
    engine, events = engine_with([rule])
    engine.task_arrived(Task("t", "voice", 10.0), 10.0)
    engine.tick(69.0)
    assert engine.task("t").priority == 0
    engine.tick(500.0)
    assert engine.task("t").priority == 3
    [(at, task_id, detail)] = fired(events)
    assert (at, task_id) == (70.0, "t")
    assert detail == "slow: waited 60s >= 60s -> priority +3"


def test_escalated_task_overtakes_in_the_queue() -> None:
    rule = EscalationRule("slow", Condition(wait_seconds_at_least=60), Action(raise_priority=1))
    agent = Agent("a", {"billing": 3}, {"voice": 1}, Presence.READY)
    engine, _ = engine_with([rule], agent)
    [busy] = engine.task_arrived(Task("busy", "voice", 0.0), 0.0)
    engine.accept(busy.id, 0.0)
    engine.task_arrived(Task("old", "voice", 1.0, tier="gold"), 1.0)
    engine.task_arrived(Task("young", "voice", 50.0, tier="gold"), 50.0)
    engine.task_arrived(Task("vip", "voice", 55.0, tier="platinum"), 55.0)
    # At 70 s "old" has waited 69 s (raised above platinum); "young" waited 20 s.
    [offer] = engine.task_finished("busy", 70.0)
    assert offer.task_id == "old"


def test_static_conditions_fire_on_arrival_before_matching() -> None:
    rule = EscalationRule(
        "angry-repeat",
        Condition(sentiment_below=-0.3, repeat_contacts_at_least=2, tiers=frozenset({"gold"})),
        Action(require={"retention": 3}, alert_supervisor=True),
    )
    junior = Agent("junior", {"billing": 5}, {"voice": 1}, Presence.READY)
    senior = Agent("senior", {"billing": 2, "retention": 4}, {"voice": 1}, Presence.READY)
    engine, events = engine_with([rule], junior, senior)
    calm = Task("calm", "voice", 0.0, {"billing": 1}, tier="gold", attributes={"sentiment": 0.5})
    angry = Task(
        "angry",
        "voice",
        0.0,
        {"billing": 1},
        tier="gold",
        attributes={"sentiment": -0.8, "repeat_contacts": 3},
    )
    [offer] = engine.task_arrived(angry, 0.0)
    assert offer.agent_id == "senior"
    assert engine.task("angry").requires == {"billing": 1, "retention": 3}
    [offer] = engine.task_arrived(calm, 0.0)
    assert offer.agent_id == "junior"
    [(_, task_id, detail)] = fired(events, "supervisor_alert")
    assert task_id == "angry"
    assert "sentiment -0.8 < -0.3" in detail and "repeat contacts 3 >= 2" in detail


def test_missing_attribute_never_fires() -> None:
    rule = EscalationRule("negative", Condition(sentiment_below=0.0), Action(raise_priority=1))
    engine, events = engine_with([rule])
    engine.task_arrived(Task("t", "voice", 0.0), 0.0)
    engine.tick(1000.0)
    assert fired(events) == []


def test_sla_deadline_rule_moves_to_queue() -> None:
    rule = EscalationRule(
        "case-sla",
        Condition(sla_seconds_left_at_most=300),
        Action(move_to_queue="escalations", raise_priority=5),
    )
    queues = {"escalations": Queue("escalations", {"escalations": 2})}
    expert = Agent("expert", {"escalations": 3}, {"email": 5}, Presence.READY)
    engine, events = engine_with([rule], expert, queues=queues)
    task = Task(
        "case", "email", 0.0, {"refunds": 4}, queue="refunds", attributes={"sla_deadline": 1000}
    )
    assert engine.task_arrived(task, 0.0) == []
    assert engine.tick(699.0) == []
    [offer] = engine.tick(800.0)
    assert (offer.agent_id, offer.offered_at) == ("expert", 700.0)
    changed = engine.task("case")
    assert (changed.queue, changed.requires, changed.priority) == (
        "escalations",
        {"escalations": 2},
        5,
    )
    [(_, _, detail)] = fired(events)
    assert detail == "case-sla: SLA deadline in 300s <= 300s -> priority +5, to queue escalations"


def test_rules_chain_and_each_fires_once() -> None:
    first = EscalationRule("first", Condition(wait_seconds_at_least=10), Action(raise_priority=2))
    second = EscalationRule("second", Condition(priority_at_least=2), Action(alert_supervisor=True))
    engine, events = engine_with([second, first])
    engine.task_arrived(Task("t", "voice", 0.0), 0.0)
    engine.tick(10.0)
    engine.tick(100.0)
    engine.update_task("t", 200.0, priority=0)
    engine.update_task("t", 300.0, priority=9)
    assert [detail.split(":")[0] for _, _, detail in fired(events)] == ["first", "second"]
    assert len(fired(events, "supervisor_alert")) == 1


def test_priority_cap_keeps_a_rule_from_raising_forever() -> None:
    rule = EscalationRule(
        "cap", Condition(wait_seconds_at_least=30, priority_at_most=0), Action(raise_priority=1)
    )
    engine, events = engine_with([rule])
    engine.task_arrived(Task("low", "voice", 0.0), 0.0)
    engine.task_arrived(Task("high", "voice", 0.0, priority=2), 0.0)
    engine.tick(100.0)
    assert [task_id for _, task_id, _ in fired(events)] == ["low"]


def test_rule_does_not_fire_after_the_task_is_answered() -> None:
    rule = EscalationRule("slow", Condition(wait_seconds_at_least=60), Action(raise_priority=1))
    agent = Agent("a", {}, {"voice": 1}, Presence.READY)
    engine, events = engine_with([rule], agent)
    [offer] = engine.task_arrived(Task("t", "voice", 0.0), 0.0)
    engine.accept(offer.id, 5.0)
    engine.tick(100.0)
    assert fired(events) == []


def test_policy_refuses_moves_to_undeclared_queues_and_duplicate_names() -> None:
    move = EscalationRule("m", Condition(), Action(move_to_queue="nowhere"))
    with pytest.raises(ValueError, match="undeclared queue 'nowhere'"):
        Policy(escalation=(move,))
    twice = EscalationRule("x")
    with pytest.raises(ValueError, match="declared twice"):
        Policy(escalation=(twice, twice))
