"""Complaint-spike alerts: exact Poisson tails, quiet on steady noise, fast on a step, EWMA on a
ramp, a CUSUM on a sustained rise, cooldown, grouping, minimum count, weekday seasonality, and
``cxops feedback spikes`` with bad input refused by row and column, nothing on stdout."""

import json
import math
import random
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cxops.cli.main import app
from cxops.feedback.domain.alerts import AlertConfig, Detection, Observation, detect
from cxops.feedback.domain.poisson import (
    binomial_upper_tail,
    bonferroni,
    holm,
    poisson_upper_tail,
)

START = date(2026, 1, 5)  # a Monday
DEFAULT = AlertConfig()
#: The CUSUM on its own, without the window test that catches the same rises first.
CUSUM = AlertConfig(window_alpha=None)


def poisson(rng: random.Random, mean: float) -> int:
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def series(
    counts: list[int], topic: str = "delivery", segment: str = "", totals: list[int] | None = None
) -> list[Observation]:
    return [
        Observation(
            START + timedelta(days=day),
            topic,
            count,
            segment=segment,
            total=None if totals is None else totals[day],
        )
        for day, count in enumerate(counts)
    ]


def noise(seed: int, days: int, mean: float) -> list[int]:
    rng = random.Random(seed)
    return [poisson(rng, mean) for _ in range(days)]


def first_alert(found: Detection, topic: str = "delivery") -> tuple[int, str] | None:
    for incident in found.incidents:
        for alert in incident.members:
            if alert.topic == topic:
                return (alert.period - START).days, alert.test
    return None


def test_poisson_tail_matches_exact_values() -> None:
    assert poisson_upper_tail(10, 3) == pytest.approx(0.0011024881301154797, rel=1e-12)
    assert poisson_upper_tail(40, 10) == pytest.approx(7.341636314560471e-13, rel=1e-10)
    assert poisson_upper_tail(1, 2.5) == pytest.approx(1 - math.exp(-2.5), rel=1e-14)
    assert poisson_upper_tail(0, 4) == 1.0
    assert poisson_upper_tail(3, 0) == 0.0
    # Means where exp(-mean) underflows still give a proper tail, near the normal's.
    assert 0 < poisson_upper_tail(1100, 1000) < 0.002
    assert poisson_upper_tail(1000, 1000) == pytest.approx(0.5, abs=0.02)


def test_binomial_tail_matches_exact_values() -> None:
    assert binomial_upper_tail(3, 10, 0.5) == pytest.approx(968 / 1024, rel=1e-14)
    assert binomial_upper_tail(9, 10, 0.5) == pytest.approx(11 / 1024, rel=1e-12)
    assert binomial_upper_tail(5, 5, 1 / 13) == pytest.approx(13.0**-5, rel=1e-12)
    assert binomial_upper_tail(0, 5, 0.3) == 1.0
    assert binomial_upper_tail(6, 5, 0.3) == 0.0
    exact = sum(math.comb(300, k) * 12 ** (300 - k) for k in range(40, 301)) / 13**300
    assert binomial_upper_tail(40, 300, 1 / 13) == pytest.approx(exact, rel=1e-10)


def test_holm_adjusts_step_down() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([]) == []


@given(st.lists(st.floats(min_value=0, max_value=1), max_size=20))
def test_holm_lies_between_raw_and_bonferroni(p_values: list[float]) -> None:
    for raw, stepped, single in zip(p_values, holm(p_values), bonferroni(p_values), strict=True):
        assert raw <= stepped <= single


@given(st.integers(min_value=0, max_value=80), st.floats(min_value=0.01, max_value=60))
def test_poisson_tail_falls_with_the_count(observed: int, mean: float) -> None:
    here, next_one = poisson_upper_tail(observed, mean), poisson_upper_tail(observed + 1, mean)
    assert 0 <= next_one <= here <= 1


