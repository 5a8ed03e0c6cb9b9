"""Balanced scorecards as pure code: formulas, scores and composite, weight versions, variances
that must be statistically real, the action plans they require, and lagged correlation."""

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cxops.scorecard.domain.action_plans import (
    MISSING,
    ActionPlan,
    PlanState,
    PlanStatus,
    required_plan,
)
from cxops.scorecard.domain.catalogue import (
    ChangeTest,
    Direction,
    Indicator,
    MeanTest,
    MetricDefinition,
    NoTest,
    NpsTest,
    Perspective,
    ProportionTest,
    Tolerance,
)
from cxops.scorecard.domain.composite import (
    Composite,
    Status,
    composite_of,
    score_of,
    status_of,
)
from cxops.scorecard.domain.correlation import MIN_PAIRS, lagged_correlation, pearson
from cxops.scorecard.domain.formula import FormulaError, Outcome, evaluate, parse_formula
from cxops.scorecard.domain.scorecard import MetricResult, Period, Scorecard, evaluate_scorecard
from cxops.scorecard.domain.weights import WeightVersion

AS_OF = date(2026, 7, 1)


def metric(
    id: str = "fcr",
    *,
    formula: str = "resolved / contacts * 100",
    direction: Direction = Direction.HIGHER_IS_BETTER,
    target: float = 80,
    tolerance: Tolerance = Tolerance(5),
    indicator: Indicator = Indicator.LAGGING,
    perspective: Perspective = Perspective.OPERATIONAL,
    test: ChangeTest = ProportionTest("resolved", "contacts"),
) -> MetricDefinition:
    return MetricDefinition(
        id=id,
        name=id,
        formula=parse_formula(formula),
        unit="%",
        direction=direction,
        target=target,
        tolerance=tolerance,
        owner="ops lead",
        indicator=indicator,
        perspective=perspective,
        test=test,
    )


def months(*facts: dict[str, float], year: int = 2026) -> tuple[Period, ...]:
    """One period a month from January, with these facts."""
    return tuple(
        Period(id=f"{year}-{i + 1:02d}", start=date(year, i + 1, 1), facts=f)
        for i, f in enumerate(facts)
    )


def fcr_card(
    *resolved_of: tuple[int, int],
    plans: tuple[ActionPlan, ...] = (),
    test: ChangeTest | None = None,
) -> Scorecard:
    """One FCR metric (target 80 %, tolerance 5 points) over months of (resolved, contacts)."""
    return Scorecard(
        name="fcr",
        metrics=(
            metric(test=test if test is not None else ProportionTest("resolved", "contacts")),
        ),
        weights=(WeightVersion(date(2026, 1, 1), {"fcr": 1.0}),),
        periods=months(*({"resolved": r, "contacts": n} for r, n in resolved_of)),
        action_plans=plans,
    )


NO_TEST = NoTest()


# --- formulas ------------------------------------------------------------------------------


def test_a_formula_computes_over_the_facts() -> None:
    nps = parse_formula("promoters / responses * 100 - detractors / responses * 100")
    assert nps.facts == {"promoters", "responses", "detractors"}
    assert evaluate(nps, {"promoters": 50, "responses": 100, "detractors": 20}).value == 30
    capped = parse_formula("min(handled, offered) / max(offered, 1) + -(2 - 3)")
    assert evaluate(capped, {"handled": 120, "offered": 100}).value == 2


def test_division_by_zero_or_a_missing_fact_gives_no_value_and_says_why() -> None:
    fcr = parse_formula("resolved / (contacts - transferred)")
    outcome = evaluate(fcr, {"resolved": 0, "contacts": 5, "transferred": 5})
    assert outcome.value is None
    assert outcome.reason == "division by zero (contacts - transferred = 0)"
    missing = evaluate(fcr, {"resolved": 1, "contacts": 5})
    assert missing.value is None and missing.reason == "fact 'transferred' is not recorded"


def test_overflow_gives_no_value_and_deep_nesting_is_refused() -> None:
    cube = parse_formula("a * a * a")
    assert evaluate(cube, {"a": 1e200}) == Outcome(None, "the result overflows")
    with pytest.raises(FormulaError, match="nested more than"):
        parse_formula("-" * 500 + "a")
    with pytest.raises(FormulaError, match="longer than"):
        parse_formula("+".join(["a"] * 1000))


