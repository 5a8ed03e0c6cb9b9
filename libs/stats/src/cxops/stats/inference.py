"""Honest error bars: confidence intervals, change tests and sample sizes for survey scores.

Shared by feedback, scorecard and the journey simulation, so that all say the same thing about
the same numbers.

Units: proportions are fractions from 0 to 1 and means are in their own unit; NPS, which is a
difference of two shares, is in NPS points from -100 to 100 (the unit people quote). Callers that
show CSAT in percent convert (see ``cxops.feedback.domain.scores``).

The normal distribution is :class:`statistics.NormalDist`; Student's t is computed here (its CDF
through the regularized incomplete beta function, its quantiles by bisection) so the library
needs no scipy. Changes are two-sided tests; their confidence interval is at level ``1 - alpha``.
"""

import math
from dataclasses import dataclass
from statistics import NormalDist

_NORMAL = NormalDist()
_DEFAULT_POWER = 0.8
_NPS_PSEUDO_ANSWERS = 3


@dataclass(frozen=True, slots=True)
class Interval:
    """A two-sided confidence interval at confidence ``level``."""

    low: float
    high: float
    level: float = 0.95

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    @property
    def width(self) -> float:
        return self.high - self.low


@dataclass(frozen=True, slots=True)
class Change:
    """Whether ``after`` really differs from ``before``: ``difference`` is ``after - before``.

    ``significant`` needs both a p-value under alpha and both samples at least ``min_n``: a
    segment of a dozen answers swings by chance, so it is marked ``too_small`` instead.
    ``minimum_detectable`` is the smallest true difference these sample sizes would detect with
    probability 0.8 at this alpha: a non-significant change smaller than it says "we cannot
    tell", not "nothing changed".
    """

    before: float
    after: float
    difference: float
    interval: Interval
    p_value: float
    significant: bool
    minimum_detectable: float
    too_small: bool
    test: str


# --- distributions -------------------------------------------------------------------------


def normal_quantile(p: float) -> float:
    """The standard normal quantile: ``normal_quantile(0.975)`` is 1.959964."""
    return _NORMAL.inv_cdf(p)


def normal_cdf(z: float) -> float:
    return _NORMAL.cdf(z)


