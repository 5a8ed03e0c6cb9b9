"""The shared statistics against values computed elsewhere (tables, textbooks, R, G*Power) and
against the properties any honest interval or test must have."""

import math
import random
from collections.abc import Callable
from statistics import mean, stdev

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cxops.stats.inference import (
    mean_change,
    mean_interval,
    normal_quantile,
    nps_change,
    nps_interval,
    proportion_change,
    regularized_beta,
    sample_size_means,
    sample_size_nps,
    sample_size_proportions,
    t_cdf,
    t_quantile,
    wilson_interval,
)

# --- distributions -------------------------------------------------------------------------


def test_normal_quantile() -> None:
    assert normal_quantile(0.975) == pytest.approx(1.959964, abs=1e-6)
    assert normal_quantile(0.8) == pytest.approx(0.841621, abs=1e-6)


@pytest.mark.parametrize(
    ("p", "df", "table"),
    [
        (0.975, 10, 2.228),
        (0.975, 30, 2.042),
        (0.975, 1, 12.706),
        (0.975, 9, 2.262),
        (0.95, 5, 2.015),
        (0.995, 20, 2.845),
        (0.9, 3, 1.638),
        (0.025, 10, -2.228),
    ],
)
def test_t_quantiles_match_the_table(p: float, df: int, table: float) -> None:
    assert t_quantile(p, df) == pytest.approx(table, abs=5e-4)


def test_t_quantile_tends_to_the_normal() -> None:
    assert t_quantile(0.975, 1e7) == pytest.approx(1.959964, abs=1e-5)


@given(st.floats(-50, 50), st.sampled_from([1, 2]))
def test_t_cdf_matches_closed_forms(t: float, df: int) -> None:
    """With one degree of freedom t is Cauchy; with two its CDF is algebraic."""
    exact = 0.5 + math.atan(t) / math.pi if df == 1 else 0.5 + t / (2 * math.sqrt(2 + t * t))
    assert t_cdf(t, df) == pytest.approx(exact, abs=1e-12)


@given(st.floats(0, 1), st.floats(0.1, 20))
def test_regularized_beta_matches_closed_forms(x: float, a: float) -> None:
    assert regularized_beta(x, a, 1) == pytest.approx(x**a, abs=1e-12)
    assert regularized_beta(x, 1, a) == pytest.approx(1 - (1 - x) ** a, abs=1e-12)


@given(st.floats(0.001, 0.999), st.floats(0.5, 500))
def test_t_quantile_inverts_the_cdf(p: float, df: float) -> None:
    assert t_cdf(t_quantile(p, df), df) == pytest.approx(p, abs=1e-9)


# --- intervals -----------------------------------------------------------------------------


def test_wilson_interval_of_published_examples() -> None:
    """81 of 263 (R: prop.test(81, 263, correct = FALSE)) and 0 of 10 (Wilson's upper 0.2775)."""
    interval = wilson_interval(81, 263)
    assert (interval.low, interval.high) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert interval.level == 0.95
    nothing = wilson_interval(0, 10)
    assert (nothing.low, nothing.high) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(0, 0).width == 1.0


def test_mean_interval_uses_t() -> None:
    interval = mean_interval(5.0, 1.0, 10)
    assert interval.high - 5.0 == pytest.approx(2.262157 / math.sqrt(10), abs=1e-6)
    assert interval.low == pytest.approx(10.0 - interval.high)


def test_nps_interval_is_the_adjusted_wald_with_trinomial_variance() -> None:
    """50 promoters, 30 passives, 20 detractors, computed by hand from Rocks (2016): 103
    answers after 0.75 promoter, 1.5 passive and 0.75 detractor are added."""
    p, d = 50.75 / 103, 20.75 / 103
    half = 1.959964 * math.sqrt((p + d - (p - d) ** 2) / 103)
    interval = nps_interval(50, 30, 20)
    assert interval.low == pytest.approx(100 * (p - d - half), abs=1e-4)
    assert interval.high == pytest.approx(100 * (p - d + half), abs=1e-4)
    assert nps_interval(5, 0, 0).width > 0  # all alike still leaves room for doubt
    assert (nps_interval(0, 0, 0).low, nps_interval(0, 0, 0).high) == (-100.0, 100.0)


counts = st.integers(0, 2000)


