"""``cxops feedback spikes``: complaint-spike alerts from a CSV of counts per period and topic.

Every row is used or refused: a bad value stops the command with its row and column (exit code
2, nothing on stdout), never a silently skipped row.
"""

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from cxops.feedback.domain.alerts import Alert, AlertConfig, Detection, Incident, detect
from cxops.feedback.formats import InputError, SpikeSettings, read_counts, read_spike_settings


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
    cusum_shift: Annotated[
        float | None,
        typer.Option(
            help="The rise the CUSUM is tuned to, as a multiple of the expected count "
            "(above 1; default 2).",
        ),
    ] = None,
    cusum_threshold: Annotated[
        float | None,
        typer.Option(
            help="Log-likelihood ratio at which the CUSUM alerts (default 6.5; higher: fewer "
            "false alarms, later alerts).",
        ),
    ] = None,
    window: Annotated[
        int | None,
        typer.Option(help="Periods summed by the window test (at least 2; default 2)."),
    ] = None,
    window_alpha: Annotated[
        float | None,
        typer.Option(
            help="False-alarm rate of the window test per series and period (default 0.0006; "
            "lower: fewer false alarms, later alerts).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the alerts as JSON.")] = False,
) -> None:
    """Find complaint spikes: exact Poisson tails against a weekday baseline, corrected for the
    number of series, a test of the last periods' sum and a Poisson CUSUM for sustained rises,
    EWMA limits on rates, a minimum count, a cooldown, and one alert per incident across
    related topics."""
    overrides = {
        "season": season,
        "period_days": period_days,
        "cusum_shift": cusum_shift,
        "cusum_threshold": cusum_threshold,
        "window": window,
        "window_alpha": window_alpha,
    }
    try:
        settings = SpikeSettings() if config_file is None else read_spike_settings(config_file)
    except InputError as exc:
        raise typer.BadParameter(str(exc)) from exc
    try:
        config = settings.alert_config(**{k: v for k, v in overrides.items() if v is not None})
    except ValueError as exc:
        raise typer.BadParameter(f"settings {exc}") from exc
    try:
        observations = read_counts(counts, config.period_days)
    except InputError as exc:
        raise typer.BadParameter(str(exc)) from exc
    result = detect(observations, config)
    if as_json:
        typer.echo(json.dumps(detection_json(result, config), indent=2))
    else:
        _print(result)


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


def _print(result: Detection) -> None:
    typer.echo(
        f"{len(result.incidents)} alerts over {result.periods} periods and {result.series} "
        f"series ({result.tests} tests, {result.untested} untested for lack of history, "
        f"{result.suppressed} held back by a cooldown)"
    )
    for incident in result.incidents:
        typer.echo(f"{incident.period}  {incident.test:<13}  {incident.reason}")
