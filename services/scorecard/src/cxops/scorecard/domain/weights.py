"""Versioned weights: a re-weighting starts on its effective date and never rewrites history.

A period is weighed with the version in force on its first day, so the composite of a past
period is the one it had when it was reported, whatever was decided since.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

#: How far a version's weights may sum away from 1 (rounding in a hand-written file).
SUM_TOLERANCE = 1e-6


@dataclass(frozen=True, slots=True)
class WeightVersion:
    effective_from: date
    weights: Mapping[str, float]


def effective_on(versions: Sequence[WeightVersion], day: date) -> WeightVersion | None:
    """The version in force on ``day``: the latest that started on or before it."""
    in_force = [version for version in versions if version.effective_from <= day]
    return max(in_force, key=lambda version: version.effective_from, default=None)


def sums_to_one(weights: Mapping[str, float]) -> bool:
    return abs(sum(weights.values()) - 1) <= SUM_TOLERANCE
