"""``cxops feedback spikes``: complaint-spike alerts from a CSV of counts per period and topic.

Every row is used or refused: a bad value stops the command with its row and column (exit code
2, nothing on stdout), never a silently skipped row.
"""

import csv
import json
import re
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ConfigDict, ValidationError

from cxops.feedback.domain.alerts import (
    Alert,
    AlertConfig,
    Correction,
    Detection,
    Incident,
    Observation,
    detect,
)

REQUIRED = ("period", "topic", "count")
OPTIONAL = ("segment", "total")
_WHOLE = re.compile(r"[0-9]+")
_DEFAULTS = AlertConfig()


class SpikeSettings(BaseModel):
    """``--config FILE.json``: any of these keys; ranges are checked by ``AlertConfig``."""

    model_config = ConfigDict(extra="forbid")

    alpha: float = _DEFAULTS.alpha
    min_count: int = _DEFAULTS.min_count
    season: int = _DEFAULTS.season
    period_days: int = _DEFAULTS.period_days
    baseline: int = _DEFAULTS.baseline
    min_baseline: int = _DEFAULTS.min_baseline
    correction: Correction = _DEFAULTS.correction
    ewma_weight: float = _DEFAULTS.ewma_weight
    cooldown: int = _DEFAULTS.cooldown
    escalation: float = _DEFAULTS.escalation
    groups: dict[str, list[str]] = {}


