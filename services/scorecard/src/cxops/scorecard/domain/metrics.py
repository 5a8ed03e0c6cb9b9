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

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from cxops.stats.scales import (
    ScoreCounts,
    SurveyKind,
    count_answers,
    count_satisfied,
    nps_groups,
)

DECIMAL_PLACES = 2


@dataclass(frozen=True, slots=True)
class MetricValue:
    metric: SurveyKind
    value: float | None
    responses: int


def net_promoter_score(counts: ScoreCounts) -> float | None:
    total = count_answers(SurveyKind.NPS, counts)
    if total == 0:
        return None
    promoters, _, detractors = nps_groups(counts)
    return _rounded(Fraction(100 * (promoters - detractors), total))


def customer_satisfaction(counts: ScoreCounts) -> float | None:
    total = count_answers(SurveyKind.CSAT, counts)
    if total == 0:
        return None
    return _rounded(Fraction(100 * count_satisfied(counts), total))


def customer_effort(counts: ScoreCounts) -> float | None:
    total = count_answers(SurveyKind.CES, counts)
    if total == 0:
        return None
    return _rounded(Fraction(sum(score * n for score, n in counts.items()), total))


_FORMULAS = {
    SurveyKind.NPS: net_promoter_score,
    SurveyKind.CSAT: customer_satisfaction,
    SurveyKind.CES: customer_effort,
}


def compute(metric: SurveyKind, counts: ScoreCounts) -> MetricValue:
    """``metric`` over the answers counted in ``counts``."""
    return MetricValue(
        metric=metric,
        value=_FORMULAS[metric](counts),
        responses=count_answers(metric, counts),
    )


def _rounded(value: Fraction) -> float:
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return float(exact.quantize(Decimal(1).scaleb(-DECIMAL_PLACES), rounding=ROUND_HALF_UP))
