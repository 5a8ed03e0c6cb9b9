"""The arithmetic of the survey metrics, from how many answers each score received.

* NPS (0-10): the percentage of promoters (9-10) minus the percentage of detractors (0-6),
  from -100 to 100.
* CSAT (1-5): the percentage of satisfied answers (4 and 5), from 0 to 100.
* CES (1-7): the mean score.

Every metric of no answers is ``None``, not zero: "nobody answered" and "everybody was neutral"
are different facts. Values are exact fractions rounded once, half away from zero, to
:data:`DECIMAL_PLACES` places, so the same counts always give the same figure whatever their
order or scale.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from fractions import Fraction


class Metric(StrEnum):
    NPS = "nps"
    CSAT = "csat"
    CES = "ces"


@dataclass(frozen=True, slots=True)
class Scale:
    """An inclusive range of whole-number scores."""

    lowest: int
    highest: int

    def contains(self, score: int) -> bool:
        return self.lowest <= score <= self.highest


SCALES: Mapping[Metric, Scale] = {
    Metric.NPS: Scale(0, 10),
    Metric.CSAT: Scale(1, 5),
    Metric.CES: Scale(1, 7),
}

PROMOTER_FLOOR = 9
DETRACTOR_CEILING = 6
SATISFIED_FLOOR = 4
DECIMAL_PLACES = 2

ScoreCounts = Mapping[int, int]
"""How many answers gave each score: ``{10: 3, 7: 1}`` is three 10s and one 7."""


@dataclass(frozen=True, slots=True)
class MetricValue:
    metric: Metric
    value: float | None
    responses: int


def net_promoter_score(counts: ScoreCounts) -> float | None:
    total = _checked_total(Metric.NPS, counts)
    if total == 0:
        return None
    promoters = sum(n for score, n in counts.items() if score >= PROMOTER_FLOOR)
    detractors = sum(n for score, n in counts.items() if score <= DETRACTOR_CEILING)
    return _rounded(Fraction(100 * (promoters - detractors), total))


def customer_satisfaction(counts: ScoreCounts) -> float | None:
    total = _checked_total(Metric.CSAT, counts)
    if total == 0:
        return None
    satisfied = sum(n for score, n in counts.items() if score >= SATISFIED_FLOOR)
    return _rounded(Fraction(100 * satisfied, total))


def customer_effort(counts: ScoreCounts) -> float | None:
    total = _checked_total(Metric.CES, counts)
    if total == 0:
        return None
    return _rounded(Fraction(sum(score * n for score, n in counts.items()), total))


_FORMULAS = {
    Metric.NPS: net_promoter_score,
    Metric.CSAT: customer_satisfaction,
    Metric.CES: customer_effort,
}


def compute(metric: Metric, counts: ScoreCounts) -> MetricValue:
    """``metric`` over the answers counted in ``counts``."""
    return MetricValue(
        metric=metric,
        value=_FORMULAS[metric](counts),
        responses=_checked_total(metric, counts),
    )


def _checked_total(metric: Metric, counts: ScoreCounts) -> int:
    """The number of answers, refusing counts that cannot come from this metric's survey."""
    scale = SCALES[metric]
    for score, n in counts.items():
        if not scale.contains(score):
            raise ValueError(
                f"{metric.value} scores run from {scale.lowest} to {scale.highest}, not {score}"
            )
        if n < 0:
            raise ValueError(f"negative count {n} for score {score}")
    return sum(counts.values())


def _rounded(value: Fraction) -> float:
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return float(exact.quantize(Decimal(1).scaleb(-DECIMAL_PLACES), rounding=ROUND_HALF_UP))
