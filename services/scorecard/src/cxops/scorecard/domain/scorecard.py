"""Evaluate a balanced scorecard for one period: composite, statuses, variances, plans, evidence.

Only the periods up to the one evaluated are read, and it is weighed with the weights in force on
its first day, so evaluating a past period gives what it gave then. A metric's variance is judged
against its reference period: the latest earlier period in which it was within tolerance (so a
decline stays a variance while it lasts), or, if it never was, the previous period with a value.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from cxops.scorecard.domain.action_plans import ActionPlan, PlanCheck, required_plan
from cxops.scorecard.domain.catalogue import Indicator, MetricDefinition, Perspective
from cxops.scorecard.domain.composite import Composite, Status, composite_of, score_of, status_of
from cxops.scorecard.domain.correlation import WEAK, LeadLag, lagged_correlation
from cxops.scorecard.domain.formula import Outcome, evaluate
from cxops.scorecard.domain.variance import ChangeCheck, Verdict, compare_periods, judge, p_text
from cxops.scorecard.domain.weights import WeightVersion, effective_on

_TOLERATED = (Status.ON_TARGET, Status.WITHIN_TOLERANCE)


@dataclass(frozen=True, slots=True)
class Period:
    id: str
    start: date
    facts: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class Scorecard:
    name: str
    metrics: tuple[MetricDefinition, ...]
    weights: tuple[WeightVersion, ...]
    periods: tuple[Period, ...]
    action_plans: tuple[ActionPlan, ...] = ()
    #: (leading, lagging) pairs to check beyond those that share a perspective.
    pairs: tuple[tuple[str, str], ...] = ()
    max_lag: int = 3
    alpha: float = 0.05
    min_n: int = 30


@dataclass(frozen=True, slots=True)
class Comparison:
    """A metric's test against another period."""

    period: str
    value: float | None
    check: ChangeCheck


@dataclass(frozen=True, slots=True)
class MetricResult:
    metric: MetricDefinition
    outcome: Outcome
    status: Status
    score: float | None
    weight: float
    change: Comparison | None
    reference: Comparison | None
    verdict: Verdict
    plan: PlanCheck | None


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    period: str
    weights_from: date | None
    composite: Composite


@dataclass(frozen=True, slots=True)
class LeadLagResult:
    leading: str
    lagging: str
    correlation: LeadLag
    #: The best lag correlates at least weakly, in the direction the catalogue implies.
    predictive: bool
    note: str


@dataclass(frozen=True, slots=True)
class Evaluation:
    period: Period
    as_of: date
    weights: WeightVersion
    composite: Composite
    perspectives: Mapping[Perspective, Composite]
    metrics: tuple[MetricResult, ...]
    history: tuple[HistoryPoint, ...]
    lead_lag: tuple[LeadLagResult, ...]
    calibration: tuple[str, ...]


def evaluate_scorecard(scorecard: Scorecard, *, period: str, as_of: date) -> Evaluation:
    """Evaluate ``period`` of ``scorecard``; plans are due or overdue relative to ``as_of``."""
    index = next((i for i, p in enumerate(scorecard.periods) if p.id == period), None)
    if index is None:
        raise ValueError(f"no period {period!r}")
    periods = scorecard.periods[: index + 1]
    current = periods[-1]
    weights = effective_on(scorecard.weights, current.start)
    if weights is None:
        raise ValueError(f"no weights are in force on {current.start.isoformat()}")
    outcomes = {
        metric.id: [evaluate(metric.formula, p.facts) for p in periods]
        for metric in scorecard.metrics
    }
    results = tuple(
        _metric_result(scorecard, metric, periods, outcomes[metric.id], weights, as_of=as_of)
        for metric in scorecard.metrics
    )
    series = {key: [o.value for o in values] for key, values in outcomes.items()}
    lead_lag = _lead_lag(scorecard, series)
    return Evaluation(
        period=current,
        as_of=as_of,
        weights=weights,
        composite=composite_of((r.weight, r.score) for r in results),
        perspectives={
            perspective: composite_of(
                (r.weight, r.score) for r in results if r.metric.perspective is perspective
            )
            for perspective in Perspective
            if any(r.metric.perspective is perspective and r.weight > 0 for r in results)
        },
        metrics=results,
        history=tuple(_history(scorecard, periods, series)),
        lead_lag=lead_lag,
        calibration=tuple(_calibration(scorecard, weights, lead_lag)),
    )


def _metric_result(
    scorecard: Scorecard,
    metric: MetricDefinition,
    periods: Sequence[Period],
    outcomes: Sequence[Outcome],
    weights: WeightVersion,
    *,
    as_of: date,
) -> MetricResult:
    outcome = outcomes[-1]
    status = status_of(metric, outcome.value)
    earlier = [i for i in range(len(periods) - 1) if outcomes[i].value is not None]
    tolerated = [i for i in earlier if status_of(metric, outcomes[i].value) in _TOLERATED]
    change = reference = None
    if outcome.value is not None and earlier:
        change = _compare(scorecard, metric, periods, outcomes, earlier[-1])
        reference_index = tolerated[-1] if tolerated else earlier[-1]
        reference = (
            change
            if reference_index == earlier[-1]
            else _compare(scorecard, metric, periods, outcomes, reference_index)
        )
    verdict = judge(
        metric,
        status=status,
        value=outcome.value,
        reference_value=None if reference is None else reference.value,
        check=None if reference is None else reference.check,
    )
    return MetricResult(
        metric=metric,
        outcome=outcome,
        status=status,
        score=score_of(metric, outcome.value),
        weight=weights.weights.get(metric.id, 0.0),
        change=change,
        reference=reference,
        verdict=verdict,
        plan=required_plan(metric.id, scorecard.action_plans, as_of=as_of)
        if verdict.variance
        else None,
    )