def test_a_period_without_a_value_is_no_data_and_the_composite_says_how_much_is_missing() -> None:
    card = two_metric_card(WeightVersion(date(2026, 1, 1), {"fcr": 0.75, "aht": 0.25}))
    facts = {"resolved": 0, "contacts": 0, "aht": 300}
    evaluation = evaluate_scorecard(
        Scorecard(card.name, card.metrics, card.weights, months(facts)),
        period="2026-01",
        as_of=AS_OF,
    )
    fcr, aht = evaluation.metrics
    assert fcr.status is Status.NO_DATA and fcr.score is None
    assert fcr.outcome.reason == "division by zero (contacts = 0)"
    assert aht.status is Status.ON_TARGET
    assert evaluation.composite == Composite(value=100.0, coverage=0.25)


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "contacts ** 2",
        "contacts.real",
        "open('x')",
        "max(contacts)",
        "True + 1",
        "'text'",
        "a if b else c",
        "a < b",
        "lambda: 1",
        "resolved /",
        "[a]",
    ],
)
def test_anything_but_arithmetic_is_refused(text: str) -> None:
    with pytest.raises(FormulaError):
        parse_formula(text)


# --- status, score, composite --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "status", "score"),
    [
        (90, Status.ON_TARGET, 100),
        (80, Status.ON_TARGET, 100),
        (77.5, Status.WITHIN_TOLERANCE, 50),
        (76, Status.WITHIN_TOLERANCE, 20),
        (75, Status.WITHIN_TOLERANCE, 0),
        (60, Status.OUTSIDE_TOLERANCE, 0),
        (None, Status.NO_DATA, None),
    ],
)
def test_score_is_linear_from_the_tolerance_edge_to_the_target(
    value: float | None, status: Status, score: float | None
) -> None:
    fcr = metric(target=80, tolerance=Tolerance(5))
    assert status_of(fcr, value) is status
    assert score_of(fcr, value) == pytest.approx(score)


def test_lower_is_better_with_a_percentage_band() -> None:
    aht = metric(direction=Direction.LOWER_IS_BETTER, target=300, tolerance=Tolerance(10, True))
    assert aht.band == 30
    assert score_of(aht, 280) == 100
    assert score_of(aht, 315) == pytest.approx(50)
    assert status_of(aht, 331) is Status.OUTSIDE_TOLERANCE
    exact = metric(target=80, tolerance=Tolerance(0))
    assert (score_of(exact, 80), score_of(exact, 79.9)) == (100, 0)


def test_composite_is_the_weighted_mean_of_the_scores_present() -> None:
    assert composite_of([(0.5, 100), (0.3, 50), (0.2, 0)]).value == pytest.approx(65)
    partial = composite_of([(0.5, 100), (0.3, 50), (0.2, None)])
    assert partial.value == pytest.approx((50 + 15) / 0.8)
    assert partial.coverage == pytest.approx(0.8)
    assert composite_of([(0.5, None), (0.5, None)]).value is None


@given(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6), st.floats(0, 1e3))
def test_scores_stay_in_range_and_never_fall_as_the_metric_improves(
    a: float, b: float, band: float
) -> None:
    fcr = metric(target=50, tolerance=Tolerance(band))
    low, high = sorted((a, b))
    assert 0 <= score_of(fcr, low) <= score_of(fcr, high) <= 100


# --- weight versions -----------------------------------------------------------------------


def two_metric_card(*versions: WeightVersion) -> Scorecard:
    """FCR on target (score 100) and AHT on its tolerance edge (score 0), every month."""
    facts = {"resolved": 900, "contacts": 1000, "aht": 330}
    return Scorecard(
        name="reweighted",
        metrics=(
            metric(target=80),
            metric(
                "aht",
                formula="aht",
                direction=Direction.LOWER_IS_BETTER,
                target=300,
                tolerance=Tolerance(10, True),
                test=NO_TEST,
            ),
        ),
        weights=versions,
        periods=months(facts, facts, facts),
    )


def test_a_reweighting_never_rewrites_history() -> None:
    january = WeightVersion(date(2026, 1, 1), {"fcr": 0.5, "aht": 0.5})
    march = WeightVersion(date(2026, 3, 1), {"fcr": 0.8, "aht": 0.2})
    before = evaluate_scorecard(two_metric_card(january), period="2026-01", as_of=AS_OF)
    after = evaluate_scorecard(two_metric_card(january, march), period="2026-01", as_of=AS_OF)
    assert before.composite.value == after.composite.value == pytest.approx(50)
    assert after.weights == january
    in_march = evaluate_scorecard(two_metric_card(january, march), period="2026-03", as_of=AS_OF)
    assert in_march.weights == march
    assert in_march.composite.value == pytest.approx(80)
    assert [p.composite.value for p in in_march.history] == pytest.approx([50, 50, 80])
    assert [r.weight for r in in_march.metrics] == [0.8, 0.2]


