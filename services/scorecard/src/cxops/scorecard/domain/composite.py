"""Each metric's status and score against its target, and the weighted composite.

The score puts metrics of different units on one scale: 100 on target or beyond it, 0 at the
edge of the tolerance band (and anywhere outside it), linear in between. A metric with no
tolerance scores 100 on target and 0 otherwise. The composite is the weighted mean of the scores
of the metrics that have a value; the share of the weight they carry is its ``coverage``, so a
composite over missing data says so instead of silently counting the gap as 0 or 100.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from cxops.scorecard.domain.catalogue import MetricDefinition


class Status(StrEnum):
    ON_TARGET = "on_target"
    WITHIN_TOLERANCE = "within_tolerance"
    OUTSIDE_TOLERANCE = "outside_tolerance"
    NO_DATA = "no_data"


def status_of(metric: MetricDefinition, value: float | None) -> Status:
    if value is None:
        return Status.NO_DATA
    shortfall = metric.shortfall(value)
    if shortfall <= 0:
        return Status.ON_TARGET
    if shortfall <= metric.band:
        return Status.WITHIN_TOLERANCE
    return Status.OUTSIDE_TOLERANCE


def score_of(metric: MetricDefinition, value: float | None) -> float | None:
    """0 to 100: how much of the way from the tolerance edge to the target ``value`` is."""
    if value is None:
        return None
    shortfall = metric.shortfall(value)
    if shortfall <= 0:
        return 100.0
    if metric.band == 0:
        return 0.0
    return max(0.0, 100 * (1 - shortfall / metric.band))


@dataclass(frozen=True, slots=True)
class Composite:
    value: float | None
    coverage: float


def composite_of(weighted_scores: Iterable[tuple[float, float | None]]) -> Composite:
    """The weighted mean of the scores present, over ``(weight, score)`` pairs."""
    pairs = [(weight, score) for weight, score in weighted_scores if weight > 0]
    total = sum(weight for weight, _ in pairs)
    present = [(weight, score) for weight, score in pairs if score is not None]
    covered = sum(weight for weight, _ in present)
    if covered == 0:
        return Composite(value=None, coverage=0.0)
    value = sum(weight * score for weight, score in present) / covered
    return Composite(value=value, coverage=covered / total)