def regularized_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b), by the continued fraction of Numerical Recipes (Lentz's method), used on
    whichever side of the mean it converges fast."""
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"x must be within 0 and 1, not {x}")
    if x in (0.0, 1.0):
        return x
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(x, a, b) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(1.0 - x, b, a) / b


def _beta_fraction(x: float, a: float, b: float) -> float:
    tiny = 1e-300
    c = 1.0
    d = 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 1000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-15:
            return result
    raise ArithmeticError(f"incomplete beta did not converge for x={x}, a={a}, b={b}")


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom (``df`` need not be whole:
    Welch's test gives fractional ones)."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be positive, not {df}")
    squared = t * t
    if squared < df:  # near the centre, where df / (df + t**2) would round to 1
        tail = 0.5 - 0.5 * regularized_beta(squared / (df + squared), 0.5, df / 2.0)
    else:
        tail = 0.5 * regularized_beta(df / (df + squared), df / 2.0, 0.5)
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The t value with ``t_cdf(t, df) == p``: ``t_quantile(0.975, 10)`` is 2.228."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be strictly between 0 and 1, not {p}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, max(1.0, 2.0 * normal_quantile(p))
    while t_cdf(high, df) < p:
        low, high = high, 2.0 * high
    for _ in range(200):
        middle = (low + high) / 2.0
        if t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
        if high - low < 1e-12 * max(1.0, high):
            break
    return (low + high) / 2.0


def _two_sided_p(z: float) -> float:
    return min(1.0, 2.0 * (1.0 - normal_cdf(abs(z))))


# --- intervals -----------------------------------------------------------------------------


def wilson_interval(successes: int, n: int, level: float = 0.95) -> Interval:
    """The Wilson score interval of a proportion: unlike the textbook p +- z*se it never leaves
    0..1 and does not collapse to a point at 0% or 100%. No answers give the whole 0..1."""
    _check_counts(successes, n)
    if n == 0:
        return Interval(0.0, 1.0, level)
    z = normal_quantile(0.5 + level / 2.0)
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1.0 - p) / n + z * z / (4 * n * n)) / denominator
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Interval(low, high, level)


def nps_interval(promoters: int, passives: int, detractors: int, level: float = 0.95) -> Interval:
    """The adjusted Wald interval of NPS with the trinomial variance, in NPS points (-100..100).

    Each answer counts +1 (promoter), 0 or -1 (detractor), so one answer's variance is
    p + d - (p - d)**2, not that of a single proportion. As Rocks (2016, "Interval Estimation for
    the Net Promoter Score", The American Statistician) recommends, three pseudo-answers are
    added first (3/4 promoter, 3/2 passive, 3/4 detractor): the plain Wald interval collapses to
    a point when every answer is alike, and covers too little on small samples. No answers give
    the whole -100..100.
    """
    n = _trinomial_total(promoters, passives, detractors)
    if n == 0:
        return Interval(-100.0, 100.0, level)
    z = normal_quantile(0.5 + level / 2.0)
    adjusted_n = n + _NPS_PSEUDO_ANSWERS
    p = (promoters + _NPS_PSEUDO_ANSWERS / 4) / adjusted_n
    d = (detractors + _NPS_PSEUDO_ANSWERS / 4) / adjusted_n
    half = z * math.sqrt((p + d - (p - d) ** 2) / adjusted_n)
    return Interval(max(-100.0, 100 * (p - d - half)), min(100.0, 100 * (p - d + half)), level)


def mean_interval(mean: float, sd: float, n: int, level: float = 0.95) -> Interval:
    """The t interval of a mean from its sample standard deviation; needs two answers."""
    if n < 2:
        raise ValueError(f"a mean's interval needs at least 2 values, not {n}")
    if sd < 0:
        raise ValueError(f"a standard deviation cannot be negative: {sd}")
    half = t_quantile(0.5 + level / 2.0, n - 1) * sd / math.sqrt(n)
    return Interval(mean - half, mean + half, level)


# --- changes -------------------------------------------------------------------------------


def proportion_change(
    successes_a: int,
    n_a: int,
    successes_b: int,
    n_b: int,
    *,
    alpha: float = 0.05,
    min_n: int = 30,
) -> Change:
    """The two-proportion z test (pooled standard error under "no change"), with the Wald
    interval of ``p_b - p_a`` (unpooled); proportions from 0 to 1."""
    _check_counts(successes_a, n_a)
    _check_counts(successes_b, n_b)
    _check_nonempty(n_a, n_b)
    p_a, p_b = successes_a / n_a, successes_b / n_b
    pooled = (successes_a + successes_b) / (n_a + n_b)
    null_se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_b))
    se = math.sqrt(p_a * (1.0 - p_a) / n_a + p_b * (1.0 - p_b) / n_b)
    return _z_change(
        p_a,
        p_b,
        se=se,
        null_se=null_se,
        n_a=n_a,
        n_b=n_b,
        alpha=alpha,
        min_n=min_n,
        bound=1.0,
        test="two-proportion z",
    )


def nps_change(
    promoters_a: int,
    passives_a: int,
    detractors_a: int,
    promoters_b: int,
    passives_b: int,
    detractors_b: int,
    *,
    alpha: float = 0.05,
    min_n: int = 30,
) -> Change:
    """A z test on the difference of two NPS with the trinomial variance, in NPS points.

    As for two proportions, the p-value and the minimum detectable change use the variance of
    both periods pooled (the "no change" hypothesis), the interval each period's own."""
    n_a = _trinomial_total(promoters_a, passives_a, detractors_a)
    n_b = _trinomial_total(promoters_b, passives_b, detractors_b)
    _check_nonempty(n_a, n_b)
    nps_a = 100 * (promoters_a - detractors_a) / n_a
    nps_b = 100 * (promoters_b - detractors_b) / n_b
    pooled = _trinomial_variance(promoters_a + promoters_b, detractors_a + detractors_b, n_a + n_b)
    null_se = 100 * math.sqrt(pooled * (1.0 / n_a + 1.0 / n_b))
    se = 100 * math.sqrt(
        _trinomial_variance(promoters_a, detractors_a, n_a) / n_a
        + _trinomial_variance(promoters_b, detractors_b, n_b) / n_b
    )
    return _z_change(
        nps_a,
        nps_b,
        se=se,
        null_se=null_se,
        n_a=n_a,
        n_b=n_b,
        alpha=alpha,
        min_n=min_n,
        bound=200.0,
        test="NPS trinomial z",
    )


def mean_change(
    mean_a: float,
    sd_a: float,
    n_a: int,
    mean_b: float,
    sd_b: float,
    n_b: int,
    *,
    alpha: float = 0.05,
    min_n: int = 30,
) -> Change:
    """Welch's t test, which does not assume both samples share a variance, with the
    Welch-Satterthwaite degrees of freedom; needs two values on each side."""
    if n_a < 2 or n_b < 2:
        raise ValueError(f"comparing means needs at least 2 values on each side, not {n_a}, {n_b}")
    if sd_a < 0 or sd_b < 0:
        raise ValueError(f"standard deviations cannot be negative: {sd_a}, {sd_b}")
    difference = mean_b - mean_a
    level = 1.0 - alpha
    too_small = min(n_a, n_b) < min_n
    var_a, var_b = sd_a * sd_a / n_a, sd_b * sd_b / n_b
    se = math.sqrt(var_a + var_b)
    if se == 0.0:
        # Two constant samples: any difference is certain, none is "no change".
        return Change(
            before=mean_a,
            after=mean_b,
            difference=difference,
            interval=Interval(difference, difference, level),
            p_value=1.0 if difference == 0 else 0.0,
            significant=difference != 0 and not too_small,
            minimum_detectable=0.0,
            too_small=too_small,
            test="Welch t",
        )
    df = (var_a + var_b) ** 2 / (var_a**2 / (n_a - 1) + var_b**2 / (n_b - 1))
    critical = t_quantile(1.0 - alpha / 2.0, df)
    p_value = min(1.0, 2.0 * (1.0 - t_cdf(abs(difference) / se, df)))
    return Change(
        before=mean_a,
        after=mean_b,
        difference=difference,
        interval=Interval(difference - critical * se, difference + critical * se, level),
        p_value=p_value,
        significant=p_value < alpha and not too_small,
        minimum_detectable=(critical + t_quantile(_DEFAULT_POWER, df)) * se,
        too_small=too_small,
        test="Welch t",
    )


def _z_change(
    before: float,
    after: float,
    *,
    se: float,
    null_se: float,
    n_a: int,
    n_b: int,
    alpha: float,
    min_n: int,
    bound: float,
    test: str,
) -> Change:
    """A z test's change; its interval is clipped to the differences possible, +-``bound``."""
    difference = after - before
    critical = normal_quantile(1.0 - alpha / 2.0)
    if null_se == 0.0:
        p_value = 1.0  # every answer alike in both samples: no difference to test
    else:
        p_value = _two_sided_p(difference / null_se)
    too_small = min(n_a, n_b) < min_n
    return Change(
        before=before,
        after=after,
        difference=difference,
        interval=Interval(
            max(-bound, difference - critical * se),
            min(bound, difference + critical * se),
            1.0 - alpha,
        ),
        p_value=p_value,
        significant=p_value < alpha and not too_small,
        minimum_detectable=(critical + normal_quantile(_DEFAULT_POWER)) * null_se,
        too_small=too_small,
        test=test,
    )


# --- sample sizes --------------------------------------------------------------------------


def sample_size_proportions(
    p_a: float, p_b: float, *, alpha: float = 0.05, power: float = _DEFAULT_POWER
) -> int:
    """Answers needed in each arm for a two-sided two-proportion z test at ``alpha`` to detect
    ``p_a`` against ``p_b`` (0 to 1) with probability ``power`` (Fleiss, without continuity
    correction)."""
    for p in (p_a, p_b):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"proportions run from 0 to 1, not {p}")
    if p_a == p_b:
        raise ValueError("the two proportions must differ: no sample detects no difference")
    _check_power(alpha, power)
    mean = (p_a + p_b) / 2.0
    needed = (
        normal_quantile(1.0 - alpha / 2.0) * math.sqrt(2.0 * mean * (1.0 - mean))
        + normal_quantile(power) * math.sqrt(p_a * (1.0 - p_a) + p_b * (1.0 - p_b))
    ) ** 2 / (p_a - p_b) ** 2
    return math.ceil(needed - 1e-9)


def sample_size_means(
    difference: float, sd: float, *, alpha: float = 0.05, power: float = _DEFAULT_POWER
) -> int:
    """Values needed in each arm for a two-sided two-sample t test at ``alpha`` to detect a
    true ``difference`` between means with standard deviation ``sd`` with probability
    ``power``. Starts from the normal approximation and repeats with t quantiles at the
    resulting degrees of freedom, which adds the one or two per arm small samples need
    (half a standard deviation needs 64 per arm, not the normal's 63)."""
    if difference == 0:
        raise ValueError("the difference must not be zero: no sample detects no difference")
    if sd <= 0:
        raise ValueError(f"the standard deviation must be positive, not {sd}")
    _check_power(alpha, power)
    effect = (sd / difference) ** 2
    n = math.ceil(
        2.0 * (normal_quantile(1.0 - alpha / 2.0) + normal_quantile(power)) ** 2 * effect - 1e-9
    )
    for _ in range(50):
        df = max(2 * n - 2, 1)
        quantiles = t_quantile(1.0 - alpha / 2.0, df) + t_quantile(power, df)
        following = max(2, math.ceil(2.0 * quantiles**2 * effect - 1e-9))
        if following == n:
            break
        n = following
    return n


def sample_size_nps(
    promoters_a: float,
    detractors_a: float,
    promoters_b: float,
    detractors_b: float,
    *,
    alpha: float = 0.05,
    power: float = _DEFAULT_POWER,
) -> int:
    """Answers needed in each arm for the NPS trinomial z test to tell two populations apart,
    given each one's shares (0 to 1) of promoters and detractors: the trinomial counterpart of
    :func:`sample_size_proportions`."""
    shares = (promoters_a, detractors_a, promoters_b, detractors_b)
    if (
        not all(0.0 <= share <= 1.0 for share in shares)
        or max(promoters_a + detractors_a, promoters_b + detractors_b) > 1.0
    ):
        raise ValueError(f"shares must lie in 0..1 and sum to at most 1 per arm: {shares}")
    difference = (promoters_b - detractors_b) - (promoters_a - detractors_a)
    if difference == 0:
        raise ValueError("the two NPS must differ: no sample detects no difference")
    _check_power(alpha, power)

    def variance(promoters: float, detractors: float) -> float:
        return promoters + detractors - (promoters - detractors) ** 2

    pooled = variance((promoters_a + promoters_b) / 2.0, (detractors_a + detractors_b) / 2.0)
    needed = (
        normal_quantile(1.0 - alpha / 2.0) * math.sqrt(2.0 * pooled)
        + normal_quantile(power)
        * math.sqrt(variance(promoters_a, detractors_a) + variance(promoters_b, detractors_b))
    ) ** 2 / difference**2
    return math.ceil(needed - 1e-9)


# --- checks --------------------------------------------------------------------------------


def _check_counts(successes: int, n: int) -> None:
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, not {successes} of {n}")


def _check_nonempty(n_a: int, n_b: int) -> None:
    if n_a == 0 or n_b == 0:
        raise ValueError(f"a change needs answers on both sides, not {n_a} and {n_b}")


def _check_power(alpha: float, power: float) -> None:
    if not 0.0 < alpha < 1.0 or not 0.0 < power < 1.0:
        raise ValueError(f"alpha and power must be strictly between 0 and 1: {alpha}, {power}")


def _trinomial_total(promoters: int, passives: int, detractors: int) -> int:
    if min(promoters, passives, detractors) < 0:
        raise ValueError(f"counts cannot be negative: {promoters}, {passives}, {detractors}")
    return promoters + passives + detractors


def _trinomial_variance(promoters: int, detractors: int, n: int) -> float:
    """The variance of one answer scored +1, 0 or -1."""
    p, d = promoters / n, detractors / n
    return max(0.0, p + d - (p - d) ** 2)