@given(
    st.dates(date(2026, 1, 2), date(2026, 12, 31)),
    st.dictionaries(st.sampled_from(["fcr", "aht"]), st.floats(0.01, 1), min_size=1),
)
def test_no_later_version_changes_an_earlier_periods_composite(
    effective: date, raw: dict[str, float]
) -> None:
    first = WeightVersion(date(2026, 1, 1), {"fcr": 0.3, "aht": 0.7})
    later = WeightVersion(effective, {key: value / sum(raw.values()) for key, value in raw.items()})
    before = evaluate_scorecard(two_metric_card(first), period="2026-03", as_of=AS_OF)
    after = evaluate_scorecard(two_metric_card(first, later), period="2026-03", as_of=AS_OF)
    for old, new in zip(before.history, after.history, strict=True):
        if date.fromisoformat(f"{old.period}-01") < effective:
            assert new == old


# --- variances -----------------------------------------------------------------------------


def fcr_result(card: Scorecard, period: str = "2026-02") -> MetricResult:
    return evaluate_scorecard(card, period=period, as_of=AS_OF).metrics[0]


def test_a_big_sample_outside_tolerance_that_really_moved_is_a_variance() -> None:
    result = fcr_result(fcr_card((800, 1000), (700, 1000)))
    assert result.status is Status.OUTSIDE_TOLERANCE
    assert result.change is not None and result.change.check.change is not None
    change = result.change.check.change
    assert change.test == "two-proportion z"
    assert change.significant and change.p_value < 0.001
    assert result.verdict.variance
    assert result.plan is not None and result.plan.state is PlanState.MISSING


def test_a_tiny_segment_outside_tolerance_is_not_a_variance_and_says_too_small() -> None:
    result = fcr_result(fcr_card((8, 10), (6, 10)))
    assert result.status is Status.OUTSIDE_TOLERANCE
    assert result.change is not None and result.change.check.change is not None
    assert result.change.check.change.too_small
    assert not result.verdict.variance
    assert result.verdict.note == (
        "outside tolerance but not statistically real: sample too small to tell"
    )
    assert result.plan is None


def test_a_move_that_could_be_chance_is_not_a_variance() -> None:
    result = fcr_result(fcr_card((760, 1000), (740, 1000)))
    assert result.status is Status.OUTSIDE_TOLERANCE
    assert not result.verdict.variance
    assert result.verdict.note is not None and "could be chance" in result.verdict.note


def test_a_decline_stays_a_variance_while_it_lasts() -> None:
    """March is as bad as February: tested against January, the last month in tolerance."""
    result = fcr_result(fcr_card((800, 1000), (700, 1000), (700, 1000)), "2026-03")
    assert result.change is not None and result.change.period == "2026-02"
    assert result.change.check.change is not None
    assert not result.change.check.change.significant
    assert result.reference is not None and result.reference.period == "2026-01"
    assert result.verdict.variance


def test_without_an_earlier_period_there_is_nothing_to_test_against() -> None:
    result = fcr_result(fcr_card((700, 1000)), "2026-01")
    assert result.change is None and not result.verdict.variance
    assert result.verdict.note is not None and "no earlier period" in result.verdict.note


def test_a_metric_without_a_test_is_judged_on_tolerance_alone() -> None:
    result = fcr_result(fcr_card((795, 1000), (790, 1000), (700, 1000), test=NO_TEST), "2026-03")
    assert result.verdict.variance
    assert result.verdict.note == "no statistical test for this metric: judged on tolerance alone"


def test_mean_and_nps_metrics_use_their_own_tests() -> None:
    facts = [
        {"aht": 290, "sd": 120, "n": 2000, "p": 500, "pa": 300, "d": 200},
        {"aht": 360, "sd": 120, "n": 2000, "p": 350, "pa": 300, "d": 350},
    ]
    card = Scorecard(
        name="mixed",
        metrics=(
            metric(
                "aht",
                formula="aht",
                direction=Direction.LOWER_IS_BETTER,
                target=300,
                tolerance=Tolerance(10, True),
                test=MeanTest("aht", "sd", "n"),
            ),
            metric(
                "nps",
                formula="(p - d) / (p + pa + d) * 100",
                target=30,
                tolerance=Tolerance(10),
                test=NpsTest("p", "pa", "d"),
            ),
        ),
        weights=(WeightVersion(date(2026, 1, 1), {"aht": 0.5, "nps": 0.5}),),
        periods=months(*facts),
    )
    aht, nps = evaluate_scorecard(card, period="2026-02", as_of=AS_OF).metrics
    assert aht.change is not None and aht.change.check.change is not None
    assert aht.change.check.change.test == "Welch t" and aht.verdict.variance
    assert nps.outcome.value == 0
    assert nps.change is not None and nps.change.check.change is not None
    assert nps.change.check.change.test == "NPS trinomial z" and nps.verdict.variance