@given(counts, counts, st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_wilson_contains_the_estimate_and_narrows_with_n(
    successes: int, failures: int, level: float
) -> None:
    n = successes + failures
    interval = wilson_interval(successes, n, level)
    assert 0.0 <= interval.low <= interval.high <= 1.0
    if n:
        assert interval.contains(successes / n)
        assert wilson_interval(4 * successes, 4 * n, level).width < interval.width
        assert wilson_interval(successes, n, min(0.999, level + 0.005)).width > interval.width


@given(counts, counts, counts)
def test_nps_interval_contains_the_estimate_and_narrows_with_n(
    promoters: int, passives: int, detractors: int
) -> None:
    n = promoters + passives + detractors
    interval = nps_interval(promoters, passives, detractors)
    assert -100.0 <= interval.low <= interval.high <= 100.0
    if n >= 2:
        assert interval.contains(100 * (promoters - detractors) / n)
        wider = nps_interval(4 * promoters, 4 * passives, 4 * detractors)
        assert wider.width <= interval.width


def test_wilson_covers_about_95_percent() -> None:
    """A seeded simulation: 2,000 samples of 60 answers at each of three true rates."""
    rng = random.Random(20260101)
    for rate in (0.1, 0.35, 0.6):
        covered = 0
        for _ in range(2000):
            successes = sum(rng.random() < rate for _ in range(60))
            covered += wilson_interval(successes, 60).contains(rate)
        assert 0.93 <= covered / 2000 <= 0.97


def test_nps_interval_covers_about_95_percent() -> None:
    rng = random.Random(7)
    shares = (0.45, 0.35, 0.2)
    true_nps = 100 * (shares[0] - shares[2])
    covered = 0
    for _ in range(2000):
        groups = rng.choices(range(3), weights=shares, k=80)
        covered += nps_interval(*(groups.count(i) for i in range(3))).contains(true_nps)
    assert 0.93 <= covered / 2000 <= 0.97


# --- changes -------------------------------------------------------------------------------


def test_two_proportion_z_test_of_a_textbook_example() -> None:
    """OpenStax Introductory Statistics, example 10.11: medication A failed for 20 of 200
    patients, B for 12 of 200; pooled proportion 0.08, z = 1.47, p-value 0.1404."""
    moved = proportion_change(20, 200, 12, 200)
    assert moved.test == "two-proportion z"
    assert moved.difference == pytest.approx(-0.04)
    assert moved.p_value == pytest.approx(0.1404, abs=1e-4)
    assert not moved.significant and not moved.too_small
    se = math.sqrt(0.1 * 0.9 / 200 + 0.06 * 0.94 / 200)
    assert moved.interval.low == pytest.approx(-0.04 - 1.959964 * se, abs=1e-6)
    null_se = math.sqrt(0.08 * 0.92 * 2 / 200)
    assert moved.minimum_detectable == pytest.approx((1.959964 + 0.841621) * null_se, abs=1e-6)


def test_welch_t_test_of_a_published_example() -> None:
    """Wikipedia, "Welch's t-test", example 1: p = 0.021 (R's t.test gives 0.02138)."""
    a1 = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
    a2 = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]
    moved = mean_change(mean(a1), stdev(a1), 15, mean(a2), stdev(a2), 15, min_n=10)
    assert moved.test == "Welch t"
    assert moved.p_value == pytest.approx(0.02138, abs=5e-5)
    assert moved.significant
    assert moved.interval.contains(moved.difference) and moved.interval.low > 0
    assert mean_change(mean(a1), stdev(a1), 15, mean(a2), stdev(a2), 15).too_small


def test_nps_change_without_detractors_is_the_proportion_test() -> None:
    """With no detractors NPS is 100 times the promoters' share and the trinomial variance is
    the binomial one, so both tests must agree."""
    nps = nps_change(90, 110, 0, 120, 80, 0)
    share = proportion_change(90, 200, 120, 200)
    assert nps.test == "NPS trinomial z"
    assert nps.p_value == pytest.approx(share.p_value, abs=1e-12)
    assert nps.difference == pytest.approx(100 * share.difference)
    assert nps.minimum_detectable == pytest.approx(100 * share.minimum_detectable)
    assert nps.interval.low == pytest.approx(100 * share.interval.low)


def test_nps_change_by_hand() -> None:
    moved = nps_change(50, 30, 20, 60, 25, 15)
    pooled_p, pooled_d = 110 / 200, 35 / 200
    null_se = math.sqrt((pooled_p + pooled_d - (pooled_p - pooled_d) ** 2) * (2 / 100))
    z = 0.15 / null_se
    assert moved.difference == pytest.approx(15.0)
    assert moved.p_value == pytest.approx(math.erfc(z / math.sqrt(2)), abs=1e-12)


def test_small_samples_are_too_small_not_swings() -> None:
    moved = proportion_change(1, 10, 9, 10)
    assert moved.p_value < 0.05
    assert moved.too_small and not moved.significant