def spikes_command(
    counts: Annotated[
        Path,
        typer.Argument(
            metavar="COUNTS.csv",
            help="Columns period (ISO date), topic, count; optional segment and total "
            "(responses in the period, for the EWMA on rates).",
            exists=True,
            dir_okay=False,
        ),
    ],
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            metavar="FILE.json",
            help="Thresholds, related-topic groups and cooldown (services/feedback/README.md).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    season: Annotated[
        int | None,
        typer.Option(min=1, help="Periods per season: 7 (weekdays, the default), 1 (none)."),
    ] = None,
    period_days: Annotated[
        int | None,
        typer.Option(min=1, help="Days per period: 1 for daily counts (default), 7 for weekly."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the alerts as JSON.")] = False,
) -> None:
    """Find complaint spikes: exact Poisson tails against a weekday baseline, corrected for the
    number of series, EWMA limits on rates, a minimum count, a cooldown, and one alert per
    incident across related topics."""
    settings = _read_settings(config_file)
    overrides = {"season": season, "period_days": period_days}
    values = {**settings.model_dump(), **{k: v for k, v in overrides.items() if v is not None}}
    values["groups"] = {name: tuple(topics) for name, topics in values["groups"].items()}
    try:
        config = AlertConfig(**values)
    except ValueError as exc:
        raise typer.BadParameter(f"settings {exc}") from exc
    observations = read_counts(counts, config.period_days)
    result = detect(observations, config)
    if as_json:
        typer.echo(json.dumps(detection_json(result, config), indent=2))
    else:
        _print(result)


def read_counts(path: Path, period_days: int) -> list[Observation]:
    """The rows as observations, or a ``BadParameter`` naming the first bad row and column."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle, restkey="\x00extra")
            header = reader.fieldnames
            if not header:
                raise typer.BadParameter(f"{path.name}: empty file, expected a header row")
            unknown = [name for name in header if name not in REQUIRED + OPTIONAL]
            if unknown:
                raise typer.BadParameter(
                    f"{path.name}: unknown column {unknown[0]!r}; the columns are "
                    f"{', '.join(REQUIRED)} and optionally {', '.join(OPTIONAL)}"
                )
            missing = [name for name in REQUIRED if name not in header]
            if missing:
                raise typer.BadParameter(f"{path.name}: missing column {missing[0]!r}")
            rows = [(reader.line_num, row) for row in reader]
    except UnicodeDecodeError as exc:
        raise typer.BadParameter(f"{path.name}: not UTF-8 text: {exc.reason}") from exc
    except csv.Error as exc:
        raise typer.BadParameter(f"{path.name}: not CSV: {exc}") from exc
    observations = [_observation(path.name, line, row, "total" in header) for line, row in rows]
    _check_grid(path.name, rows, observations, period_days)
    return observations


def _observation(name: str, line: int, row: dict[str, Any], has_total: bool) -> Observation:
    def bad(column: str, why: str) -> typer.BadParameter:
        return typer.BadParameter(f"{name}: row {line}, column {column!r}: {why}")

    if "\x00extra" in row or None in row.values():
        raise bad("*", "the row has a different number of fields than the header")
    try:
        period = date.fromisoformat(row["period"].strip())
    except ValueError as exc:
        raise bad("period", f"{row['period']!r} is not an ISO date (YYYY-MM-DD)") from exc
    topic = row["topic"].strip()
    if not topic:
        raise bad("topic", "empty")
    count = _whole(row["count"])
    if count is None:
        raise bad("count", f"{row['count']!r} is not a non-negative whole number")
    total = None
    if has_total:
        total = _whole(row["total"])
        if total is None:
            raise bad("total", f"{row['total']!r} is not a non-negative whole number")
        if count > total:
            raise bad("count", f"{count} complaints out of a total of {total} responses")
    return Observation(period, topic, count, segment=row.get("segment", "").strip(), total=total)


def _whole(text: str) -> int | None:
    text = text.strip()
    return int(text) if _WHOLE.fullmatch(text) else None


def _check_grid(
    name: str, rows: list[tuple[int, Any]], observations: list[Observation], period_days: int
) -> None:
    """Refuse duplicates and, for periods of several days, dates off the first period's grid."""
    if not observations:
        return
    origin = min(o.period for o in observations).toordinal()
    seen: dict[tuple[int, str, str], int] = {}
    for (line, _), o in zip(rows, observations, strict=True):
        index, off_grid = divmod(o.period.toordinal() - origin, period_days)
        if off_grid:
            raise typer.BadParameter(
                f"{name}: row {line}, column 'period': {o.period} is not a whole number of "
                f"{period_days}-day periods after the first, {date.fromordinal(origin)}"
            )
        first = seen.setdefault((index, o.topic, o.segment), line)
        if first != line:
            raise typer.BadParameter(
                f"{name}: row {line}, column 'period': a second count for {o.topic!r}"
                f"{f' in segment {o.segment!r}' if o.segment else ''} on {o.period} "
                f"(the first is row {first})"
            )


def detection_json(result: Detection, config: AlertConfig) -> dict[str, Any]:
    """The command's JSON: what was looked at, the settings used, and the alerts (one per
    incident, with the series that alerted as its members)."""
    settings = asdict(config)
    settings["groups"] = {name: list(topics) for name, topics in config.groups.items()}
    return {
        "summary": {
            "periods": result.periods,
            "series": result.series,
            "tests": result.tests,
            "untested": result.untested,
            "suppressed_by_cooldown": result.suppressed,
            "alerts": len(result.incidents),
        },
        "settings": settings,
        "alerts": [_incident_json(incident) for incident in result.incidents],
    }


def _incident_json(incident: Incident) -> dict[str, Any]:
    return {
        "period": incident.period.isoformat(),
        "topic": incident.topic,
        "topics": list(incident.topics),
        "segments": [segment or None for segment in incident.segments],
        "observed": incident.observed,
        "expected": round(incident.expected, 3),
        "test": incident.test,
        "p_value": incident.p_value,
        "reason": incident.reason,
        "members": [_alert_json(alert) for alert in incident.members],
    }


def _alert_json(alert: Alert) -> dict[str, Any]:
    return {
        "period": alert.period.isoformat(),
        "topic": alert.topic,
        "segment": alert.segment or None,
        "observed": alert.observed,
        "expected": round(alert.expected, 3),
        "test": alert.test,
        "p_value": alert.p_value,
        "statistic": alert.statistic,
        "limit": alert.limit,
        "escalated": alert.escalated,
        "reason": alert.reason,
    }


def _read_settings(path: Path | None) -> SpikeSettings:
    if path is None:
        return SpikeSettings()
    try:
        return SpikeSettings.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'file'}: {error['msg']}"
            for error in exc.errors()
        )
        raise typer.BadParameter(f"{path.name}: {problems}") from exc


def _print(result: Detection) -> None:
    typer.echo(
        f"{len(result.incidents)} alerts over {result.periods} periods and {result.series} "
        f"series ({result.tests} tests, {result.untested} untested for lack of history, "
        f"{result.suppressed} held back by a cooldown)"
    )
    for incident in result.incidents:
        typer.echo(f"{incident.period}  {incident.test:<12}  {incident.reason}")
