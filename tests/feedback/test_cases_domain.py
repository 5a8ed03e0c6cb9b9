"""Closed-loop cases' pure core: the rules that open a case and name its team, every allowed and
every refused transition, and the SLA clocks (deadlines, breaches, escalation, reopen, the next
timer) at exact instants."""

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cxops.feedback.domain.cases import (
    DEFAULT_RULES,
    DEFAULT_TEAM,
    TRANSITIONS,
    Breach,
    Case,
    CaseAction,
    CaseDecision,
    CaseInputError,
    CaseRule,
    CaseRules,
    CaseState,
    Clock,
    ClockStatus,
    Elapsed,
    ResponseFacts,
    RootCause,
    RootCauseCategory,
    SlaPolicy,
    Transition,
    TransitionRefused,
    acknowledge,
    allowed_actions,
    assign,
    breached_clocks,
    check_clocks,
    clock_status,
    close,
    deadlines,
    document_action,
    elapsed,
    escalation_at,
    evaluate,
    next_due,
    open_case,
    reopen,
)
from cxops.feedback.domain.sentiment import SentimentLabel
from cxops.stats.scales import SCALES, SurveyKind

NPS, CSAT, CES = SurveyKind.NPS, SurveyKind.CSAT, SurveyKind.CES
NEGATIVE, NEUTRAL = SentimentLabel.NEGATIVE, SentimentLabel.NEUTRAL


# --- rules -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "opening_scores", "rule"),
    [
        (NPS, set(range(0, 7)), "nps-detractor"),
        (CSAT, {1, 2}, "csat-dissatisfied"),
        (CES, {5, 6, 7}, "ces-high-effort"),
    ],
)
def test_default_rules_open_a_case_exactly_for_the_bad_scores(
    kind: SurveyKind, opening_scores: set[int], rule: str
) -> None:
    scale = SCALES[kind]
    for score in range(scale.lowest, scale.highest + 1):
        decision = evaluate(ResponseFacts(kind=kind, score=score), CaseRules())
        assert decision.opens is (score in opening_scores), (kind, score)
        assert decision.rule == (rule if score in opening_scores else None)


def test_default_rules_ignore_sentiment_topics_and_tier() -> None:
    facts = ResponseFacts(
        kind=NPS,
        score=8,
        sentiment=NEGATIVE,
        sentiment_confidence=0.99,
        topics=("billing",),
        tier="gold",
    )
    assert not evaluate(facts, CaseRules()).opens
    assert not evaluate(
        ResponseFacts(sentiment=NEGATIVE, sentiment_confidence=1.0), CaseRules()
    ).opens


@pytest.mark.parametrize(
    ("rule", "facts", "opens"),
    [
        (CaseRule("n", nps_at_most=4), ResponseFacts(kind=NPS, score=4), True),
        (CaseRule("n", nps_at_most=4), ResponseFacts(kind=NPS, score=5), False),
        (CaseRule("n", nps_at_most=4), ResponseFacts(kind=CSAT, score=1), False),
        (CaseRule("n", nps_at_most=4), ResponseFacts(kind=NPS), False),
        (CaseRule("c", csat_at_most=3), ResponseFacts(kind=CSAT, score=3), True),
        (CaseRule("c", csat_at_most=3), ResponseFacts(kind=CSAT, score=4), False),
        (CaseRule("c", csat_at_most=3), ResponseFacts(kind=NPS, score=0), False),
        (CaseRule("e", ces_at_least=6), ResponseFacts(kind=CES, score=6), True),
        (CaseRule("e", ces_at_least=6), ResponseFacts(kind=CES, score=5), False),
        (CaseRule("e", ces_at_least=6), ResponseFacts(kind=NPS, score=10), False),
        (
            CaseRule("s", negative_sentiment_above=0.7),
            ResponseFacts(sentiment=NEGATIVE, sentiment_confidence=0.71),
            True,
        ),
        (
            CaseRule("s", negative_sentiment_above=0.7),
            ResponseFacts(sentiment=NEGATIVE, sentiment_confidence=0.7),
            False,
        ),
        (
            CaseRule("s", negative_sentiment_above=0.7),
            ResponseFacts(sentiment=NEUTRAL, sentiment_confidence=0.99),
            False,
        ),
        (CaseRule("s", negative_sentiment_above=0.7), ResponseFacts(sentiment=NEGATIVE), False),
        (
            CaseRule("t", topics=frozenset({"refund", "fraud"})),
            ResponseFacts(topics=("delivery", "fraud")),
            True,
        ),
        (CaseRule("t", topics=frozenset({"refund"})), ResponseFacts(topics=("delivery",)), False),
        (CaseRule("t", topics=frozenset({"refund"})), ResponseFacts(), False),
        (CaseRule("r", tiers=frozenset({"gold", "vip"})), ResponseFacts(tier="vip"), True),
        (CaseRule("r", tiers=frozenset({"gold"})), ResponseFacts(tier="standard"), False),
        (CaseRule("r", tiers=frozenset({"gold"})), ResponseFacts(), False),
    ],
)
def test_each_condition_alone(rule: CaseRule, facts: ResponseFacts, opens: bool) -> None:
    decision = evaluate(facts, CaseRules(rules=(rule,)))
    assert decision.opens is opens
    assert decision.rule == (rule.name if opens else None)


