"""``cxops scorecard evaluate``: the JSON contract on the example, a past period under the
weights in force then, and bad input refused with its place named, exit 2, nothing on stdout."""

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cxops.cli.main import app

EXAMPLE = Path(__file__).parents[2] / "examples" / "scorecard.json"
CONTRACT = {
    "scorecard",
    "period",
    "period_start",
    "as_of",
    "weights_effective_from",
    "composite",
    "coverage",
    "perspectives",
    "metrics",
    "variances",
    "history",
    "leading_lagging",
    "calibration",
}


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["scorecard", "evaluate", *args])


def flat(text: str) -> str:
    """The error box's text on one line, whatever the terminal width wrapped."""
    return " ".join(text.replace("│", " ").split())


def example() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text())
    return data


def test_the_example_gives_composite_statuses_variances_and_plans() -> None:
    result = invoke(str(EXAMPLE), "--json", "--as-of", "2026-07-10")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == CONTRACT
    assert (report["period"], report["weights_effective_from"]) == ("2026-06", "2026-04-01")
    assert 0 <= report["composite"] <= 100
    metrics = {row["id"]: row for row in report["metrics"]}
    assert metrics["fcr"]["status"] == "outside_tolerance" and metrics["fcr"]["variance"]
    assert metrics["fcr"]["change"]["significant"]
    assert not metrics["attrition"]["variance"]
    assert metrics["attrition"]["variance_note"].startswith(
        "outside tolerance but not statistically real"
    )
    plans = {row["metric"]: row["action_plan"] for row in report["variances"]}
    assert plans["fcr"]["state"] == "overdue" and plans["fcr"]["owner"]
    assert plans["cost_per_contact"]["note"] == "missing: needs an owner and a due date"
    pairs = {(row["leading"], row["lagging"]): row for row in report["leading_lagging"]}
    assert pairs[("fcr", "nps")]["best_lag"] == 2 and pairs[("fcr", "nps")]["predictive"]
    assert report["history"][-1]["composite"] == report["composite"]


def test_a_past_period_is_weighed_as_it_was() -> None:
    result = invoke(str(EXAMPLE), "--json", "--period", "2026-02", "--as-of", "2026-07-10")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["weights_effective_from"] == "2025-07-01"
    latest = json.loads(invoke(str(EXAMPLE), "--json", "--as-of", "2026-07-10").stdout)
    by_period = {point["period"]: point["composite"] for point in latest["history"]}
    assert by_period["2026-02"] == report["composite"]


def test_the_summary_names_the_variances_and_their_plans() -> None:
    result = invoke(str(EXAMPLE), "--as-of", "2026-07-10")
    assert result.exit_code == 0, result.output
    assert "composite" in result.stdout
    assert "variance fcr: statistically real decline" in result.stdout
    assert "missing: needs an owner and a due date" in result.stdout


def set_at(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change to the example: ``value`` put at a dotted ``path`` (list items by number)."""

    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


def swap_periods(data: dict[str, Any]) -> None:
    periods = data["periods"]
    periods[2], periods[3] = periods[3], periods[2]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (set_at("metrics.0.colour", "red"), "metrics[0].colour: Extra inputs are not permitted"),
        (set_at("weights.0.weights.bogus", 0.0), "weights[0].weights.bogus: no metric is named"),
        (set_at("weights.1.weights.fcr", 0.5), "weights[1].weights: weights sum to 1.25, not 1"),
        (set_at("metrics.0.formula", "resolved / calls"), "unknown fact 'calls'"),
        (set_at("metrics.0.formula", "__import__('os')"), "metrics[0].formula: "),
        (set_at("weights.1.effective_from", "2025-07-01"), "weights[1].effective_from:"),
        (swap_periods, "periods[3].start:"),
        (set_at("evaluate_period", "2027-01"), "evaluate_period: no period is named '2027-01'"),
        (set_at("metrics.0.tolerance", {"absolute": 1, "percent": 2}), "metrics[0].tolerance:"),
        (set_at("metrics.0.test", {"kind": "proportion"}), "metrics[0].test.successes:"),
        (set_at("metrics.0.direction", "up"), "metrics[0].direction:"),
        (set_at("pairs.0.leading", "nps"), "pairs[0].leading: 'nps' is a lagging metric"),
        (set_at("action_plans.0.metric", "x"), "action_plans[0].metric: no metric is named"),
        (set_at("periods.1.facts.contacts", "many"), "periods[1].facts.contacts:"),
    ],
)
def test_bad_input_is_refused_with_its_place(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], expected: str
) -> None:
    data = copy.deepcopy(example())
    change(data)
    path = tmp_path / "scorecard.json"
    path.write_text(json.dumps(data))
    result = invoke(str(path), "--json")
    assert result.exit_code == 2
    assert expected in flat(result.stderr)
    assert result.stdout == ""


def test_not_json_and_bad_options_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "scorecard.json"
    path.write_text('{"metrics": [')
    result = invoke(str(path), "--json")
    assert result.exit_code == 2 and "not JSON" in flat(result.stderr) and result.stdout == ""
    result = invoke(str(EXAMPLE), "--json", "--period", "1999-01")
    assert result.exit_code == 2 and "no period '1999-01'" in flat(result.stderr)
    result = invoke(str(EXAMPLE), "--as-of", "yesterday")
    assert result.exit_code == 2 and "not a date" in flat(result.stderr)