@settings(max_examples=20, deadline=None)
@given(st.randoms(use_true_random=False))
def test_row_order_does_not_matter(rng: random.Random) -> None:
    rows = [*series([10] * 60 + [30, 31, 10]), *series([5] * 60 + [20] * 3, "refunds")]
    shuffled = rows[:]
    rng.shuffle(shuffled)
    assert detect(shuffled, DEFAULT) == detect(rows, DEFAULT)


def test_steady_noise_stays_quiet() -> None:
    rng = random.Random(11)
    weekday = (1.4, 1.1, 1.0, 1.0, 0.9, 0.8, 0.6)
    rows = []
    for topic, level in (("delivery", 30), ("refunds", 12), ("billing", 8), ("login", 20)):
        for day in range(1500):
            when = START + timedelta(days=day)
            total = 1000
            count = poisson(rng, level * weekday[when.weekday()])
            rows.append(Observation(when, topic, count, total=total))
    found = detect(rows, DEFAULT)
    assert found.tests > 5500
    # The budget is 1 per 1,000 series-periods, 5.8 here; the tests together are expected to
    # raise about 4, so the count is let run to 8 (a Poisson count of mean 4 exceeds 8 in 2%).
    assert len(found.incidents) <= 8


def test_a_doubling_fires_within_a_few_periods() -> None:
    stepped = noise(3, 70, 15) + noise(4, 30, 30)
    hit = first_alert(detect(series(stepped), DEFAULT))
    assert hit is not None
    assert 70 <= hit[0] <= 73


def test_a_ramp_fires_through_the_ewma() -> None:
    rng = random.Random(5)
    days, total = 160, 2000
    rate = [0.01 if day < 100 else 0.01 * (1 + (day - 100) / 40) for day in range(days)]
    counts = [poisson(rng, r * total) for r in rate]
    found = detect(series(counts, totals=[total] * days), DEFAULT)
    hit = first_alert(found)
    assert hit is not None and hit[1] == "ewma"
    assert 100 < hit[0] < 140
    alert = found.incidents[0].members[0]
    assert alert.statistic is not None and alert.limit is not None
    assert alert.statistic > alert.limit
    assert "EWMA" in alert.reason
    # Without totals there is no rate to watch: the ramp is caught later, if at all.
    late = first_alert(detect(series(counts), DEFAULT))
    assert late is None or late[0] > hit[0]


def test_cooldown_holds_back_repeats_unless_it_escalates() -> None:
    counts = [10] * 60 + [30] * 5 + [60] + [10] * 10
    quiet = detect(series(counts), AlertConfig(cooldown=7))
    days = [(i.period - START).days for i in quiet.incidents]
    assert days == [60, 65]
    assert quiet.incidents[1].members[0].escalated
    assert "escalated" in quiet.incidents[1].reason
    assert quiet.suppressed == 5  # days 61-64 (tail), and 66, whose window still holds the 60
    no_cooldown = detect(series(counts), AlertConfig(cooldown=0))
    assert len(no_cooldown.incidents) > 2


def test_grouping_makes_one_incident_of_related_topics_and_segments() -> None:
    spike = [10] * 60 + [35]
    rows = [
        *series(spike, "delivery"),
        *series(spike, "refunds"),
        *series(spike, "billing"),
        *series(spike, "delivery", segment="app"),
    ]
    grouped = detect(rows, AlertConfig(groups={"fulfilment": ("delivery", "refunds")}))
    by_topic = {i.topic: i for i in grouped.incidents}
    assert set(by_topic) == {"fulfilment", "billing"}
    fulfilment = by_topic["fulfilment"]
    assert fulfilment.topics == ("delivery", "refunds")
    assert fulfilment.segments == ("", "app")
    assert len(fulfilment.members) == 3
    assert fulfilment.observed == 105
    ungrouped = detect(rows, DEFAULT)
    assert sorted(i.topic for i in ungrouped.incidents) == ["billing", "delivery", "refunds"]


