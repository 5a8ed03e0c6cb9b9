"""NPS, CSAT and CES with their intervals and changes, per segment and period, and the
``cxops feedback score`` and ``experiment`` commands: the JSON contract, and bad input refused
with the row and column named, exit code 2 and nothing on stdout."""

import json
import math
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from cxops.cli.main import app
from cxops.feedback.domain.scores import Answer, change, needed_per_arm, score, series
from cxops.scorecard.domain.metrics import compute
from cxops.stats.inference import mean_interval, nps_change, proportion_change, wilson_interval
from cxops.stats.scales import SurveyKind

NPS, CSAT, CES = SurveyKind.NPS, SurveyKind.CSAT, SurveyKind.CES


def answers_of(kind: SurveyKind) -> st.SearchStrategy[dict[int, int]]:
    low, high = {NPS: (0, 10), CSAT: (1, 5), CES: (1, 7)}[kind]
    return st.dictionaries(st.integers(low, high), st.integers(1, 300), min_size=1)


@pytest.mark.parametrize("kind", [NPS, CSAT, CES])
@given(data=st.data())
def test_values_agree_with_the_scorecard(kind: SurveyKind, data: st.DataObject) -> None:
    counts = data.draw(answers_of(kind))
    scored = score(kind, counts)
    expected = compute(kind, counts)
    assert scored.n == expected.responses
    # The scorecard shows two decimals: the exact value is within half a hundredth of it.
    assert scored.value == pytest.approx(expected.value, abs=0.005 + 1e-9)
    assert scored.interval.level == 0.95
    if scored.n >= 2:
        assert scored.interval.contains(scored.value)


def test_csat_is_the_wilson_interval_in_percent() -> None:
    scored = score(CSAT, {5: 50, 4: 31, 3: 100, 1: 82})
    wilson = wilson_interval(81, 263)
    assert scored.value == pytest.approx(100 * 81 / 263)
    assert (scored.interval.low, scored.interval.high) == pytest.approx(
        (100 * wilson.low, 100 * wilson.high)
    )


def test_ces_is_the_t_interval_kept_on_the_scale() -> None:
    counts = {7: 3, 6: 2, 2: 1}
    values = [7, 7, 7, 6, 6, 2]
    mean = sum(values) / 6
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / 5)
    t = mean_interval(mean, sd, 6)
    scored = score(CES, counts)
    assert scored.value == pytest.approx(mean)
    assert scored.interval.low == pytest.approx(t.low)
    assert scored.interval.high == 7.0 < t.high
    single = score(CES, {4: 1})
    assert (single.value, single.interval.low, single.interval.high) == (4.0, 1.0, 7.0)


def test_nps_of_counts() -> None:
    scored = score(NPS, {10: 30, 9: 20, 8: 20, 7: 10, 3: 20})
    assert scored.value == pytest.approx(30.0)
    assert scored.n == 100


def test_changes_use_the_test_that_fits() -> None:
    before, after = {10: 50, 7: 30, 2: 20}, {9: 60, 8: 25, 0: 15}
    assert change(NPS, before, after) == nps_change(50, 30, 20, 60, 25, 15)
    csat = change(CSAT, {5: 20, 2: 180}, {4: 12, 1: 188})
    share = proportion_change(20, 200, 12, 200)
    assert csat.test == "two-proportion z"
    assert csat.difference == pytest.approx(-4.0)
    assert csat.p_value == share.p_value
    assert csat.minimum_detectable == pytest.approx(100 * share.minimum_detectable)
    assert csat.interval.high == pytest.approx(100 * share.interval.high)
    ces = change(CES, {2: 20, 3: 20}, {5: 20, 6: 20})
    assert ces.test == "Welch t" and ces.significant and ces.difference == 3.0


def test_a_single_ces_answer_is_too_small_not_a_swing() -> None:
    moved = change(CES, {1: 1}, {7: 40, 6: 10})
    assert moved.too_small and not moved.significant
    assert moved.difference == pytest.approx(5.8)


def test_out_of_scale_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="csat scores run from 1 to 5, not 6"):
        score(CSAT, {6: 1})
    with pytest.raises(ValueError, match="no nps answers"):
        score(NPS, {})


