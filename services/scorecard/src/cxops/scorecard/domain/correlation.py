"""How well a leading indicator predicted a lagging one: Pearson correlation at lags.

At lag ``k`` the leading metric of period ``t`` is paired with the lagging metric of period
``t + k``, over the periods where both have a value. The best lag is the one of the strongest
correlation among those with enough pairs; fewer than :data:`MIN_PAIRS` pairs are flagged as too
few periods, because a handful of points correlates strongly by chance. The p-value is Fisher's
z approximation. This is evidence for a person calibrating weights, not a re-weighting.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

from cxops.stats.inference import normal_cdf

MIN_PAIRS = 6
#: Below this |r| the correlation is too weak to count as evidence.
WEAK = 0.3


@dataclass(frozen=True, slots=True)
class LagCorrelation:
    lag: int
    n: int
    r: float | None
    p_value: float | None


@dataclass(frozen=True, slots=True)
class LeadLag:
    lags: tuple[LagCorrelation, ...]
    best: LagCorrelation | None

    @property
    def too_few_periods(self) -> bool:
        return self.best is None


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson's r, or ``None`` for fewer than 3 pairs or a series that never moves."""
    n = len(xs)
    if n < 3:
        return None
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    dx = [x - mean_x for x in xs]
    dy = [y - mean_y for y in ys]
    sxx, syy = sum(d * d for d in dx), sum(d * d for d in dy)
    if sxx == 0 or syy == 0:
        return None
    r = sum(a * b for a, b in zip(dx, dy, strict=True)) / math.sqrt(sxx * syy)
    return max(-1.0, min(1.0, r))


def lagged_correlation(
    leading: Sequence[float | None], lagging: Sequence[float | None], *, max_lag: int
) -> LeadLag:
    """Correlations of two period-aligned series at lags 0 to ``max_lag``."""
    lags = []
    for lag in range(max_lag + 1):
        pairs = [
            (x, y)
            for x, y in zip(leading[: len(leading) - lag], lagging[lag:], strict=True)
            if x is not None and y is not None
        ]
        xs, ys = [x for x, _ in pairs], [y for _, y in pairs]
        r = pearson(xs, ys)
        lags.append(LagCorrelation(lag=lag, n=len(pairs), r=r, p_value=_p_value(r, len(pairs))))
    candidates = [c for c in lags if c.r is not None and c.n >= MIN_PAIRS]
    best = max(candidates, key=lambda c: abs(c.r or 0.0), default=None)
    return LeadLag(lags=tuple(lags), best=best)


def _p_value(r: float | None, n: int) -> float | None:
    if r is None or n < 4:
        return None
    if abs(r) == 1:
        return 0.0
    z = math.atanh(r) * math.sqrt(n - 3)
    return min(1.0, 2 * (1 - normal_cdf(abs(z))))