def test_minimum_count_keeps_tiny_series_quiet() -> None:
    counts = [0, 0, 1, 0, 0, 0, 0] * 9 + [4]
    assert detect(series(counts), DEFAULT).incidents == ()
    assert len(detect(series(counts), AlertConfig(min_count=3)).incidents) == 1


def test_a_regular_monday_peak_does_not_alert() -> None:
    rng = random.Random(8)
    counts = [poisson(rng, 45 if day % 7 == 0 else 12) for day in range(120)]
    assert detect(series(counts), DEFAULT).incidents == ()
    flat = detect(series(counts), AlertConfig(season=1, baseline=28))
    assert flat.incidents
    first = flat.incidents[0]
    assert first.period.weekday() == 0


def test_reason_names_weekday_correction_and_series() -> None:
    rows = [*series([18] * 57 + [42]), *series([10] * 58, "refunds")]
    (incident,) = detect(rows, DEFAULT).incidents
    assert incident.test == "poisson-tail"
    assert incident.reason.startswith("delivery: 42 complaints vs 18.0 expected for a Tuesday")
    assert "after Holm over 2 series" in incident.reason
    assert incident.p_value < DEFAULT.alpha


def test_window_test_sums_two_periods_against_their_baseline() -> None:
    # Twelve weeks at exactly 10, then 19 and 19: no day is a tail alert (P(X >= 19 | 10) =
    # 0.0072), nor the CUSUM (38 ln 2 - 20 = 6.34 < 6.5), but the two days sum to 38 against 20
    # expected, with 240 complaints in their baselines of twelve periods each: given the 278, the
    # window's share is Binomial(278, 1/13), and P(>= 38) = 0.00043 < 0.0006. The day before,
    # 10 + 19 = 29 of 269 has P = 0.042.
    def tail(observed: int, trials: int) -> float:
        return sum(
            math.comb(trials, k) * 12 ** (trials - k) for k in range(observed, trials + 1)
        ) / (13**trials)

    assert tail(38, 278) == pytest.approx(0.000428101, rel=1e-5)
    assert tail(29, 269) == pytest.approx(0.0420300, rel=1e-5)
    counts = [10] * 84 + [19, 19]
    (incident,) = detect(series(counts), DEFAULT).incidents
    (alert,) = incident.members
    assert (alert.period - START).days == 85
    assert alert.test == incident.test == "poisson-window"
    assert alert.p_value == pytest.approx(tail(38, 278), rel=1e-9)
    assert alert.statistic is None and alert.limit is None
    assert "38 complaints vs 20.0 expected over the last 2 periods" in alert.reason
    assert "19 vs 10.0 for a Tuesday" in alert.reason and "the baseline's 240" in alert.reason
    assert detect(series(counts), AlertConfig(window_alpha=None)).incidents == ()
    # Three periods: 48 of 408, P = 0.0024, over the 0.0006 a period the test may spend.
    assert tail(48, 408) == pytest.approx(0.00237375, rel=1e-5)
    assert detect(series(counts), AlertConfig(window=3)).incidents == ()
    assert detect(series(counts), AlertConfig(window=3, window_alpha=0.003)).incidents
    # A window reaching back before the first tested period is not tested.
    assert detect(series([10] * 42 + [19, 19]), AlertConfig(min_baseline=6)).incidents == ()


def test_window_share_weights_unequal_baselines() -> None:
    # From day 42 a Monday has six Mondays behind it and the Sunday before it only five: the
    # window's share is (mu_sun + mu_mon) / (5 mu_sun + 6 mu_mon + mu_sun + mu_mon), here with
    # means of 10: 20 / 130. The counts 22 and 25 sum to 47 of 47 + 110.
    counts = [10] * 41 + [22, 25]
    config = AlertConfig(min_baseline=5, window_alpha=0.5, alpha=1e-12, cooldown=0)
    found = detect(series(counts), config)
    (monday,) = [a for i in found.incidents for a in i.members if (a.period - START).days == 42]
    assert monday.test == "poisson-window" and "the baseline's 110" in monday.reason
    assert monday.p_value == pytest.approx(binomial_upper_tail(47, 157, 20 / 130), rel=1e-12)


