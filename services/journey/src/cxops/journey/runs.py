"""What ``cxops journey mine`` and ``cxops journey simulate`` compute and the JSON they print
with ``--json``: one code path for the commands and for the service's jobs, so that a job's
result is the command's output for the same input, byte for byte.
"""

import json
import math
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from cxops.journey.domain.journey_map import JourneyMap
from cxops.journey.domain.log import Columns, prepare_log
from cxops.journey.domain.mining import Mining, mine
from cxops.journey.domain.simulation.experiments import (
    Comparison,
    RunSettings,
    compare,
    find_breaking_point,
    simulate,
)
from cxops.journey.domain.simulation.measures import SimulationFigures
from cxops.journey.domain.simulation.model import JourneyModel
from cxops.journey.formats.log import scan_log

#: Called with the share of the run done (0..1) between its phases.
Progress = Callable[[float], None]


def log_columns(
    present: Collection[str],
    *,
    case: str = "case_id",
    activity: str = "activity",
    timestamp: str = "timestamp",
    team: str | None = None,
    channel: str | None = None,
) -> Columns:
    """The command's column mapping: team and channel default to the columns of those names
    when the log has them."""
    return Columns(
        case=case,
        activity=activity,
        timestamp=timestamp,
        team=team if team is not None else ("team" if "team" in present else None),
        channel=channel if channel is not None else ("channel" if "channel" in present else None),
    )


@dataclass(frozen=True)
class MiningRun:
    """A mining run's JSON, and the size of the log it read."""

    json: str
    cases: int
    events: int


def mine_log(
    path: Path,
    columns: Columns,
    *,
    journey_map: JourneyMap | None = None,
    top: int = 10,
    progress: Progress | None = None,
) -> MiningRun:
    """Read, prepare and mine the log at ``path``; raises ``LogError`` (or polars' errors) for a
    log that cannot be mined."""
    report = progress or (lambda _share: None)
    prepared = prepare_log(scan_log(path), columns)
    report(0.5)
    result = mine(prepared, journey_map=journey_map, top=top)
    report(0.9)
    return MiningRun(json=mining_json(result), cases=result.cases, events=result.events)


def mining_json(result: Mining) -> str:
    """The result as the command prints it: the dataclasses' fields as objects, converted as
    ``json`` meets them (several times faster than ``dataclasses.asdict``, which copies)."""
    return json.dumps(result, default=_fields)


def _fields(value: Any) -> dict[str, Any]:
    return {field.name: getattr(value, field.name) for field in fields(value)}


def simulation_result(
    model: JourneyModel,
    settings: RunSettings,
    *,
    breaking_point: bool,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The simulation's figures as ``cxops journey simulate --json`` prints them."""
    report = progress or (lambda _share: None)
    comparison: Comparison | None = None
    if model.intervention is not None:
        comparison = compare(model, settings)
        baseline = comparison.baseline
    else:
        baseline = simulate(model, settings)
    report(0.5 if breaking_point else 0.9)
    result: dict[str, Any] = {
        "model": model.name,
        "settings": _plain(settings),
        **_figures(baseline),
    }
    if breaking_point:
        result["breaking_point"] = _plain(find_breaking_point(model, settings))
        report(0.7)
    if comparison is not None:
        intervention: dict[str, Any] = {
            "name": comparison.name,
            **_figures(comparison.intervention),
        }
        if breaking_point:
            intervention["breaking_point"] = _plain(
                find_breaking_point(model.with_intervention(), settings)
            )
        intervention["difference"] = {
            "confidence": comparison.confidence,
            "journey": _plain(comparison.journey),
            "stages": _plain(comparison.stages),
        }
        result["intervention"] = intervention
    return result


def _figures(figures: SimulationFigures) -> dict[str, Any]:
    stages = {}
    for stage in figures.stages:
        row = _plain(stage)
        del row["name"]
        stages[stage.name] = row
    return {
        "events": figures.events,
        "sla_met": not figures.breaches,
        "stages": stages,
        "journey": _plain(figures.journey),
    }


def _plain(value: Any) -> Any:
    """JSON-ready: dataclasses as objects, tuples as lists, floats rounded to 6 places."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if hasattr(value, "__dataclass_fields__"):
        return _plain(asdict(value))
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    return value