@given(counts, st.integers(1, 2000), counts, st.integers(1, 2000))
def test_proportion_change_properties(s_a: int, n_a: int, s_b: int, n_b: int) -> None:
    s_a, s_b = min(s_a, n_a), min(s_b, n_b)
    there = proportion_change(s_a, n_a, s_b, n_b)
    back = proportion_change(s_b, n_b, s_a, n_a)
    assert 0.0 <= there.p_value <= 1.0
    assert there.p_value == pytest.approx(back.p_value)
    assert there.difference == pytest.approx(-back.difference)
    assert there.interval.low == pytest.approx(-back.interval.high)
    assert there.interval.contains(there.difference)
    assert there.significant == (there.p_value < 0.05 and min(n_a, n_b) >= 30)
    assert there.minimum_detectable >= 0


@given(
    st.floats(1, 7),
    st.floats(0.01, 3),
    st.integers(2, 5000),
    st.floats(1, 7),
    st.floats(0.01, 3),
    st.integers(2, 5000),
)
def test_mean_change_properties(
    m_a: float, sd_a: float, n_a: int, m_b: float, sd_b: float, n_b: int
) -> None:
    there = mean_change(m_a, sd_a, n_a, m_b, sd_b, n_b)
    back = mean_change(m_b, sd_b, n_b, m_a, sd_a, n_a)
    assert 0.0 <= there.p_value <= 1.0
    assert there.p_value == pytest.approx(back.p_value)
    assert there.difference == pytest.approx(-back.difference)
    assert there.interval.contains(there.difference)
    assert there.minimum_detectable > 0


def test_identical_constant_samples_show_no_change() -> None:
    assert proportion_change(0, 50, 0, 50).p_value == 1.0
    assert mean_change(4.0, 0.0, 40, 4.0, 0.0, 40).p_value == 1.0
    assert mean_change(4.0, 0.0, 40, 5.0, 0.0, 40).significant


@pytest.mark.parametrize(
    "call",
    [
        lambda: wilson_interval(5, 4),
        lambda: mean_interval(3.0, 1.0, 1),
        lambda: proportion_change(0, 0, 1, 2),
        lambda: nps_change(1, 0, -1, 1, 1, 1),
        lambda: mean_change(1.0, 1.0, 1, 2.0, 1.0, 5),
        lambda: sample_size_proportions(0.3, 0.3),
        lambda: sample_size_means(0.0, 1.0),
        lambda: sample_size_nps(0.7, 0.4, 0.5, 0.2),
        lambda: t_quantile(1.0, 5),
    ],
)
def test_impossible_input_is_refused(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        call()


# --- sample sizes --------------------------------------------------------------------------


@pytest.mark.parametrize(("effect", "per_arm"), [(0.2, 394), (0.5, 64), (0.8, 26), (1.0, 17)])
def test_sample_size_means_matches_g_power(effect: float, per_arm: int) -> None:
    """G*Power, two-tailed two-sample t test, alpha 0.05, power 0.8."""
    assert sample_size_means(effect * 2.5, 2.5) == per_arm


def test_sample_size_proportions_by_hand() -> None:
    """Fleiss' formula without continuity correction, for 65% against 85%."""
    needed = (
        1.959964 * math.sqrt(2 * 0.75 * 0.25) + 0.841621 * math.sqrt(0.65 * 0.35 + 0.85 * 0.15)
    ) ** 2 / 0.2**2
    assert sample_size_proportions(0.65, 0.85) == math.ceil(needed) == 73
    assert sample_size_nps(0.65, 0.0, 0.85, 0.0) == 73


@given(st.floats(0.05, 0.8), st.floats(0.01, 0.09))
def test_sample_size_shrinks_as_effect_grows_and_grows_with_power(p: float, lift: float) -> None:
    small = sample_size_proportions(p, p + lift)
    assert sample_size_proportions(p, p + 2 * lift) < small
    assert sample_size_proportions(p, p + lift, power=0.9) > small


def test_planned_sample_size_gives_the_planned_power() -> None:
    """Seeded simulation: at the size planned for 40% against 55%, the test detects the change
    in about 80% of experiments."""
    rng = random.Random(11)
    n = sample_size_proportions(0.40, 0.55)
    detected = 0
    for _ in range(600):
        a = sum(rng.random() < 0.40 for _ in range(n))
        b = sum(rng.random() < 0.55 for _ in range(n))
        detected += proportion_change(a, n, b, n).significant
    assert 0.74 <= detected / 600 <= 0.86