def test_cusum_sums_the_likelihood_ratio_of_a_rise() -> None:
    # Twelve weeks at exactly 10, then 16, 18, 20, 20, 20: no day is a tail alert (20 vs 10 is
    # p = 0.0035), but the CUSUM for a doubling adds x ln 2 - 10 a day: 1.09, then 3.57, then
    # 7.43 >= 6.5 on the third day of the rise, 54 complaints against 30 expected.
    counts = [10] * 84 + [16, 18, 20, 20, 20]
    found = detect(series(counts), CUSUM)
    (incident,) = found.incidents
    (alert,) = incident.members
    assert (alert.period - START).days == 86
    assert alert.test == incident.test == "poisson-cusum"
    assert alert.p_value is None and incident.p_value is None
    assert alert.statistic == pytest.approx(54 * math.log(2) - 30)
    assert alert.limit == DEFAULT.cusum_threshold == 6.5
    assert "54 complaints vs 30.0 expected over the last 3 periods" in alert.reason
    assert "20 vs 10.0 for a Wednesday" in alert.reason
    assert detect(series(counts), replace(CUSUM, cusum_threshold=None)).incidents == ()
    # It restarts from zero after its alert: two more days of 20 (3.86 each) to alert again.
    again = detect(series(counts), AlertConfig(cooldown=0, window_alpha=None))
    assert [(i.period - START).days for i in again.incidents] == [86, 88]
    assert again.incidents[1].members[0].statistic == pytest.approx(40 * math.log(2) - 20)
    # Within a cooldown that second alert is held back like any other test's.
    assert found.suppressed == 1


def test_cusum_keeps_min_count_and_grouping() -> None:
    # At 2 a day, 4 a day adds 4 ln 2 - 2 = 0.77 a day: past 6.5 on the ninth day of the rise,
    # with only 4 complaints that day, under the minimum count of 5.
    low = [2] * 84 + [4] * 9
    assert detect(series(low), CUSUM).incidents == ()
    (incident,) = detect(series(low), AlertConfig(min_count=4, window_alpha=None)).incidents
    assert (incident.period - START).days == 92 and incident.test == "poisson-cusum"
    # The evidence is kept, so the first day with enough complaints alerts.
    (late,) = detect(series([*low, 5]), CUSUM).incidents
    assert (late.period - START).days == 93 and late.test == "poisson-cusum"
    # Two segments of a topic rising together are one incident.
    rise = [10] * 84 + [16, 18, 20]
    rows = [*series(rise, segment="app"), *series(rise, segment="web")]
    (together,) = detect(rows, CUSUM).incidents
    assert together.segments == ("app", "web") and len(together.members) == 2
    assert together.test == "poisson-cusum" and together.p_value is None


def seasonal_counts(rng: random.Random, days: int, rise_from: int | None = None) -> list[int]:
    """Daily Poisson counts around 12 a day with the weekday pattern of ``bench/alerts.py``,
    at 2.2 times that for four days from ``rise_from``."""
    weekday = (1.4, 1.1, 1.0, 1.0, 0.95, 0.85, 0.6)
    counts = []
    for day in range(days):
        rising = rise_from is not None and rise_from <= day < rise_from + 4
        mean = 12 * weekday[(START + timedelta(days=day)).weekday()] * (2.2 if rising else 1)
        counts.append(poisson(rng, mean))
    return counts