def test_series_per_segment_and_period() -> None:
    rng = random.Random(5)
    rows = [
        Answer(rng.randint(0, 10), segment, period)
        for segment, period, n in [("web", "2026-02", 80), ("web", "2026-01", 90), ("chat", "x", 5)]
        for _ in range(n)
    ]
    rows += [Answer(None, "web", "2026-01"), Answer(None, "chat", "y")]
    result = series(NPS, rows)
    assert [one.segment for one in result] == ["chat", "web"]
    chat, web = result
    assert [(p.period, p.skipped) for p in web.periods] == [("2026-01", 1), ("2026-02", 0)]
    assert [p.score.n for p in web.periods if p.score] == [90, 80]
    only_empty = chat.periods[1]
    assert (only_empty.period, only_empty.score, only_empty.skipped) == ("y", None, 1)
    assert chat.changes == []  # nothing to compare an empty period with
    (step,) = web.changes
    assert (step.before_period, step.after_period) == ("2026-01", "2026-02")
    january = Counter(a.score for a in rows if a.period == "2026-01" and a.score is not None)
    february = Counter(a.score for a in rows if a.period == "2026-02" and a.score is not None)
    assert step.change == change(NPS, january, february)


def test_series_intervals_follow_alpha() -> None:
    (one,) = series(CSAT, [Answer(5), Answer(2), Answer(4)], alpha=0.1)
    (point,) = one.periods
    assert point.score is not None and point.score.interval.level == pytest.approx(0.9)


def test_needed_per_arm() -> None:
    assert needed_per_arm(CSAT, {5: 65, 1: 35}, {5: 85, 1: 15}) == 73
    assert needed_per_arm(NPS, {10: 65, 8: 35}, {10: 85, 8: 15}) == 73
    assert needed_per_arm(CES, {3: 10, 5: 10}, {3: 10, 5: 10}) is None
    sd = math.sqrt(20 / 19)  # both arms: ten 3s and ten 5s, or ten 4s and ten 6s
    assert needed_per_arm(CES, {3: 10, 5: 10}, {4: 10, 6: 10}) == pytest.approx(
        math.ceil(2 * (1.959964 + 0.841621) ** 2 * sd**2), abs=2
    )


# --- the commands --------------------------------------------------------------------------


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["feedback", *args])


def flat(text: str) -> str:
    """The error box's text on one line, whatever the terminal width wrapped."""
    return " ".join(text.replace("│", " ").split())


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "answers.csv"
    path.write_text(text)
    return path


@pytest.fixture
def survey(tmp_path: Path) -> Path:
    rng = random.Random(9)
    lines = ["id,nps,month,channel,arm"]
    for i in range(240):
        month = "2026-01" if i < 120 else "2026-02"
        value = rng.choice(range(11)) if month == "2026-01" else rng.choice([9, 10, 10, 7, 3])
        lines.append(f"{i},{'' if i % 50 == 0 else value},{month},{rng.choice('ab')},")
    lines.append("999,9,2026-02,email,")
    return write(tmp_path, "\n".join(lines) + "\n")


def test_score_json_contract(survey: Path) -> None:
    result = invoke(
        "score",
        str(survey),
        "--kind",
        "nps",
        "--score-column",
        "nps",
        "--period-column",
        "month",
        "--json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {k: report[k] for k in ("kind", "alpha", "min_n", "rows", "skipped")} == {
        "kind": "nps",
        "alpha": 0.05,
        "min_n": 30,
        "rows": 241,
        "skipped": 5,
    }
    (only,) = report["series"]
    assert only["segment"] is None
    first, second = only["periods"]
    assert first["period"] == "2026-01" and first["n"] + first["skipped"] == 120
    assert set(first) == {"period", "value", "n", "interval", "skipped"}
    assert first["interval"]["low"] <= first["value"] <= first["interval"]["high"]
    (step,) = only["changes"]
    assert set(step) == {
        "from",
        "to",
        "before",
        "after",
        "difference",
        "interval",
        "p_value",
        "significant",
        "minimum_detectable",
        "too_small",
        "test",
    }
    assert (step["from"], step["to"], step["test"]) == ("2026-01", "2026-02", "NPS trinomial z")
    assert step["significant"] and step["p_value"] < 0.05
    assert step["difference"] == pytest.approx(second["value"] - first["value"])