def _compare(
    scorecard: Scorecard,
    metric: MetricDefinition,
    periods: Sequence[Period],
    outcomes: Sequence[Outcome],
    index: int,
) -> Comparison:
    check = compare_periods(
        metric.test,
        periods[index].facts,
        periods[-1].facts,
        alpha=scorecard.alpha,
        min_n=scorecard.min_n,
    )
    return Comparison(period=periods[index].id, value=outcomes[index].value, check=check)


def _history(
    scorecard: Scorecard, periods: Sequence[Period], series: Mapping[str, Sequence[float | None]]
) -> list[HistoryPoint]:
    """Each period's composite under the weights in force then."""
    points = []
    for index, period in enumerate(periods):
        version = effective_on(scorecard.weights, period.start)
        weights = {} if version is None else version.weights
        composite = composite_of(
            (weights.get(metric.id, 0.0), score_of(metric, series[metric.id][index]))
            for metric in scorecard.metrics
        )
        points.append(
            HistoryPoint(
                period=period.id,
                weights_from=None if version is None else version.effective_from,
                composite=composite,
            )
        )
    return points


def _lead_lag(
    scorecard: Scorecard, series: Mapping[str, Sequence[float | None]]
) -> tuple[LeadLagResult, ...]:
    by_id = {metric.id: metric for metric in scorecard.metrics}
    pairs = [
        (leading.id, lagging.id)
        for leading in scorecard.metrics
        for lagging in scorecard.metrics
        if leading.indicator is Indicator.LEADING
        and lagging.indicator is Indicator.LAGGING
        and leading.perspective is lagging.perspective
    ]
    pairs += [pair for pair in scorecard.pairs if pair not in pairs]
    results = []
    for leading, lagging in pairs:
        correlation = lagged_correlation(
            series[leading], series[lagging], max_lag=scorecard.max_lag
        )
        predictive, note = _evidence(
            by_id[leading], by_id[lagging], correlation, alpha=scorecard.alpha
        )
        results.append(LeadLagResult(leading, lagging, correlation, predictive, note))
    return tuple(results)


def _evidence(
    leading: MetricDefinition, lagging: MetricDefinition, found: LeadLag, *, alpha: float
) -> tuple[bool, str]:
    """Whether ``leading`` predicted ``lagging``, and the sentence that says so: the best lag
    must correlate at least weakly, significantly, and in the direction the catalogue implies
    (both get better together if they point the same way, else one rises as the other falls)."""
    best = found.best
    if best is None or best.r is None:
        most = max((c.n for c in found.lags), default=0)
        return False, f"too few periods ({most} paired values): no evidence either way"
    ahead = "in the same period" if best.lag == 0 else f"{best.lag} period(s) ahead"
    figures = f"r = {best.r:.2f}, n = {best.n}, {p_text(best.p_value or 0.0)}"
    if abs(best.r) < WEAK or (best.p_value or 0.0) >= alpha:
        return False, f"no clear evidence that {leading.id} predicts {lagging.id} ({figures})"
    expected = 1 if leading.direction is lagging.direction else -1
    if best.r * expected < 0:
        return False, (
            f"{leading.id} moved with {lagging.id} {ahead}, but in the unexpected direction "
            f"({figures})"
        )
    return True, f"{leading.id} predicted {lagging.id} {ahead} ({figures})"


def _calibration(
    scorecard: Scorecard, weights: WeightVersion, lead_lag: Sequence[LeadLagResult]
) -> list[str]:
    """A note per leading metric for whoever re-weights: never a re-weighting itself."""
    notes = []
    for metric in scorecard.metrics:
        if metric.indicator is not Indicator.LEADING:
            continue
        mine = [result for result in lead_lag if result.leading == metric.id]
        weight = weights.weights.get(metric.id, 0.0)
        evident = [result for result in mine if result.predictive]
        if not mine:
            notes.append(f"{metric.id} (weight {weight:g}): no lagging metric paired with it")
        elif all(result.correlation.too_few_periods for result in mine):
            notes.append(f"{metric.id} (weight {weight:g}): too few periods to judge its weight")
        elif evident:
            named = ", ".join(result.note for result in evident)
            notes.append(f"{metric.id} (weight {weight:g}): evidence for its weight: {named}")
        else:
            notes.append(
                f"{metric.id} (weight {weight:g}): no clear evidence it predicts a lagging metric; "
                "review its weight at the next re-weighting"
            )
    return notes