def test_a_sustained_rise_is_caught_within_two_periods() -> None:
    rng = random.Random(21)
    trials = []
    for _ in range(150):
        start = 91 + rng.randrange(28)
        trials.append((start, seasonal_counts(rng, start + 14, rise_from=start)))

    def delays(config: AlertConfig) -> list[int]:
        found = []
        for start, counts in trials:
            hits = [
                (i.period - START).days - start for i in detect(series(counts), config).incidents
            ]
            found.append(min((d for d in hits if d >= 0), default=14))
        return found

    found = delays(DEFAULT)
    tail_alone = delays(AlertConfig(cusum_threshold=None, window_alpha=None))
    cusum_alone = delays(CUSUM)
    # Delay 0 is the first day of the rise: "within two periods" is a delay of 0 or 1. No test
    # within the false-alarm budget catches it always: at 12 a day the two days of a rise that
    # starts on a Saturday sum to 38 on average, and to 24 or less one time in 100, while a
    # steady weekend's 17.4 reach 25 one time in 20. Even with known means the best possible
    # test, the sum of the two periods at 0.0006 a period, catches it about 92% of the time
    # (``bench/alerts.py`` prints that bound); these trials measure 87%.
    within_two = sum(d <= 1 for d in found)
    assert within_two >= 0.85 * len(trials)
    assert within_two >= sum(d <= 1 for d in tail_alone) + 0.05 * len(trials)
    assert within_two >= sum(d <= 1 for d in cusum_alone)
    assert sum(d < 4 for d in found) >= 0.95 * len(trials)


def test_steady_seasonal_noise_stays_within_the_false_alarm_budget() -> None:
    rng = random.Random(22)
    rows = [
        row
        for topic in range(20)
        for row in series(seasonal_counts(rng, 1000), topic=f"topic {topic}")
    ]
    found = detect(rows, DEFAULT)
    alerts = sum(len(incident.members) for incident in found.incidents)
    assert found.tests > 18_000
    assert alerts <= found.tests / 1000  # at most 1 false alarm per 1,000 topic-periods


def test_too_little_history_is_counted_not_tested() -> None:
    found = detect(series([100] * 20), DEFAULT)
    assert found.incidents == ()
    assert found.tests == 0 and found.untested == 20


# The command.


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["feedback", "spikes", *args])


def flat(text: str) -> str:
    return " ".join(text.replace("│", " ").split())


def write_counts(path: Path, header: str, lines: list[str]) -> Path:
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


@pytest.fixture
def counts_csv(tmp_path: Path) -> Path:
    lines = []
    for day in range(70):
        when = START + timedelta(days=day)
        spike = day == 66
        lines.append(f"{when},delivery,web,{40 if spike else 15},1000")
        lines.append(f"{when},refunds,web,{30 if spike else 10},1000")
        lines.append(f"{when},billing,web,12,1000")
    return write_counts(tmp_path / "counts.csv", "period,topic,segment,count,total", lines)


