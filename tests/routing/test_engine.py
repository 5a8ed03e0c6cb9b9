"""The routing engine's matching core: examples for each rule, and properties checked by a
full-scan oracle on random small scenarios driven through the engine."""

from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxops.routing.domain.engine import Engine, Policy, RoutingError
from cxops.routing.domain.escalation import Action, Condition, EscalationRule
from cxops.routing.domain.model import (
    Agent,
    AgentStatus,
    Event,
    Presence,
    ReservationState,
    Signature,
    Task,
    TaskState,
)
from cxops.routing.domain.relaxation import Relaxation, RelaxationStep


def ready(agent_id: str, skills: dict[str, int], **capacity: int) -> Agent:
    return Agent(agent_id, skills, capacity or {"voice": 1}, presence=Presence.READY)


def engine_with(*agents: Agent, policy: Policy | None = None) -> Engine:
    engine = Engine(policy)
    for agent in agents:
        engine.add_agent(agent, 0.0)
    return engine


# ------------------------------------------------------------------------------- examples


def test_task_goes_to_most_proficient_then_longest_idle() -> None:
    engine = engine_with(
        Agent("a", {"billing": 3}, {"voice": 1}, Presence.READY, last_finished_at=1.0),
        Agent("b", {"billing": 5}, {"voice": 1}, Presence.READY, last_finished_at=9.0),
        Agent("c", {"billing": 5}, {"voice": 1}, Presence.READY, last_finished_at=5.0),
    )
    [offer] = engine.task_arrived(Task("t1", "voice", 10.0, {"billing": 2}), 10.0)
    assert offer.agent_id == "c"
    [offer] = engine.task_arrived(Task("t2", "voice", 10.0, {"billing": 2}), 10.0)
    assert offer.agent_id == "b"


def test_agents_ranked_by_sum_over_required_skills() -> None:
    engine = engine_with(
        ready("even", {"billing": 3, "spanish": 3}),
        ready("strong", {"billing": 5, "spanish": 2}),
        ready("weak", {"billing": 2, "spanish": 2}),
    )
    [offer] = engine.task_arrived(Task("t", "voice", 0.0, {"billing": 2, "spanish": 2}), 0.0)
    assert offer.agent_id == "strong"


def test_freed_agent_takes_highest_effective_priority() -> None:
    engine = engine_with(ready("a", {"billing": 3}))
    engine.task_arrived(Task("busy", "voice", 0.0, {"billing": 1}), 0.0)
    engine.accept(1, 0.0)
    engine.task_arrived(Task("old", "voice", 1.0, {"billing": 1}), 1.0)
    engine.task_arrived(Task("gold", "voice", 2.0, {"billing": 1}, tier="gold"), 2.0)
    engine.task_arrived(Task("urgent", "voice", 3.0, {"billing": 1}, priority=5), 3.0)
    engine.task_arrived(Task("hard", "voice", 0.5, {"billing": 4}, priority=9), 3.0)
    order = []
    for now in (10.0, 20.0, 30.0):
        [offer] = engine.task_finished(order[-1] if order else "busy", now)
        engine.accept(offer.id, now)
        order.append(offer.task_id)
    assert order == ["urgent", "gold", "old"]
    assert engine.task_state("hard") is TaskState.WAITING


def test_freed_agent_compares_heads_across_signatures() -> None:
    engine = engine_with(ready("a", {"billing": 3}))
    engine.task_arrived(Task("busy", "voice", 0.0), 0.0)
    engine.accept(1, 0.0)
    engine.task_arrived(Task("plain", "voice", 1.0), 1.0)
    engine.task_arrived(Task("skilled", "voice", 2.0, {"billing": 2}, priority=2), 2.0)
    engine.task_arrived(Task("other", "voice", 3.0, {"billing": 1}, priority=1), 3.0)
    [offer] = engine.task_finished("busy", 5.0)
    assert offer.task_id == "skilled"


