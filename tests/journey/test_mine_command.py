"""``cxops journey mine``: the JSON contract and the summary from CSV and Parquet, the column
options, a journey map, and bad input refused with the column and row, nothing on stdout."""

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from cxops.cli.main import app
from tests.journey.mining_logs import HAND_LOG

EXAMPLES = Path(__file__).parents[2] / "examples"

CONTRACT = {
    "cases",
    "events",
    "activities",
    "start_activities",
    "end_activities",
    "dfg",
    "variants",
    "handoffs",
    "case_duration_seconds",
}
MAP = {
    "name": "billing dispute",
    "stages": [
        {"name": "intake", "activities": ["open", "triage"]},
        {"name": "billing", "activities": ["bill"], "optional": True},
        {"name": "closure", "activities": ["close"]},
    ],
    "handoffs": [
        {"from": "intake", "to": "billing", "sla_seconds": 3000},
        {"from": "billing", "to": "closure", "sla_seconds": 1500},
    ],
}


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["journey", "mine", *args])


def flat(text: str) -> str:
    """The error box's text on one line, whatever the terminal width wrapped."""
    return " ".join(text.replace("│", " ").split())


@pytest.fixture
def hand_log(tmp_path: Path) -> Path:
    path = tmp_path / "log.csv"
    path.write_text(HAND_LOG)
    return path


def test_json_holds_the_contract(hand_log: Path) -> None:
    result = invoke(str(hand_log), "--json")
    assert result.exit_code == 0, result.output
    mined = json.loads(result.stdout)
    assert CONTRACT <= set(mined)
    assert mined["dfg"][0] == {
        "source": "bill",
        "target": "close",
        "count": 3,
        "mean_seconds": 1400.0,
        "median_seconds": 1200.0,
        "min_seconds": 1200.0,
        "max_seconds": 1800.0,
        "total_seconds": 4200.0,
    }
    assert mined["variants"][0] == {"activities": ["open", "triage", "bill", "close"], "count": 2}
    assert mined["handoffs"][0]["from_team"] == "billing"
    assert mined["case_duration_seconds"] == {
        "mean": 6200.0,
        "median": 6000.0,
        "p90": 6960.0,
        "max": 7200.0,
    }
    assert mined["conformance"] is None


def test_parquet_and_renamed_columns(tmp_path: Path) -> None:
    renamed = pl.read_csv(HAND_LOG.encode(), infer_schema=False).rename(
        {"case_id": "ticket", "activity": "step", "timestamp": "at", "team": "group"}
    )
    path = tmp_path / "log.parquet"
    renamed.write_parquet(path)
    result = invoke(
        str(path), "--case", "ticket", "--activity", "step", "--timestamp", "at", "--team", "group"
    )
    assert result.exit_code == 0, result.output
    csv = tmp_path / "log.csv"
    csv.write_text(HAND_LOG)
    as_parquet = json.loads(
        invoke(
            str(path),
            "--json",
            "--case",
            "ticket",
            "--activity",
            "step",
            "--timestamp",
            "at",
            "--team",
            "group",
        ).stdout
    )
    as_csv = json.loads(invoke(str(csv), "--json").stdout)
    assert as_parquet == as_csv


def test_summary_and_map(hand_log: Path, tmp_path: Path) -> None:
    journey_map = tmp_path / "map.json"
    journey_map.write_text(json.dumps(MAP))
    result = invoke(str(hand_log), "--map", str(journey_map))
    assert result.exit_code == 0, result.output
    assert "12 events in 3 cases, 4 activities, 2 variants" in result.stdout
    assert "bill -> close" in result.stdout
    assert "conformance: 3 of 3 cases fit (100.0%)" in result.stdout
    assert "SLA intake -> billing (50m 00s): 2 of 3 handoffs late (66.7%)" in result.stdout
    mined = json.loads(invoke(str(hand_log), "--map", str(journey_map), "--json").stdout)
    assert mined["conformance"]["fitness"] == 1.0
    assert [s["stage"] for s in mined["stages"]] == ["intake", "billing", "closure"]


