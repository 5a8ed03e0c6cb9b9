"""Closed-loop cases' pure core: the rules that open a case and name its team, every allowed and
every refused transition, and the SLA clocks (deadlines, breaches, escalation, reopen, the next
timer) at exact instants."""

from collections.abc import Callable
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cxops.feedback.domain.cases import (
    DEFAULT_RULES,
    DEFAULT_TEAM,
    CaseRule,
    CaseRules,
    ResponseFacts,
    evaluate,
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