def test_capacity_per_channel_and_busy_status() -> None:
    engine = engine_with(ready("a", {"chat": 2}, chat=2, voice=1))
    offers = [engine.task_arrived(Task(f"c{i}", "chat", 0.0, {"chat": 1}), 0.0) for i in range(3)]
    assert [len(o) for o in offers] == [1, 1, 0]
    assert engine.agent("a").status is AgentStatus.BUSY
    [voice] = engine.task_arrived(Task("v", "voice", 0.0), 0.0)
    assert voice.agent_id == "a"
    assert engine.agent("a").load == {"chat": 2, "voice": 1}


def test_relaxation_lowers_minimum_then_drops_optional() -> None:
    steps = [RelaxationStep(30, lower_by=1), RelaxationStep(90, drop_optional=True)]
    engine = engine_with(
        ready("junior", {"billing": 3}),
        policy=Policy(relaxation=Relaxation(steps)),
    )
    task = Task("t", "voice", 0.0, requires={"billing": 4}, optional={"french": 2})
    assert engine.task_arrived(task, 0.0) == []
    assert engine.tick(29.9) == []
    assert engine.effective_signature("t") == (("billing", 4), ("french", 2))
    assert engine.tick(60.0) == []
    assert engine.effective_signature("t") == (("billing", 3), ("french", 1))
    [offer] = engine.tick(120.0)
    assert (offer.agent_id, offer.offered_at) == ("junior", 90.0)


def test_relaxation_overflow_replaces_requirements() -> None:
    steps = [RelaxationStep(180, overflow={"general": 1})]
    engine = engine_with(ready("g", {"general": 2}), policy=Policy(relaxation=Relaxation(steps)))
    engine.task_arrived(Task("t", "voice", 0.0, {"billing": 5}), 0.0)
    [offer] = engine.tick(200.0)
    assert offer.agent_id == "g"


def test_relaxation_never_goes_below_one() -> None:
    relaxation = Relaxation([RelaxationStep(1, lower_by=9)])
    assert relaxation.signature(Task("t", "voice", 0.0, {"a": 3}), 1) == (("a", 1),)


def test_reject_goes_to_next_agent_never_back() -> None:
    engine = engine_with(ready("best", {"billing": 5}), ready("next", {"billing": 3}))
    [offer] = engine.task_arrived(Task("t", "voice", 0.0, {"billing": 1}), 0.0)
    assert offer.agent_id == "best"
    [second] = engine.reject(offer.id, 1.0)
    assert second.agent_id == "next"
    assert engine.reservation(offer.id).state is ReservationState.REJECTED
    assert engine.reject(second.id, 2.0) == []
    assert engine.task_state("t") is TaskState.WAITING
    assert engine.declined_by("t") == {"best", "next"}


def test_timeouts_in_a_row_set_agent_away_and_rescind() -> None:
    policy = Policy(offer_timeout_seconds=10, max_consecutive_timeouts=2)
    engine = engine_with(ready("sleepy", {"billing": 5}, voice=1, chat=1), policy=policy)
    engine.add_agent(ready("awake", {"billing": 1}, voice=1), 0.0)
    [first] = engine.task_arrived(Task("v1", "voice", 0.0, {"billing": 1}), 0.0)
    [chat] = engine.task_arrived(Task("c1", "chat", 0.0, {"billing": 1}), 0.0)
    assert first.agent_id == "sleepy" and chat.agent_id == "sleepy"
    engine.tick(9.0)
    # The voice offer lapses first (both at 10 s; voice has the lower id): it goes to the other
    # agent; the chat offer's lapse is the second in a row, which sets sleepy away.
    offers = engine.tick(10.0)
    assert [o.agent_id for o in offers] == ["awake"]
    assert engine.reservation(first.id).state is ReservationState.TIMEOUT
    assert engine.reservation(chat.id).state is ReservationState.TIMEOUT
    assert engine.agent("sleepy").status is AgentStatus.AWAY
    assert engine.task_state("c1") is TaskState.WAITING