@pytest.mark.parametrize(
    ("text", "args", "expected"),
    [
        (HAND_LOG, ["--case", "ticket"], "column 'ticket' is not in the log"),
        (HAND_LOG, ["--team", "group"], "column 'group' is not in the log"),
        ("case_id,activity,timestamp\n", [], "the log is empty"),
        (
            "case_id,activity,timestamp\nc,a,2024-01-01T10:00:00Z\nc,b,31/12/2024\n",
            [],
            "row 2, column 'timestamp': not a date-time: '31/12/2024'",
        ),
        (
            "case_id,activity,timestamp\nc,a,2024-01-01T10:00:00Z\n,b,2024-01-01T10:00:00Z\n",
            [],
            "row 2, column 'case_id': empty",
        ),
        (
            "case_id,activity,timestamp\nc,a,2024-01-01T10:00:00Z,surplus\n",
            [],
            "cannot read the log: found more fields than defined",
        ),
    ],
)
def test_bad_logs_are_refused(tmp_path: Path, text: str, args: list[str], expected: str) -> None:
    path = tmp_path / "log.csv"
    path.write_text(text)
    result = invoke(str(path), "--json", *args)
    assert result.exit_code == 2
    assert expected in flat(result.stderr)
    assert result.stdout == ""


def test_an_unknown_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "log.xlsx"
    path.write_text(HAND_LOG)
    result = invoke(str(path))
    assert result.exit_code == 2 and "unknown log format" in flat(result.stderr)


@pytest.mark.parametrize(
    ("journey_map", "place"),
    [
        ({"stages": []}, "stages: List should have at least 1 item"),
        ({"stages": [{"name": "a", "activities": ["x"], "sla": 1}]}, "stages[0].sla: Extra inputs"),
        (
            {"stages": [{"name": "a", "activities": ["x"]}, {"name": "b", "activities": ["x"]}]},
            "stages[1].activities[0]: activity 'x' already belongs to stage 'a'",
        ),
        (
            {**MAP, "handoffs": [{"from": "closure", "to": "intake", "sla_seconds": 60}]},
            "handoffs[0]: stage 'intake' does not come after 'closure'",
        ),
        (
            {**MAP, "handoffs": [{"from": "intake", "to": "billing", "sla_seconds": 0}]},
            "handoffs[0].sla_seconds: Input should be greater than 0",
        ),
        (
            {**MAP, "handoffs": [{"from": "intake", "to": "nowhere", "sla_seconds": 60}]},
            "handoffs[0].to: no stage is named 'nowhere'",
        ),
    ],
)
def test_bad_maps_name_the_place(
    hand_log: Path, tmp_path: Path, journey_map: dict[str, Any], place: str
) -> None:
    path = tmp_path / "map.json"
    path.write_text(json.dumps(journey_map))
    result = invoke(str(hand_log), "--map", str(path), "--json")
    assert result.exit_code == 2
    assert place in flat(result.stderr)
    assert result.stdout == ""


def test_a_map_that_is_not_json_is_refused(hand_log: Path, tmp_path: Path) -> None:
    path = tmp_path / "map.json"
    path.write_text('{"stages": [}')
    result = invoke(str(hand_log), "--map", str(path))
    assert result.exit_code == 2 and "line 1 column 13" in flat(result.stderr)


def test_the_examples_run() -> None:
    result = invoke(
        str(EXAMPLES / "journey-log.csv"), "--map", str(EXAMPLES / "journey-map.json"), "--json"
    )
    assert result.exit_code == 0, result.output
    mined = json.loads(result.stdout)
    assert mined["cases"] == 60
    assert mined["conformance"]["deviations"]["unmapped_activity"]["activities"] == {
        "escalated": 12
    }
