"""Exact Poisson tails and the multiple-testing corrections that go with them.

A complaint count is a Poisson count, so "is today's count surprising?" is the upper tail
P(X >= observed | mean). It is summed term by term from log-probabilities (``math.lgamma``)
rather than taken as ``1 - cdf``: the alerting tail is around 1e-6, where ``1 - cdf`` would keep
only a digit or two, and ``exp(-mean)`` alone would underflow for means above about 745.
"""

import math
from collections.abc import Sequence


def poisson_upper_tail(observed: int, mean: float) -> float:
    """P(X >= observed) for X ~ Poisson(mean)."""
    if observed <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    if observed <= mean:
        # The tail is at least about one half here: 1 - P(X < observed) loses nothing.
        below = sum(_pmf(i, mean) for i in range(observed))
        return max(0.0, 1.0 - below)
    # Above the mean the terms fall geometrically: sum upward until they no longer count.
    term = _pmf(observed, mean)
    total = 0.0
    i = observed
    while True:
        total += term
        i += 1
        term *= mean / i
        if term <= total * 1e-17:
            return total


def binomial_upper_tail(observed: int, trials: int, p: float) -> float:
    """P(X >= observed) for X ~ Binomial(trials, p), summed from log-probabilities like the
    Poisson tail."""
    if observed <= 0:
        return 1.0
    if observed > trials or p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    if observed <= trials * p:
        below = sum(_binomial_pmf(i, trials, p) for i in range(observed))
        return max(0.0, 1.0 - below)
    # Above the mean each term is the last times (n - i) p / ((i + 1) (1 - p)), falling.
    term = _binomial_pmf(observed, trials, p)
    total = 0.0
    odds = p / (1 - p)
    for i in range(observed, trials + 1):
        total += term
        term *= (trials - i) / (i + 1) * odds
        if term <= total * 1e-17:
            break
    return total


def _binomial_pmf(k: int, n: int, p: float) -> float:
    log_choose = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
    return math.exp(log_choose + k * math.log(p) + (n - k) * math.log1p(-p))


def _pmf(k: int, mean: float) -> float:
    return math.exp(k * math.log(mean) - mean - math.lgamma(k + 1))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input's order: the family-wise error stays
    below alpha like Bonferroni's, but every hypothesis after the first is tested less harshly."""
    m = len(p_values)
    adjusted = [1.0] * m
    running = 0.0
    for rank, index in enumerate(sorted(range(m), key=p_values.__getitem__)):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def bonferroni(p_values: Sequence[float]) -> list[float]:
    """Each p-value times the number tested (at most 1)."""
    return [min(1.0, len(p_values) * p) for p in p_values]


def normal_upper_tail(z: float) -> float:
    """P(Z >= z) for a standard normal, accurate far into the tail (``erfc``, not ``1 - cdf``)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))