def test_score_per_segment_marks_small_segments(survey: Path) -> None:
    result = invoke(
        "score",
        str(survey),
        "--kind",
        "nps",
        "--score-column",
        "nps",
        "--period-column",
        "month",
        "--segment-column",
        "channel",
        "--json",
    )
    assert result.exit_code == 0, result.output
    by_segment = {one["segment"]: one for one in json.loads(result.stdout)["series"]}
    assert set(by_segment) == {"a", "b", "email"}
    assert [p["n"] for p in by_segment["email"]["periods"]] == [1]
    assert all(not step["too_small"] for step in by_segment["a"]["changes"])


def test_score_without_periods_and_its_summary(survey: Path) -> None:
    result = invoke(
        "score",
        str(survey),
        "--kind",
        "nps",
        "--score-column",
        "nps",
        "--period-column",
        "month",
        "--segment-column",
        "channel",
    )
    assert result.exit_code == 0, result.output
    assert "NPS (NPS points, -100 to 100), 241 rows, 5 skipped" in result.stdout
    assert "segment email" in result.stdout
    assert "2026-01 -> 2026-02: significant:" in result.stdout
    whole = json.loads(
        invoke("score", str(survey), "--kind", "NPS", "--score-column", "nps", "--json").stdout
    )
    (point,) = whole["series"][0]["periods"]
    assert point["period"] is None and point["n"] == 236
    assert whole["series"][0]["changes"] == []


def test_experiment(tmp_path: Path) -> None:
    rows = ["arm,score"] + [f"old,{5 if i < 60 else 2}" for i in range(100)]
    rows += [f"new,{5 if i < 80 else 2}" for i in range(100)] + ["new,"]
    path = write(tmp_path, "\n".join(rows) + "\n")
    result = invoke("experiment", str(path), "--kind", "csat", "--control", "old", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["control"], report["treatment"], report["skipped"]) == ("old", "new", 1)
    assert [(arm["arm"], arm["value"], arm["n"]) for arm in report["arms"]] == [
        ("old", 60.0, 100),
        ("new", 80.0, 100),
    ]
    difference = report["difference"]
    assert difference["difference"] == pytest.approx(20.0)
    assert difference["p_value"] == pytest.approx(proportion_change(60, 100, 80, 100).p_value)
    assert difference["significant"]
    assert report["needed_per_arm"] == needed_per_arm(CSAT, {5: 60, 2: 40}, {5: 80, 2: 20})
    summary = invoke("experiment", str(path), "--kind", "csat", "--control", "old")
    assert "new against control old" in summary.stdout
    assert "answers per arm would detect this difference" in summary.stdout


@pytest.mark.parametrize(
    ("text", "args", "expected"),
    [
        ("score\n11\n", [], "row 1, column 'score': 11 is off the NPS scale (0 to 10)"),
        ("score\n5\nfive\n", [], "row 2, column 'score': 'five' is not a whole-number score"),
        ("score\n7.5\n", [], "row 1, column 'score': '7.5' is not a whole-number score"),
        ("rating\n5\n", [], "has no column 'score' (its columns: 'rating')"),
        ("score,month\n5,\n", ["--period-column", "month"], "row 1, column 'month': empty"),
        ("score,month\n5\n", ["--period-column", "month"], "row 1, column 'month': missing"),
        ("score\n5,6\n", [], "row 1 has more cells than the header has columns"),
        ("score\n", [], "has no data rows"),
        ("score,seg\n5,a\n", ["--period-column", "month"], "has no column 'month'"),
    ],
)
def test_bad_input_is_refused(tmp_path: Path, text: str, args: list[str], expected: str) -> None:
    result = invoke("score", str(write(tmp_path, text)), "--kind", "nps", "--json", *args)
    assert result.exit_code == 2
    assert expected in flat(result.stderr)
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("text", "args", "expected"),
    [
        ("arm,score\na,4\nb,5\nc,5\n", [], "must name exactly two arms, not 3: 'a', 'b', 'c'"),
        ("arm,score\na,4\nb,5\n", ["--control", "z"], "no arm 'z' in column 'arm'"),
        ("arm,score\na,4\nb,\n", [], "arm 'b' has no scores"),
        ("arm,score\na,4\nb,9\n", [], "row 2, column 'score': 9 is off the CSAT scale (1 to 5)"),
    ],
)
def test_bad_experiments_are_refused(
    tmp_path: Path, text: str, args: list[str], expected: str
) -> None:
    path = write(tmp_path, text)
    result = invoke("experiment", str(path), "--kind", "csat", "--json", *args)
    assert result.exit_code == 2
    assert expected in flat(result.stderr)
    assert result.stdout == ""
