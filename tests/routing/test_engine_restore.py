"""Relaxation per queue, including a policy replaced while the engine runs."""

from cxops.routing.domain.engine import Engine, Policy
from cxops.routing.domain.escalation import Action, Condition, EscalationRule, Queue
from cxops.routing.domain.model import Agent, Event, Presence, Task
from cxops.routing.domain.relaxation import Relaxation, RelaxationStep


def ready(agent_id: str, skills: dict[str, int], **capacity: int) -> Agent:
    return Agent(agent_id, skills, capacity or {"voice": 1}, presence=Presence.READY)


def recording(policy: Policy | None = None) -> tuple[Engine, list[Event]]:
    events: list[Event] = []
    return Engine(policy, on_event=events.append), events


def kinds(events: list[Event], task_id: str) -> list[str]:
    return [e.kind for e in events if e.task_id == task_id]


# ------------------------------------------------------------------- relaxation per queue


def test_relaxation_for_is_the_queues_own_else_the_default() -> None:
    fast = Relaxation([RelaxationStep(10, lower_by=1)])
    slow = Relaxation([RelaxationStep(100, lower_by=1)])
    policy = Policy(relaxation=slow, relaxation_by_queue={"vip": fast})
    assert policy.relaxation_for("vip") is fast
    assert policy.relaxation_for("billing") is slow
    assert Policy().relaxation_for("vip").steps == ()


def test_each_queue_relaxes_by_its_own_steps() -> None:
    policy = Policy(
        relaxation=Relaxation([RelaxationStep(100, lower_by=1)]),
        relaxation_by_queue={"vip": Relaxation([RelaxationStep(10, lower_by=1)])},
    )
    engine, _ = recording(policy)
    engine.add_agent(ready("junior", {"billing": 2}, voice=2), 0.0)
    engine.task_arrived(Task("vip", "voice", 0.0, {"billing": 3}, queue="vip"), 0.0)
    engine.task_arrived(Task("std", "voice", 0.0, {"billing": 3}, queue="billing"), 0.0)
    [offer] = engine.tick(50.0)
    assert (offer.task_id, offer.offered_at) == ("vip", 10.0)
    assert engine.effective_signature("std") == (("billing", 3),)
    [offer] = engine.tick(100.0)
    assert (offer.task_id, offer.offered_at) == ("std", 100.0)


def test_a_moved_task_follows_its_new_queues_steps_from_arrival() -> None:
    policy = Policy(
        queues={"senior": Queue("senior", {"billing": 4})},
        relaxation_by_queue={
            "senior": Relaxation([RelaxationStep(30, lower_by=1), RelaxationStep(60, lower_by=1)])
        },
        escalation=(
            EscalationRule(
                "long", Condition(wait_seconds_at_least=45), Action(move_to_queue="senior")
            ),
        ),
    )
    engine, _ = recording(policy)
    engine.add_agent(ready("junior", {"billing": 2}), 0.0)
    engine.task_arrived(Task("t", "voice", 0.0, {"billing": 5}, queue="billing"), 0.0)
    assert engine.tick(44.0) == []
    assert engine.effective_signature("t") == (("billing", 5),)  # the default: no steps
    assert engine.tick(45.0) == []
    # Moved at 45 s: the senior queue's first step (30 s after arrival) already applies.
    assert engine.task("t").queue == "senior"
    assert engine.effective_signature("t") == (("billing", 3),)
    [offer] = engine.tick(70.0)
    assert (offer.agent_id, offer.offered_at) == ("junior", 60.0)


def test_a_policy_assigned_at_runtime_relaxes_waiting_tasks_from_the_next_check() -> None:
    engine, events = recording()
    engine.add_agent(ready("junior", {"billing": 2}), 0.0)
    engine.task_arrived(Task("t", "voice", 0.0, {"billing": 3}, queue="billing"), 0.0)
    assert engine.tick(100.0) == []
    steps = Relaxation([RelaxationStep(30, lower_by=1)])
    engine.policy = Policy(relaxation_by_queue={"billing": steps})
    assert engine.policy.relaxation_for("billing") is steps
    assert engine.effective_signature("t") == (("billing", 3),)  # keeps its level until then
    [offer] = engine.tick(100.0)
    assert (offer.agent_id, offer.offered_at) == ("junior", 100.0)
    assert kinds(events, "t") == ["queued", "relaxed", "offered"]


def test_new_steps_replace_the_old_ones_from_the_next_check() -> None:
    old = Policy(relaxation=Relaxation([RelaxationStep(60, lower_by=1)]))
    engine, events = recording(old)
    engine.task_arrived(Task("t", "voice", 0.0, {"billing": 4}), 0.0)
    engine.tick(10.0)
    engine.policy = Policy(
        relaxation=Relaxation([RelaxationStep(20, lower_by=1), RelaxationStep(40, lower_by=1)])
    )
    engine.tick(25.0)
    assert engine.effective_signature("t") == (("billing", 3),)
    engine.tick(45.0)
    assert engine.effective_signature("t") == (("billing", 2),)
    engine.tick(100.0)  # the old step's wake-up at 60 s is stale: nothing more happens
    relaxed = [(e.at, e.detail) for e in events if e.kind == "relaxed"]
    assert relaxed == [(20.0, "level 1: billing>=3"), (40.0, "level 2: billing>=2")]


def test_rules_assigned_at_runtime_fire_for_waiting_tasks() -> None:
    engine, events = recording()
    engine.task_arrived(Task("t", "voice", 0.0), 0.0)
    engine.tick(30.0)
    engine.policy = Policy(
        escalation=(
            EscalationRule("early", Condition(wait_seconds_at_least=10), Action(raise_priority=1)),
            EscalationRule("late", Condition(wait_seconds_at_least=50), Action(raise_priority=1)),
        )
    )
    engine.tick(30.0)
    assert engine.task("t").priority == 1
    engine.tick(60.0)
    assert engine.task("t").priority == 2
    escalated = [(e.at, e.detail.split(":")[0]) for e in events if e.kind == "escalated"]
    assert escalated == [(30.0, "early"), (50.0, "late")]