def test_timeout_streak_resets_on_accept() -> None:
    policy = Policy(offer_timeout_seconds=10, max_consecutive_timeouts=2)
    engine = engine_with(ready("a", {"s": 1}), policy=policy)
    engine.task_arrived(Task("t1", "voice", 0.0), 0.0)
    engine.tick(10.0)
    engine.task_arrived(Task("t2", "voice", 10.0), 10.0)
    engine.accept(2, 11.0)
    assert engine.agent("a").consecutive_timeouts == 0


def test_away_agent_rescinds_pending_offer_to_next() -> None:
    engine = engine_with(ready("a", {"s": 2}), ready("b", {"s": 1}))
    [offer] = engine.task_arrived(Task("t", "voice", 0.0, {"s": 1}), 0.0)
    [moved] = engine.agent_away("a", 1.0)
    assert engine.reservation(offer.id).state is ReservationState.RESCINDED
    assert moved.agent_id == "b"


def test_cancel_pending_frees_agent_for_next_task() -> None:
    engine = engine_with(ready("a", {"s": 2}))
    [offer] = engine.task_arrived(Task("t1", "voice", 0.0), 0.0)
    engine.task_arrived(Task("t2", "voice", 1.0), 1.0)
    [next_offer] = engine.cancel_task("t1", 2.0)
    assert engine.reservation(offer.id).state is ReservationState.CANCELED
    assert next_offer.task_id == "t2"


def test_one_accepted_reservation_per_task() -> None:
    engine = engine_with(ready("a", {"s": 2}))
    [offer] = engine.task_arrived(Task("t", "voice", 0.0), 0.0)
    engine.accept(offer.id, 1.0)
    with pytest.raises(RoutingError):
        engine.accept(offer.id, 1.0)
    with pytest.raises(RoutingError):
        engine.reject(offer.id, 1.0)


def test_update_task_reindexes_and_matches() -> None:
    engine = engine_with(ready("a", {"billing": 2}))
    engine.task_arrived(Task("t", "voice", 0.0, {"billing": 4}), 0.0)
    [offer] = engine.update_task("t", 5.0, requires={"billing": 2}, reason="supervisor")
    assert offer.agent_id == "a"


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="proficiency"):
        Agent("a", {"s": 6}, {"voice": 1})
    with pytest.raises(ValueError, match="negative"):
        Task("t", "voice", -1.0)
    engine = Engine()
    with pytest.raises(RoutingError, match="tier"):
        engine.task_arrived(Task("t", "voice", 0.0, tier="diamond"), 0.0)
    with pytest.raises(RoutingError, match="backwards"):
        engine.tick(-5.0)


def test_many_required_skills_use_the_scan_path() -> None:
    skills = {"a": 2, "b": 2, "c": 2, "d": 2}
    engine = engine_with(ready("x", dict(skills)), ready("y", {**skills, "d": 5}))
    [offer] = engine.task_arrived(Task("t", "voice", 0.0, dict.fromkeys(skills, 1)), 0.0)
    assert offer.agent_id == "y"


# ----------------------------------------------------------------------------- properties

SKILLS = ("a", "b")
CHANNELS = {"voice": 1, "chat": 2}
STEPS = (
    RelaxationStep(5, lower_by=1),
    RelaxationStep(12, drop_optional=True),
    RelaxationStep(20, lower_by=2),
)
RULES = (
    EscalationRule(
        "waited", Condition(wait_seconds_at_least=8, priority_at_most=3), Action(raise_priority=2)
    ),
    EscalationRule("repeat", Condition(repeat_contacts_at_least=2), Action(require={"b": 2})),
)

