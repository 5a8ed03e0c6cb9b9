"""The metric arithmetic on its own: worked examples, and invariants checked by hypothesis
against a plain reading of the definitions over the individual answers."""

from collections import Counter
from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cxops.scorecard.domain.metrics import (
    MetricValue,
    compute,
    customer_effort,
    customer_satisfaction,
    net_promoter_score,
)
from cxops.stats.scales import SCALES, SurveyKind


def answers(metric: SurveyKind, *, min_size: int = 0) -> st.SearchStrategy[list[int]]:
    scale = SCALES[metric]
    return st.lists(
        st.integers(min_value=scale.lowest, max_value=scale.highest),
        min_size=min_size,
        max_size=300,
    )


def counts(scores: list[int]) -> Mapping[int, int]:
    return Counter(scores)


@pytest.mark.parametrize(
    ("metric", "scores", "value"),
    [
        (SurveyKind.NPS, [10, 9, 9, 8, 6, 0], 16.67),
        (SurveyKind.NPS, [10, 10], 100.0),
        (SurveyKind.NPS, [6, 0, 3], -100.0),
        (SurveyKind.NPS, [7, 8], 0.0),
        (SurveyKind.NPS, [10, 9, 0], 33.33),
        (SurveyKind.NPS, [0, 0, 10], -33.33),
        (SurveyKind.NPS, [10] + [8] * 7, 12.5),
        (SurveyKind.CSAT, [5, 4, 3, 2], 50.0),
        (SurveyKind.CSAT, [4, 1, 1], 33.33),
        (SurveyKind.CSAT, [5, 5, 4], 100.0),
        (SurveyKind.CSAT, [3], 0.0),
        (SurveyKind.CES, [1, 2, 6], 3.0),
        (SurveyKind.CES, [1, 2], 1.5),
        (SurveyKind.CES, [7, 7, 6], 6.67),
        (SurveyKind.CES, [1, 1, 2], 1.33),
    ],
)
def test_worked_examples(metric: SurveyKind, scores: list[int], value: float) -> None:
    assert compute(metric, counts(scores)) == MetricValue(metric, value, len(scores))


def test_ties_round_half_away_from_zero() -> None:
    # One promoter (or detractor) among 800 answers is exactly 0.125 points.
    assert net_promoter_score({10: 1, 8: 799}) == 0.13
    assert net_promoter_score({0: 1, 8: 799}) == -0.13
    assert customer_effort({1: 7, 2: 1, 3: 0}) == 1.13  # 9 / 8 = 1.125


@pytest.mark.parametrize("metric", list(SurveyKind))
def test_no_answers_have_no_value(metric: SurveyKind) -> None:
    assert compute(metric, {}) == MetricValue(metric, None, 0)
    assert compute(metric, {SCALES[metric].highest: 0}) == MetricValue(metric, None, 0)


@pytest.mark.parametrize(
    ("metric", "bad"),
    [
        (SurveyKind.NPS, {11: 1}),
        (SurveyKind.NPS, {-1: 1}),
        (SurveyKind.CSAT, {0: 1}),
        (SurveyKind.CES, {8: 2}),
    ],
)
def test_scores_off_the_scale_are_refused(metric: SurveyKind, bad: dict[int, int]) -> None:
    with pytest.raises(ValueError, match="scores run from"):
        compute(metric, bad)


def test_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="negative count"):
        compute(SurveyKind.CSAT, {5: 3, 1: -1})


@given(answers(SurveyKind.NPS, min_size=1))
def test_nps_matches_its_definition(scores: list[int]) -> None:
    promoters = sum(score >= 9 for score in scores) / len(scores) * 100
    detractors = sum(score <= 6 for score in scores) / len(scores) * 100
    value = net_promoter_score(counts(scores))

    assert value is not None
    assert -100 <= value <= 100
    assert value == pytest.approx(promoters - detractors, abs=0.005 + 1e-9)


@given(answers(SurveyKind.CSAT, min_size=1))
def test_csat_matches_its_definition(scores: list[int]) -> None:
    value = customer_satisfaction(counts(scores))

    assert value is not None
    assert 0 <= value <= 100
    assert value == pytest.approx(
        sum(score >= 4 for score in scores) / len(scores) * 100, abs=0.005 + 1e-9
    )


@given(answers(SurveyKind.CES, min_size=1))
def test_ces_is_the_mean_and_lies_between_the_extremes(scores: list[int]) -> None:
    value = customer_effort(counts(scores))

    assert value is not None
    assert min(scores) <= value <= max(scores)
    assert value == pytest.approx(sum(scores) / len(scores), abs=0.005 + 1e-9)


@given(st.sampled_from(list(SurveyKind)).flatmap(lambda m: st.tuples(st.just(m), answers(m))))
def test_the_figure_depends_on_the_counts_not_their_order(
    metric_and_scores: tuple[SurveyKind, list[int]],
) -> None:
    metric, scores = metric_and_scores

    assert compute(metric, counts(scores)) == compute(metric, counts(list(reversed(scores))))
    assert compute(metric, counts(scores)).responses == len(scores)


@given(
    st.sampled_from(list(SurveyKind)).flatmap(
        lambda m: st.tuples(st.just(m), answers(m, min_size=1))
    ),
    st.integers(min_value=2, max_value=50),
)
def test_more_of_the_same_answers_leave_the_figure_unchanged(
    metric_and_scores: tuple[SurveyKind, list[int]], factor: int
) -> None:
    metric, scores = metric_and_scores
    scaled = {score: n * factor for score, n in counts(scores).items()}

    assert compute(metric, scaled).value == compute(metric, counts(scores)).value
    assert compute(metric, scaled).responses == len(scores) * factor


@given(answers(SurveyKind.NPS))
def test_passives_never_move_nps_away_from_zero(scores: list[int]) -> None:
    with_passives = counts([*scores, 7, 8])
    before, after = net_promoter_score(counts(scores)), net_promoter_score(with_passives)

    assert after is not None
    if before is not None:
        assert abs(after) <= abs(before)