def test_counts_that_cannot_be_tested_are_reported_not_crashed_on() -> None:
    result = fcr_result(fcr_card((800, 1000), (700.5, 1000)))
    assert not result.verdict.variance
    assert result.verdict.note is not None and "not a count" in result.verdict.note


# --- action plans --------------------------------------------------------------------------


def plan(due: date, status: PlanStatus = PlanStatus.OPEN) -> ActionPlan:
    return ActionPlan("fcr", "Dana", due, "coach the billing queue", status)


def test_a_variance_requires_a_plan_with_an_owner_and_a_due_date() -> None:
    missing = required_plan("fcr", [], as_of=AS_OF)
    assert (missing.state, missing.plan, missing.note) == (PlanState.MISSING, None, MISSING)
    present = required_plan("fcr", [plan(date(2026, 7, 31))], as_of=AS_OF)
    assert present.state is PlanState.PRESENT and present.note == "Dana, due 2026-07-31"
    overdue = required_plan("fcr", [plan(date(2026, 6, 21))], as_of=AS_OF)
    assert overdue.state is PlanState.OVERDUE
    assert overdue.note == "Dana, due 2026-06-21: overdue by 10 days"
    done = required_plan("fcr", [plan(date(2026, 7, 31), PlanStatus.DONE)], as_of=AS_OF)
    assert done.state is PlanState.MISSING and "marked done" in done.note
    other = required_plan("aht", [plan(date(2026, 7, 31))], as_of=AS_OF)
    assert other.state is PlanState.MISSING


def test_the_plan_is_matched_to_the_variance_in_the_evaluation() -> None:
    card = fcr_card((800, 1000), (700, 1000), plans=(plan(date(2026, 6, 1)),))
    result = fcr_result(card)
    assert result.plan is not None and result.plan.state is PlanState.OVERDUE


# --- leading and lagging -------------------------------------------------------------------


LEADING = [70.0, 74, 71, 78, 75, 72, 79, 73, 76, 70, 77, 74]


def test_the_lag_at_which_a_leading_metric_predicts_a_lagging_one() -> None:
    noise = [0.3, -0.2, 0.1, -0.4, 0.2, 0.0, -0.1, 0.3, -0.3, 0.2, 0.1, -0.2]
    lagging = [None, None] + [2 * x - 110 + e for x, e in zip(LEADING, noise[2:], strict=False)]
    found = lagged_correlation(LEADING, lagging, max_lag=3)
    assert [c.lag for c in found.lags] == [0, 1, 2, 3]
    assert [c.n for c in found.lags] == [10, 10, 10, 9]
    assert found.best is not None and found.best.lag == 2
    assert found.best.r is not None and found.best.r > 0.99
    assert found.best.p_value is not None and found.best.p_value < 0.001
    assert not found.too_few_periods


def test_too_few_periods_are_flagged_not_trusted() -> None:
    found = lagged_correlation(LEADING[: MIN_PAIRS - 1], LEADING[: MIN_PAIRS - 1], max_lag=2)
    assert found.lags[0].r == pytest.approx(1.0)
    assert found.too_few_periods and found.best is None
    assert pearson([1, 2], [3, 4]) is None and pearson([1, 1, 1], [1, 2, 3]) is None


def test_the_calibration_note_cites_the_evidence_without_reweighting() -> None:
    lagging = [60.0, 60] + [2 * x - 110 for x in LEADING[:-2]]
    card = Scorecard(
        name="lead-lag",
        metrics=(
            metric(
                "fcr",
                formula="fcr",
                indicator=Indicator.LEADING,
                perspective=Perspective.OPERATIONAL,
                test=NO_TEST,
            ),
            metric("nps", formula="nps", perspective=Perspective.CUSTOMER, test=NO_TEST),
        ),
        weights=(WeightVersion(date(2026, 1, 1), {"fcr": 0.4, "nps": 0.6}),),
        periods=months(*({"fcr": x, "nps": y} for x, y in zip(LEADING, lagging, strict=True))),
        pairs=(("fcr", "nps"),),
    )
    evaluation = evaluate_scorecard(card, period="2026-12", as_of=AS_OF)
    (pair,) = evaluation.lead_lag
    assert (pair.leading, pair.lagging, pair.predictive) == ("fcr", "nps", True)
    assert pair.correlation.best is not None and pair.correlation.best.lag == 2
    assert evaluation.calibration[0].startswith("fcr (weight 0.4): evidence for its weight")
    assert evaluation.weights.weights == {"fcr": 0.4, "nps": 0.6}