proficiency = st.integers(1, 5)
agent_strategy = st.tuples(
    st.dictionaries(st.sampled_from(SKILLS), proficiency, max_size=3),
    st.dictionaries(st.sampled_from(sorted(CHANNELS)), st.integers(1, 2), min_size=1),
)
arrive_strategy = st.tuples(
    st.just("arrive"),
    st.sampled_from(sorted(CHANNELS)),
    st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 3), max_size=2),
    st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 3), max_size=1),
    st.integers(0, 3),
    st.sampled_from(["standard", "gold", "platinum"]),
    st.integers(0, 3),
)
skill_strategy = st.tuples(
    st.just("skill"), st.integers(0, 50), st.sampled_from(SKILLS), proficiency
)
respond_strategy = st.tuples(st.sampled_from(["accept", "reject", "finish"]), st.integers(0, 50))
op_strategy = st.one_of(
    arrive_strategy,
    arrive_strategy,
    respond_strategy,
    respond_strategy,
    st.tuples(st.sampled_from(["accept", "finish"]), st.integers(0, 50)),
    st.tuples(st.sampled_from(["accept", "finish"]), st.integers(0, 50)),
    st.tuples(st.sampled_from(["cancel", "away", "available", "offline"]), st.integers(0, 50)),
    st.tuples(st.just("tick"), st.floats(0.5, 4.0)),
    skill_strategy,
)


@dataclass
class Run:
    engine: Engine
    relaxation: Relaxation
    events: list[Event] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)


def allowed(relaxation: Relaxation, task: Task, at: float) -> Signature:
    return relaxation.signature(task, relaxation.level_at(task, at))


def eligible(agent: Agent, signature: Signature) -> bool:
    return all(agent.skills.get(skill, 0) >= minimum for skill, minimum in signature)


def check_offer_in_flight(run: Run, event: Event) -> None:
    """At the instant of each offer: the agent qualifies, and no better waiting task that the
    same agent could take is passed over."""
    if event.kind != "offered" or event.task_id is None or event.agent_id is None:
        return
    engine = run.engine
    task = engine.task(event.task_id)
    agent = engine.agent(event.agent_id)
    if not eligible(agent, allowed(run.relaxation, task, event.at)):
        run.violations.append(f"{agent.id} lacks skills for {task.id} at {event.at}")
    if agent.presence is not Presence.READY:
        run.violations.append(f"offer to {agent.id} who is {agent.presence}")
    key = engine.task_key(task.id)
    for other in engine.waiting_task_ids():
        other_task = engine.task(other)
        if (
            other != task.id
            and other_task.channel == task.channel
            and engine.task_key(other) < key
            and agent.id not in engine.declined_by(other)
            and eligible(agent, engine.effective_signature(other))
        ):
            run.violations.append(f"{agent.id} took {task.id} over better {other}")


def check_settled(run: Run) -> None:
    engine = run.engine
    now = engine.now
    load: dict[tuple[str, str], int] = {}
    accepted: dict[str, int] = {}
    for rid in range(1, engine.reservation_count + 1):
        reservation = engine.reservation(rid)
        live = reservation.state is ReservationState.PENDING or (
            reservation.state is ReservationState.ACCEPTED
            and engine.task_state(reservation.task_id) is TaskState.ASSIGNED
        )
        if live:
            slot = (reservation.agent_id, reservation.channel)
            load[slot] = load.get(slot, 0) + 1
        if reservation.state is ReservationState.ACCEPTED:
            accepted[reservation.task_id] = accepted.get(reservation.task_id, 0) + 1
    assert all(count == 1 for count in accepted.values())
    for agent in engine.agents():
        for channel, units in agent.capacity.items():
            used = load.get((agent.id, channel), 0)
            assert agent.load.get(channel, 0) == used
            assert used <= units, f"{agent.id} over capacity on {channel}"
    waiting = engine.waiting_task_ids()
    for task_id in waiting:
        task = engine.task(task_id)
        signature = allowed(run.relaxation, task, now)
        assert engine.effective_signature(task_id) == signature
        for agent in engine.agents():
            idle = agent.presence is Presence.READY and agent.spare(task.channel) > 0
            if idle and agent.id not in engine.declined_by(task_id):
                assert not eligible(agent, signature), f"{agent.id} idles while {task_id} waits"