GOLD_DETRACTOR_ABOUT_BILLING = CaseRule(
    "gold-billing-detractor",
    nps_at_most=8,
    negative_sentiment_above=0.5,
    topics=frozenset({"billing"}),
    tiers=frozenset({"gold"}),
)
ALL_HOLD = ResponseFacts(
    kind=NPS,
    score=7,
    sentiment=NEGATIVE,
    sentiment_confidence=0.8,
    topics=("billing",),
    tier="gold",
)


@pytest.mark.parametrize(
    "broken",
    [
        {"score": 9},
        {"sentiment": NEUTRAL},
        {"sentiment_confidence": 0.5},
        {"topics": ("delivery",)},
        {"tier": "standard"},
    ],
)
def test_a_combination_needs_every_condition(broken: dict[str, object]) -> None:
    rules = CaseRules(rules=(GOLD_DETRACTOR_ABOUT_BILLING,))
    assert evaluate(ALL_HOLD, rules).opens
    assert not evaluate(replace(ALL_HOLD, **broken), rules).opens


def test_any_rule_opens_and_the_first_match_is_recorded() -> None:
    rules = CaseRules(
        rules=(
            CaseRule("vip", tiers=frozenset({"vip"})),
            CaseRule("angry", negative_sentiment_above=0.6),
            *DEFAULT_RULES,
        )
    )
    angry_vip = ResponseFacts(
        kind=NPS, score=2, sentiment=NEGATIVE, sentiment_confidence=0.9, tier="vip"
    )
    assert evaluate(angry_vip, rules).rule == "vip"
    assert evaluate(replace(angry_vip, tier=None), rules).rule == "angry"
    assert evaluate(ResponseFacts(kind=NPS, score=2), rules).rule == "nps-detractor"
    assert not evaluate(ResponseFacts(kind=NPS, score=9, tier="gold"), rules).opens


def test_the_team_is_the_first_owned_topic_else_the_default() -> None:
    rules = CaseRules(topic_teams={"billing": "finance", "delivery": "logistics"})
    by_topics = {
        ("wait_time", "delivery", "billing"): ("logistics", "delivery"),
        ("billing", "delivery"): ("finance", "billing"),
        ("wait_time",): (DEFAULT_TEAM, None),
        (): (DEFAULT_TEAM, None),
    }
    for topics, (team, topic) in by_topics.items():
        decision = evaluate(ResponseFacts(kind=NPS, score=3, topics=topics), rules)
        assert (decision.team, decision.topic) == (team, topic), topics
    custom = CaseRules(default_team="care")
    assert evaluate(ResponseFacts(kind=CSAT, score=1), custom).team == "care"
    assert evaluate(ResponseFacts(kind=CSAT, score=5), custom).team is None


@given(
    kind=st.sampled_from(list(SurveyKind)),
    score=st.integers(0, 10),
    tier=st.sampled_from(["gold", "standard", None]),
    topics=st.lists(st.sampled_from(["billing", "delivery", "app"]), max_size=3),
)
def test_a_rule_set_opens_exactly_when_one_of_its_rules_would_alone(
    kind: SurveyKind, score: int, tier: str | None, topics: list[str]
) -> None:
    rules = (
        CaseRule("gold-app", tiers=frozenset({"gold"}), topics=frozenset({"app"})),
        *DEFAULT_RULES,
    )
    facts = ResponseFacts(kind=kind, score=score, tier=tier, topics=tuple(topics))
    alone = [rule.name for rule in rules if evaluate(facts, CaseRules(rules=(rule,))).opens]
    decision = evaluate(facts, CaseRules(rules=rules))
    assert decision.opens is bool(alone)
    assert decision.rule == (alone[0] if alone else None)


