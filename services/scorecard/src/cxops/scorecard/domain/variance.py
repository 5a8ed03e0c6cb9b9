"""When a metric outside tolerance is a variance: only when its move is statistically real.

A month's first-contact resolution over twelve calls swings by chance; chasing it wastes an
owner's time and teaches people to ignore the scorecard. So a metric outside its tolerance is a
variance only if the test that fits it (two proportions, two means, two NPS; see
:mod:`cxops.stats.inference`) finds the move from its reference period significant, on samples
large enough to trust, and in the worse direction. A metric with no sample behind it (``none``)
is judged on tolerance alone, and says so.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from cxops.scorecard.domain.catalogue import (
    ChangeTest,
    MeanTest,
    MetricDefinition,
    NoTest,
    NpsTest,
    ProportionTest,
)
from cxops.scorecard.domain.composite import Status
from cxops.stats.inference import Change, mean_change, nps_change, proportion_change

NOT_REAL = "outside tolerance but not statistically real"


@dataclass(frozen=True, slots=True)
class ChangeCheck:
    """The test of one period against another, or why it could not be run."""

    change: Change | None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    variance: bool
    note: str | None


def compare_periods(
    test: ChangeTest,
    before: Mapping[str, float],
    after: Mapping[str, float],
    *,
    alpha: float,
    min_n: int,
) -> ChangeCheck:
    """Run the metric's test on the facts of two periods."""
    try:
        match test:
            case ProportionTest(successes=successes, trials=trials):
                change = proportion_change(
                    _count(before, successes),
                    _count(before, trials),
                    _count(after, successes),
                    _count(after, trials),
                    alpha=alpha,
                    min_n=min_n,
                )
            case MeanTest(mean=mean, sd=sd, n=n):
                change = mean_change(
                    _number(before, mean),
                    _number(before, sd),
                    _count(before, n),
                    _number(after, mean),
                    _number(after, sd),
                    _count(after, n),
                    alpha=alpha,
                    min_n=min_n,
                )
            case NpsTest(promoters=promoters, passives=passives, detractors=detractors):
                counts = (promoters, passives, detractors)
                change = nps_change(
                    *(_count(before, fact) for fact in counts),
                    *(_count(after, fact) for fact in counts),
                    alpha=alpha,
                    min_n=min_n,
                )
            case _:
                return ChangeCheck(None, "no statistical test for this metric")
    except ValueError as exc:
        return ChangeCheck(None, str(exc))
    return ChangeCheck(change)


def judge(
    metric: MetricDefinition,
    *,
    status: Status,
    value: float | None,
    reference_value: float | None,
    check: ChangeCheck | None,
) -> Verdict:
    """Whether ``metric`` at ``value`` is a variance, given the test against its reference
    period (``check`` is ``None`` when there is no earlier period with a value)."""
    if status is not Status.OUTSIDE_TOLERANCE or value is None:
        return Verdict(variance=False, note=None)
    if isinstance(metric.test, NoTest):
        return Verdict(True, "no statistical test for this metric: judged on tolerance alone")
    if check is None or reference_value is None:
        return Verdict(False, f"{NOT_REAL}: no earlier period to test against")
    change = check.change
    if change is None:
        return Verdict(False, f"{NOT_REAL}: cannot test ({check.reason})")
    if change.too_small:
        return Verdict(False, f"{NOT_REAL}: sample too small to tell")
    if not change.significant:
        return Verdict(False, f"{NOT_REAL}: {p_text(change.p_value)}, could be chance")
    if metric.shortfall(value) <= metric.shortfall(reference_value):
        return Verdict(False, f"{NOT_REAL} as a decline: it improved significantly")
    return Verdict(True, f"statistically real decline ({change.test}, {p_text(change.p_value)})")


def p_text(p_value: float) -> str:
    return "p < 0.001" if p_value < 0.001 else f"p = {p_value:.3f}"


def _number(facts: Mapping[str, float], name: str) -> float:
    if name not in facts:
        raise ValueError(f"fact {name!r} is not recorded")
    return facts[name]


def _count(facts: Mapping[str, float], name: str) -> int:
    number = _number(facts, name)
    if number < 0 or number != int(number):
        raise ValueError(f"fact {name!r} is {number:g}, not a count")
    return int(number)