def drive(
    agents: list[tuple[dict[str, int], dict[str, int]]],
    ops: list[tuple[object, ...]],
) -> Run:
    relaxation = Relaxation(STEPS)
    policy = Policy(
        relaxation=relaxation,
        offer_timeout_seconds=6,
        max_consecutive_timeouts=2,
        escalation=RULES,
    )
    run = Run(Engine(policy), relaxation)
    engine = Engine(policy, on_event=lambda event: on_event(run, event))
    run.engine = engine
    now = 0.0
    for index, (skills, capacity) in enumerate(agents):
        # Copies: the engine owns its agents' skills, and a run must not change the inputs.
        agent = Agent(f"ag{index}", dict(skills), dict(capacity), Presence.READY)
        engine.add_agent(agent, now)
    check_settled(run)
    task_count = 0
    for op in ops:
        kind = op[0]
        if kind == "arrive":
            _, channel, requires, optional, priority, tier, repeats = op
            task_count += 1
            task = Task(
                f"t{task_count}",
                str(channel),
                now,
                dict(requires),  # type: ignore[call-overload]
                dict(optional),  # type: ignore[call-overload]
                int(priority),  # type: ignore[call-overload]
                str(tier),
                attributes={"repeat_contacts": int(repeats)},  # type: ignore[call-overload]
            )
            engine.task_arrived(task, now)
        elif kind == "tick":
            now += float(op[1])  # type: ignore[arg-type]
            engine.tick(now)
        elif kind == "skill":
            _, index, skill, level = op
            agent_id = f"ag{int(index) % len(agents)}"  # type: ignore[call-overload]
            engine.set_proficiency(agent_id, str(skill), int(level), now)  # type: ignore[call-overload]
        elif kind in ("accept", "reject"):
            pending = [
                rid
                for rid in range(1, engine.reservation_count + 1)
                if engine.reservation(rid).state is ReservationState.PENDING
            ]
            if pending:
                rid = pending[int(op[1]) % len(pending)]  # type: ignore[call-overload]
                (engine.accept if kind == "accept" else engine.reject)(rid, now)
        elif kind in ("finish", "cancel"):
            state = TaskState.ASSIGNED if kind == "finish" else TaskState.WAITING
            candidates = [f"t{i}" for i in range(1, task_count + 1)]
            live = [t for t in candidates if engine.task_state(t) in (state, TaskState.OFFERED)]
            if kind == "finish":
                live = [t for t in live if engine.task_state(t) is TaskState.ASSIGNED]
            if live:
                task_id = live[int(op[1]) % len(live)]  # type: ignore[call-overload]
                action = engine.task_finished if kind == "finish" else engine.cancel_task
                action(task_id, now)
        else:
            agent_id = f"ag{int(op[1]) % len(agents)}"  # type: ignore[call-overload]
            action = {
                "away": engine.agent_away,
                "available": engine.agent_available,
                "offline": engine.agent_offline,
            }[str(kind)]
            action(agent_id, now)
        check_settled(run)
        assert run.violations == []
    return run


def on_event(run: Run, event: Event) -> None:
    run.events.append(event)
    check_offer_in_flight(run, event)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    agents=st.lists(agent_strategy, min_size=2, max_size=4),
    ops=st.lists(op_strategy, min_size=30, max_size=80),
)
def test_invariants_hold_on_random_scenarios(
    agents: list[tuple[dict[str, int], dict[str, int]]], ops: list[tuple[object, ...]]
) -> None:
    first = drive(agents, ops)
    second = drive(agents, ops)
    assert first.events == second.events
