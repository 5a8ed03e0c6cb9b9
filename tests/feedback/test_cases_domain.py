"""Closed-loop cases' pure core: the rules that open a case and name its team, every allowed and
every refused transition, and the SLA clocks (deadlines, breaches, escalation, reopen, the next
timer) at exact instants."""

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cxops.feedback.domain.cases import (
    DEFAULT_RULES,
    DEFAULT_TEAM,
    TRANSITIONS,
    Case,
    CaseAction,
    CaseDecision,
    CaseInputError,
    CaseRule,
    CaseRules,
    CaseState,
    ResponseFacts,
    RootCause,
    RootCauseCategory,
    SlaPolicy,
    Transition,
    TransitionRefused,
    acknowledge,
    allowed_actions,
    assign,
    close,
    document_action,
    evaluate,
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