@pytest.mark.parametrize(
    "build",
    [
        lambda: CaseRule(" "),
        lambda: CaseRule("none"),
        lambda: CaseRule("two-scores", nps_at_most=6, csat_at_most=2),
        lambda: CaseRule("off-scale", ces_at_least=8),
        lambda: CaseRule("off-scale", csat_at_most=0),
        lambda: CaseRule("confidence", negative_sentiment_above=1.0),
        lambda: CaseRule("no-topics", topics=frozenset()),
        lambda: CaseRule("no-tiers", tiers=frozenset()),
        lambda: CaseRules(rules=(CaseRule("a", nps_at_most=1), CaseRule("a", csat_at_most=1))),
        lambda: CaseRules(default_team=""),
    ],
)
def test_rules_that_could_not_work_are_refused(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        build()


# --- states ----------------------------------------------------------------------------------

FEEDBACK_AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
OPENED_AT = FEEDBACK_AT + timedelta(minutes=5)
SLA = SlaPolicy()
WHY = RootCause(RootCauseCategory.PROCESS, ("refund took 10 days", "manual approval step"))
OPEN, ACKNOWLEDGED, DOCUMENTED, CLOSED = (
    CaseState.OPEN,
    CaseState.ACKNOWLEDGED,
    CaseState.ACTION_DOCUMENTED,
    CaseState.CLOSED,
)
DETRACTOR = CaseDecision(opens=True, rule="nps-detractor", team="billing", topic="refund")


def opened(sla: SlaPolicy = SLA, feedback_at: datetime = FEEDBACK_AT) -> Case:
    return open_case(
        DETRACTOR,
        feedback_at=feedback_at,
        at=feedback_at + timedelta(minutes=5),
        by="system",
        sla=sla,
    ).case


def perform(case: Case, action: CaseAction, at: datetime) -> Transition:
    """The action with valid input, as a supervisor would take it."""
    if action is CaseAction.ASSIGN:
        return assign(case, owner="ana", by="lead", at=at)
    if action is CaseAction.ACKNOWLEDGE:
        return acknowledge(case, by="ana", at=at)
    if action is CaseAction.DOCUMENT_ACTION:
        return document_action(
            case, corrective_action="auto-approve refunds", root_cause=WHY, by="ana", at=at
        )
    if action is CaseAction.CLOSE:
        return close(case, resolution="refunded", customer_contacted=True, by="ana", at=at)
    if action is CaseAction.REOPEN:
        return reopen(case, by="ana", at=at, reason="customer called back")
    raise AssertionError(f"no way to perform {action}")


PATH = (CaseAction.ACKNOWLEDGE, CaseAction.DOCUMENT_ACTION, CaseAction.CLOSE)


def case_in(state: CaseState) -> Case:
    """A case walked to ``state`` along the only path, an hour per step."""
    case = opened()
    steps = {OPEN: 0, ACKNOWLEDGED: 1, DOCUMENTED: 2, CLOSED: 3}[state]
    for hour, action in enumerate(PATH[:steps], start=1):
        case = perform(case, action, OPENED_AT + timedelta(hours=hour)).case
    assert case.state is state
    return case


#: Written out, not read from TRANSITIONS, so a wrong table fails here.
ALLOWED = {
    OPEN: {CaseAction.ASSIGN: OPEN, CaseAction.ACKNOWLEDGE: ACKNOWLEDGED},
    ACKNOWLEDGED: {CaseAction.ASSIGN: ACKNOWLEDGED, CaseAction.DOCUMENT_ACTION: DOCUMENTED},
    DOCUMENTED: {CaseAction.ASSIGN: DOCUMENTED, CaseAction.CLOSE: CLOSED},
    CLOSED: {CaseAction.REOPEN: OPEN},
}
PERFORMABLE = [action for action in CaseAction if action is not CaseAction.OPEN]
PAIRS = [(state, action) for state in CaseState for action in PERFORMABLE]


@pytest.mark.parametrize(
    ("state", "action"), [pair for pair in PAIRS if pair[1] in ALLOWED[pair[0]]]
)
def test_every_allowed_transition(state: CaseState, action: CaseAction) -> None:
    case = case_in(state)
    at = OPENED_AT + timedelta(days=1)
    moved = perform(case, action, at)
    assert moved.case.state is ALLOWED[state][action]
    entry = moved.entry
    assert (entry.action, entry.at, entry.from_state, entry.to_state) == (
        action,
        at,
        state,
        ALLOWED[state][action],
    )
    assert entry.by in {"ana", "lead"}
    assert case.state is state  # the value passed in is untouched


@pytest.mark.parametrize(
    ("state", "action"), [pair for pair in PAIRS if pair[1] not in ALLOWED[pair[0]]]
)
def test_every_refused_transition_names_the_allowed_actions(
    state: CaseState, action: CaseAction
) -> None:
    with pytest.raises(TransitionRefused) as refused:
        perform(case_in(state), action, OPENED_AT + timedelta(days=1))
    assert refused.value.state is state
    assert refused.value.action is action
    assert set(refused.value.allowed) == set(ALLOWED[state])
    message = str(refused.value)
    assert all(str(allowed) in message for allowed in ALLOWED[state])
    assert f"cannot {action}" in message


def test_the_table_is_exactly_the_allowed_transitions() -> None:
    assert {(s, a): t for s, moves in ALLOWED.items() for a, t in moves.items()} == dict(
        TRANSITIONS
    )
    assert all(action is not CaseAction.OPEN for _, action in TRANSITIONS)
    for state in CaseState:
        assert set(allowed_actions(state)) == set(ALLOWED[state])


def test_opening_records_the_rule_team_and_topic() -> None:
    opening = open_case(DETRACTOR, feedback_at=FEEDBACK_AT, at=OPENED_AT, by="system", sla=SLA)
    case = opening.case
    assert (case.state, case.team, case.rule, case.topic, case.owner) == (
        OPEN,
        "billing",
        "nps-detractor",
        "refund",
        None,
    )
    assert (case.feedback_at, case.opened_at, case.round) == (FEEDBACK_AT, OPENED_AT, 1)
    entry = opening.entry
    assert (entry.action, entry.from_state, entry.to_state, entry.by) == (
        CaseAction.OPEN,
        None,
        OPEN,
        "system",
    )
    assert entry.detail == {"rule": "nps-detractor", "team": "billing", "topic": "refund"}
    with pytest.raises(CaseInputError):
        open_case(CaseDecision(opens=False), feedback_at=FEEDBACK_AT, at=OPENED_AT, by="s", sla=SLA)


def test_each_action_keeps_its_input_on_the_case_and_in_the_history() -> None:
    at = OPENED_AT + timedelta(hours=2)
    assigned = assign(opened(), owner="ana", by="lead", at=at)
    assert assigned.case.owner == "ana"
    assert assigned.entry.detail == {"owner": "ana"}
    reassigned = assign(
        perform(assigned.case, CaseAction.ACKNOWLEDGE, at).case, owner="bo", by="lead", at=at
    )
    assert (reassigned.case.owner, reassigned.case.state) == ("bo", ACKNOWLEDGED)

    documented = perform(case_in(ACKNOWLEDGED), CaseAction.DOCUMENT_ACTION, at)
    assert documented.case.corrective_action == "auto-approve refunds"
    assert documented.case.root_cause == WHY
    assert documented.case.action_documented_at == at
    assert documented.entry.detail == {
        "corrective_action": "auto-approve refunds",
        "root_cause": {"category": "process", "why_chain": list(WHY.why_chain)},
    }
    closed = close(
        documented.case, resolution="refunded", customer_contacted=False, by="ana", at=at
    )
    assert (closed.case.resolution, closed.case.customer_contacted, closed.case.closed_at) == (
        "refunded",
        False,
        at,
    )
    assert closed.entry.detail == {"resolution": "refunded", "customer_contacted": False}


def test_reopen_starts_a_new_round_and_clears_it() -> None:
    closed = case_in(CLOSED)
    at = OPENED_AT + timedelta(days=3)
    reopened = reopen(closed, by="ana", at=at, reason="still not refunded")
    case = reopened.case
    assert (case.state, case.round, case.reopened_at, case.round_started_at) == (OPEN, 2, at, at)
    assert (case.acknowledged_at, case.action_documented_at, case.closed_at) == (None, None, None)
    assert (case.corrective_action, case.root_cause, case.resolution) == (None, None, None)
    assert case.customer_contacted is None
    assert (case.team, case.rule, case.feedback_at) == (closed.team, closed.rule, FEEDBACK_AT)
    assert reopened.entry.detail == {"reason": "still not refunded", "round": 2}
    again = perform(
        perform(
            perform(case, CaseAction.ACKNOWLEDGE, at).case, CaseAction.DOCUMENT_ACTION, at
        ).case,
        CaseAction.CLOSE,
        at,
    )
    assert reopen(again.case, by="ana", at=at).case.round == 3


@pytest.mark.parametrize(
    "attempt",
    [
        lambda: assign(case_in(OPEN), owner=" ", by="lead", at=OPENED_AT),
        lambda: acknowledge(case_in(OPEN), by="", at=OPENED_AT),
        lambda: acknowledge(case_in(OPEN), by="ana", at=datetime(2026, 3, 2, 10)),
        lambda: document_action(
            case_in(ACKNOWLEDGED), corrective_action="\t", root_cause=WHY, by="ana", at=OPENED_AT
        ),
        lambda: RootCause(RootCauseCategory.PEOPLE, ()),
        lambda: RootCause(RootCauseCategory.PEOPLE, ("why", " ")),
        lambda: RootCauseCategory("weather"),
        lambda: close(
            case_in(DOCUMENTED), resolution="", customer_contacted=True, by="ana", at=OPENED_AT
        ),
    ],
)
def test_unusable_input_is_refused(attempt: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        attempt()


def test_a_refused_action_is_refused_before_its_input_is_read() -> None:
    with pytest.raises(TransitionRefused):
        assign(case_in(CLOSED), owner=" ", by="lead", at=OPENED_AT)
    with pytest.raises(TransitionRefused):
        close(case_in(OPEN), resolution="", customer_contacted=True, by="ana", at=OPENED_AT)


# --- clocks ----------------------------------------------------------------------------------

TICK = timedelta(microseconds=1)
HOUR = timedelta(hours=1)
ACK_DUE = FEEDBACK_AT + timedelta(hours=24)
ACTION_DUE = FEEDBACK_AT + timedelta(hours=72)
CLOSE_DUE = FEEDBACK_AT + timedelta(days=7)
ESCALATE_AT = FEEDBACK_AT + timedelta(hours=12)


def test_deadlines_count_from_the_feedback_with_the_cases_own_policy() -> None:
    assert deadlines(opened()) == {
        Clock.ACKNOWLEDGE: ACK_DUE,
        Clock.ACTION: ACTION_DUE,
        Clock.CLOSE: CLOSE_DUE,
    }
    tight = SlaPolicy(HOUR * 2, HOUR * 8, HOUR * 48)
    case = opened(sla=tight)
    assert list(deadlines(case).values()) == [
        FEEDBACK_AT + HOUR * 2,
        FEEDBACK_AT + HOUR * 8,
        FEEDBACK_AT + HOUR * 48,
    ]
    assert escalation_at(case) == FEEDBACK_AT + HOUR


@pytest.mark.parametrize("field", ["acknowledge_within", "action_within", "close_within"])
def test_a_policy_with_a_clock_not_positive_is_refused(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        SlaPolicy(**{field: timedelta(0)})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("clock", "due"),
    [(Clock.ACKNOWLEDGE, ACK_DUE), (Clock.ACTION, ACTION_DUE), (Clock.CLOSE, CLOSE_DUE)],
)
def test_a_clock_is_met_strictly_before_its_deadline_and_breached_from_it(
    clock: Clock, due: datetime
) -> None:
    steps = {Clock.ACKNOWLEDGE: 1, Clock.ACTION: 2, Clock.CLOSE: 3}[clock]

    def done_at(moment: datetime) -> Case:
        case = opened()
        for action in PATH[: steps - 1]:
            case = perform(case, action, OPENED_AT).case
        return perform(case, PATH[steps - 1], moment).case

    later = due + timedelta(days=30)
    assert clock_status(done_at(due - TICK), later)[clock] is ClockStatus.MET
    assert clock_status(done_at(due), later)[clock] is ClockStatus.BREACHED
    waiting = opened()
    assert clock_status(waiting, due - TICK)[clock] is ClockStatus.PENDING
    assert clock_status(waiting, due)[clock] is ClockStatus.BREACHED
    assert clock in breached_clocks(waiting, due)
    assert clock not in breached_clocks(waiting, due - TICK)


def test_each_breach_fires_once_at_its_deadline() -> None:
    case = opened()
    quiet = check_clocks(case, ACK_DUE - TICK)
    assert quiet.breaches == ()
    at_ack = check_clocks(quiet.case, ACK_DUE)
    assert at_ack.breaches == (Breach(Clock.ACKNOWLEDGE, 1, ACK_DUE),)
    assert check_clocks(at_ack.case, ACK_DUE + HOUR).breaches == ()
    acknowledged = perform(at_ack.case, CaseAction.ACKNOWLEDGE, ACK_DUE + HOUR).case
    at_action = check_clocks(acknowledged, ACTION_DUE)
    assert at_action.breaches == (Breach(Clock.ACTION, 1, ACTION_DUE),)
    assert at_action.case.breaches == (
        Breach(Clock.ACKNOWLEDGE, 1, ACK_DUE),
        Breach(Clock.ACTION, 1, ACTION_DUE),
    )
    late_timer = check_clocks(opened(), CLOSE_DUE + HOUR)
    assert [b.clock for b in late_timer.breaches] == list(Clock)
    assert check_clocks(late_timer.case, CLOSE_DUE + HOUR * 2).breaches == ()


def test_an_action_taken_late_before_any_timer_still_records_its_breach() -> None:
    late = perform(opened(), CaseAction.ACKNOWLEDGE, ACK_DUE + HOUR).case
    assert next_due(late, ACK_DUE + HOUR) == ACK_DUE + HOUR  # overdue: arm for now
    check = check_clocks(late, ACK_DUE + HOUR)
    assert check.breaches == (Breach(Clock.ACKNOWLEDGE, 1, ACK_DUE),)
    assert next_due(check.case, ACK_DUE + HOUR) == ACTION_DUE


def test_an_unacknowledged_case_escalates_once_half_way_through_its_acknowledge_clock() -> None:
    case = opened()
    assert escalation_at(case) == ESCALATE_AT
    assert not check_clocks(case, ESCALATE_AT - TICK).escalate
    fired = check_clocks(case, ESCALATE_AT)
    assert fired.escalate
    assert fired.case.escalated_at == ESCALATE_AT
    assert fired.breaches == ()
    assert escalation_at(fired.case) is None
    assert not check_clocks(fired.case, ESCALATE_AT + HOUR).escalate
    assert not check_clocks(fired.case, ACK_DUE).escalate


def test_a_case_acknowledged_in_time_never_escalates() -> None:
    case = perform(opened(), CaseAction.ACKNOWLEDGE, ESCALATE_AT - TICK).case
    assert escalation_at(case) is None
    assert not check_clocks(case, ACK_DUE + HOUR).escalate


def test_next_due_walks_the_escalation_and_each_clock_in_turn() -> None:
    case = opened()
    assert next_due(case, OPENED_AT) == ESCALATE_AT
    case = check_clocks(case, ESCALATE_AT).case
    assert next_due(case, ESCALATE_AT) == ACK_DUE
    case = perform(case, CaseAction.ACKNOWLEDGE, ESCALATE_AT + HOUR).case
    assert next_due(case, ESCALATE_AT + HOUR) == ACTION_DUE
    case = perform(case, CaseAction.DOCUMENT_ACTION, ACTION_DUE - HOUR).case
    assert next_due(case, ACTION_DUE - HOUR) == CLOSE_DUE
    case = perform(case, CaseAction.CLOSE, CLOSE_DUE - HOUR).case
    assert next_due(case, CLOSE_DUE - HOUR) is None


def test_next_due_skips_recorded_breaches_and_arms_for_now_when_overdue() -> None:
    case = opened()
    restart = ACK_DUE + HOUR
    assert next_due(case, restart) == restart
    checked = check_clocks(case, restart)
    assert checked.escalate
    assert checked.breaches == (Breach(Clock.ACKNOWLEDGE, 1, ACK_DUE),)
    assert next_due(checked.case, restart) == ACTION_DUE
    after_all = check_clocks(checked.case, CLOSE_DUE).case
    assert next_due(after_all, CLOSE_DUE) is None


def test_reopen_restarts_every_clock_and_keeps_the_earlier_breaches() -> None:
    case = opened()
    case = check_clocks(case, ACK_DUE).case  # escalated and acknowledge breached
    for action in PATH:
        case = perform(case, action, ACK_DUE + HOUR).case
    reopened_at = ACK_DUE + HOUR * 10
    case = reopen(case, by="ana", at=reopened_at).case
    assert deadlines(case) == {
        Clock.ACKNOWLEDGE: reopened_at + timedelta(hours=24),
        Clock.ACTION: reopened_at + timedelta(hours=72),
        Clock.CLOSE: reopened_at + timedelta(days=7),
    }
    assert case.breaches == (Breach(Clock.ACKNOWLEDGE, 1, ACK_DUE),)
    assert set(clock_status(case, reopened_at).values()) == {ClockStatus.PENDING}
    assert escalation_at(case) == reopened_at + timedelta(hours=12)
    assert next_due(case, reopened_at) == reopened_at + timedelta(hours=12)
    second = check_clocks(case, reopened_at + timedelta(hours=24))
    assert second.escalate
    assert second.breaches == (Breach(Clock.ACKNOWLEDGE, 2, reopened_at + timedelta(hours=24)),)
    assert len(second.case.breaches) == 2


def test_a_case_reopened_after_its_first_close_deadline_is_not_breached_by_it() -> None:
    case = case_in(CLOSED)
    reopened_at = CLOSE_DUE + timedelta(days=1)
    case = reopen(case, by="ana", at=reopened_at).case
    assert check_clocks(case, reopened_at).breaches == ()
    assert next_due(case, reopened_at) == reopened_at + timedelta(hours=12)


def test_elapsed_times_count_seconds_from_the_feedback() -> None:
    case = opened()
    assert elapsed(case) == Elapsed(None, None, None)
    case = perform(case, CaseAction.ACKNOWLEDGE, FEEDBACK_AT + HOUR * 3).case
    case = perform(case, CaseAction.DOCUMENT_ACTION, FEEDBACK_AT + HOUR * 30).case
    case = perform(case, CaseAction.CLOSE, FEEDBACK_AT + timedelta(days=4, seconds=1)).case
    assert elapsed(case) == Elapsed(3 * 3600.0, 30 * 3600.0, 4 * 86400.0 + 1)
    case = reopen(case, by="ana", at=FEEDBACK_AT + timedelta(days=5)).case
    assert elapsed(case) == Elapsed(None, None, None)
    case = perform(case, CaseAction.ACKNOWLEDGE, FEEDBACK_AT + timedelta(days=5, hours=1)).case
    assert elapsed(case).acknowledge == (5 * 24 + 1) * 3600.0


@dataclass
class Timer:
    """A service's one timer per case: armed at ``next_due``, firing ``check_clocks``."""

    case: Case
    now: datetime
    breaches: list[Breach] = field(default_factory=list)
    escalations: int = 0

    def run_until(self, moment: datetime) -> None:
        while (due := next_due(self.case, self.now)) is not None and due <= moment:
            assert due >= self.now
            self.now = due
            check = check_clocks(self.case, due)
            self.case = check.case
            self.breaches += check.breaches
            self.escalations += check.escalate
        self.now = moment


@given(
    gaps=st.lists(st.integers(1, 200), min_size=3, max_size=3),
    taken=st.integers(0, 3),
)
def test_timers_armed_by_next_due_fire_each_breach_once_when_it_falls_due(
    gaps: list[int], taken: int
) -> None:
    """The first ``taken`` steps are acted on at random hours; between them only the timer runs.
    It fires each breach once, the ones the finished case shows, and escalates only a case not
    acknowledged strictly before half its acknowledge clock."""
    timer = Timer(opened(), OPENED_AT)
    at = FEEDBACK_AT
    for action, hours in list(zip(PATH, gaps, strict=True))[:taken]:
        at += HOUR * hours
        timer.run_until(at)
        timer.case = perform(timer.case, action, at).case
    end = FEEDBACK_AT + timedelta(days=60)
    timer.run_until(end)
    assert sorted(b.clock for b in timer.breaches) == sorted(breached_clocks(timer.case, end))
    assert len(set(timer.breaches)) == len(timer.breaches)
    assert all(b.deadline == deadlines(timer.case)[b.clock] for b in timer.breaches)
    acknowledged_in_time = taken > 0 and FEEDBACK_AT + HOUR * gaps[0] < ESCALATE_AT
    assert timer.escalations == (0 if acknowledged_in_time else 1)
    assert next_due(timer.case, end) is None


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(CaseInputError):
        check_clocks(opened(), datetime(2026, 3, 3))
