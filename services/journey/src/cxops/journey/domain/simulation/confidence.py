"""Confidence intervals on a mean from a few replications, with Student's t.

The t quantile is solved from the exact distribution function for whole degrees of freedom
(Abramowitz and Stegun 26.7.3-4), so any confidence level and replication count work without a
table or scipy.
"""

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Interval:
    mean: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def t_within(t: float, degrees_of_freedom: int) -> float:
    """P(-t <= T <= t) for Student's T with ``degrees_of_freedom`` (t >= 0)."""
    theta = math.atan(t / math.sqrt(degrees_of_freedom))
    cos2 = math.cos(theta) ** 2
    if degrees_of_freedom % 2:
        total, term = 0.0, math.cos(theta)
        for k in range(1, (degrees_of_freedom - 1) // 2 + 1):
            total += term
            term *= cos2 * 2 * k / (2 * k + 1)
        return 2 / math.pi * (theta + math.sin(theta) * total)
    total, term = 0.0, 1.0
    for k in range(1, degrees_of_freedom // 2 + 1):
        total += term
        term *= cos2 * (2 * k - 1) / (2 * k)
    return math.sin(theta) * total


def t_quantile(confidence: float, degrees_of_freedom: int) -> float:
    """The t with ``confidence`` of Student's T between -t and t (two-sided), by bisection."""
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    if degrees_of_freedom < 1:
        raise ValueError("degrees_of_freedom must be at least 1")
    low, high = 0.0, 1.0
    while t_within(high, degrees_of_freedom) < confidence:
        low, high = high, high * 2
    while high - low > 1e-12 * high:
        middle = (low + high) / 2
        if t_within(middle, degrees_of_freedom) < confidence:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """The mean of ``values`` (at least two, e.g. one per replication, or paired differences
    between two variants) with its two-sided t confidence interval."""
    if len(values) < 2:
        raise ValueError("an interval needs at least two values")
    mean = statistics.fmean(values)
    spread = statistics.stdev(values) / math.sqrt(len(values))
    half = t_quantile(confidence, len(values) - 1) * spread
    return Interval(mean, mean - half, mean + half)