def test_command_prints_alerts_as_json(counts_csv: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"groups": {"fulfilment": ["delivery", "refunds"]}}))
    result = invoke(str(counts_csv), "--config", str(config), "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["summary"]["series"] == 3 and out["summary"]["periods"] == 70
    (alert,) = out["alerts"]
    assert alert["topic"] == "fulfilment" and alert["topics"] == ["delivery", "refunds"]
    assert alert["period"] == "2026-03-12" and alert["test"] == "poisson-tail"
    assert alert["p_value"] < 0.001 and "Thursday" in alert["reason"]
    member = alert["members"][0]
    assert set(member) >= {"observed", "expected", "test", "p_value", "segment", "reason"}
    plain = invoke(str(counts_csv))
    assert plain.exit_code == 0 and "2 alerts over 70 periods" in plain.stdout  # no groups


def test_command_reports_the_cusum_and_takes_its_settings(tmp_path: Path) -> None:
    counts = [10] * 84 + [16, 18, 20]
    lines = [f"{START + timedelta(days=day)},delivery,{count}" for day, count in enumerate(counts)]
    path = write_counts(tmp_path / "rise.csv", "period,topic,count", lines)
    # By default the window test sees the last two days first (38 vs 20).
    result = invoke(str(path), "--json")
    assert result.exit_code == 0, result.output
    (alert,) = json.loads(result.stdout)["alerts"]
    assert alert["test"] == "poisson-window" and alert["p_value"] < 0.0006
    result = invoke(str(path), "--json", "--window-alpha", "0.0001")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    (alert,) = out["alerts"]
    assert alert["test"] == "poisson-cusum" and alert["p_value"] is None
    assert alert["members"][0]["limit"] == 6.5
    assert out["settings"]["cusum_shift"] == 2.0
    assert out["settings"]["window_alpha"] == 0.0001 and out["settings"]["window"] == 2
    stricter = invoke(str(path), "--json", "--cusum-threshold", "8", "--window-alpha", "0.0001")
    assert stricter.exit_code == 0 and json.loads(stricter.stdout)["alerts"] == []
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"cusum_threshold": None, "window_alpha": None}))
    assert json.loads(invoke(str(path), "--json", "--config", str(config)).stdout)["alerts"] == []
    result = invoke(str(path), "--cusum-shift", "1")
    assert result.exit_code == 2 and "cusum_shift" in flat(result.stderr)
    result = invoke(str(path), "--window", "1")
    assert result.exit_code == 2 and "window" in flat(result.stderr)
    three = invoke(str(path), "--json", "--window", "3", "--window-alpha", "0.01")
    assert json.loads(three.stdout)["alerts"][0]["test"] == "poisson-window"


@pytest.mark.parametrize(
    ("header", "line", "expected"),
    [
        ("period,topic,count,colour", "2026-01-05,delivery,3,red", "unknown column 'colour'"),
        ("period,topic", "2026-01-05,delivery", "missing column 'count'"),
        ("period,topic,count", "2026-01-05,delivery,-3", "row 3, column 'count'"),
        ("period,topic,count", "2026-01-05,delivery,2.5", "row 3, column 'count'"),
        ("period,topic,count", "5 Jan 2026,delivery,2", "row 3, column 'period'"),
        ("period,topic,count", "2026-01-05,,2", "row 3, column 'topic'"),
        ("period,topic,count", "2026-01-05,delivery,2,9", "row 3"),
        ("period,topic,count,total", "2026-01-05,delivery,2,x", "row 3, column 'total'"),
        ("period,topic,count,total", "2026-01-05,delivery,9,3", "row 3, column 'count'"),
        ("period,topic,count", "2026-01-04,delivery,2", "row 3, column 'period': a second"),
    ],
)
def test_bad_input_names_row_and_column(
    tmp_path: Path, header: str, line: str, expected: str
) -> None:
    first = "2026-01-04,delivery,1" + (",5" if header.endswith("total") else "")
    first = first if header.count(",") >= 2 else "2026-01-04,delivery"
    path = write_counts(tmp_path / "bad.csv", header, [first, line])
    result = invoke(str(path), "--json")
    assert result.exit_code == 2
    assert expected in flat(result.stderr)
    assert result.stdout == ""


def test_bad_config_and_weekly_grid(tmp_path: Path) -> None:
    path = write_counts(tmp_path / "c.csv", "period,topic,count", ["2026-01-05,delivery,1"])
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"alpah": 0.01}))
    result = invoke(str(path), "--config", str(config))
    assert result.exit_code == 2 and "alpah" in flat(result.stderr) and result.stdout == ""
    config.write_text(json.dumps({"alpha": 2}))
    result = invoke(str(path), "--config", str(config))
    assert result.exit_code == 2 and "alpha" in flat(result.stderr)
    weekly = write_counts(
        tmp_path / "w.csv", "period,topic,count", ["2026-01-05,delivery,1", "2026-01-13,a,2"]
    )
    result = invoke(str(weekly), "--period-days", "7", "--season", "1")
    assert result.exit_code == 2 and "row 3, column 'period'" in flat(result.stderr)
