"""``cxops journey mine``: the journeys customers really take, from an event log."""

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from cxops.cli.json_input import read_json
from cxops.journey.domain.journey_map import JourneyMap
from cxops.journey.domain.log import LogError, prepare_log
from cxops.journey.domain.mining import Mining, mine
from cxops.journey.formats.journey_map import JourneyMapError, load_journey_map
from cxops.journey.formats.log import scan_log
from cxops.journey.runs import log_columns, mining_json


def mine_command(
    log: Annotated[
        Path,
        typer.Argument(
            metavar="LOG",
            help="Event log, .csv or .parquet: one row per event, in any order.",
            exists=True,
            dir_okay=False,
        ),
    ],
    case: Annotated[str, typer.Option(help="Column of the case (journey) id.")] = "case_id",
    activity: Annotated[str, typer.Option(help="Column of the activity.")] = "activity",
    timestamp: Annotated[
        str, typer.Option(help="Column of the time (ISO 8601; without an offset, UTC).")
    ] = "timestamp",
    team: Annotated[
        str | None,
        typer.Option(help="Column of the team or resource; by default team, if the log has it."),
    ] = None,
    channel: Annotated[
        str | None,
        typer.Option(help="Column of the channel; by default channel, if the log has it."),
    ] = None,
    journey_map: Annotated[
        Path | None,
        typer.Option(
            "--map",
            metavar="MAP.json",
            help="Designed journey to check the log against (see services/journey/README.md).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    top: Annotated[
        int, typer.Option(min=1, help="Length of the bottleneck lists and of the summary's.")
    ] = 10,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole result as JSON.")
    ] = False,
) -> None:
    """Mine an event log: the journeys customers really took.

    Activities, directly-follows graph, variants, team handoffs, case durations, time per
    stage, bottlenecks, rework and (with --map) conformance to the designed journey."""
    designed = _read_map(journey_map) if journey_map is not None else None
    try:
        source = scan_log(log)
        columns = log_columns(
            source.collect_schema().names(),
            case=case,
            activity=activity,
            timestamp=timestamp,
            team=team,
            channel=channel,
        )
        prepared = prepare_log(source, columns)
    except LogError as exc:
        raise typer.BadParameter(f"{log.name}: {exc}") from exc
    except pl.exceptions.PolarsError as exc:
        reason = str(exc).splitlines()[0]  # the rest is advice on polars' own options
        raise typer.BadParameter(f"{log.name}: cannot read the log: {reason}") from exc
    result = mine(prepared, journey_map=designed, top=top)
    if as_json:
        typer.echo(mining_json(result))
    else:
        _print_summary(result, typer.echo, top=top)


def _read_map(path: Path) -> JourneyMap:
    data = read_json(path)
    try:
        return load_journey_map(data)
    except JourneyMapError as exc:
        places = "\n".join(f"  {place}: {message}" for place, message in exc.problems)
        raise typer.BadParameter(f"{path} is not a valid journey map:\n{places}") from exc


def _print_summary(result: Mining, echo: Callable[[str], None], *, top: int) -> None:
    durations = result.case_duration_seconds
    echo(
        f"{result.events:,} events in {result.cases:,} cases, {len(result.activities)} "
        f"activities, {len(result.variants):,} variants"
    )
    echo(
        f"case duration: mean {_span(durations.mean)}, median {_span(durations.median)}, "
        f"p90 {_span(durations.p90)}, max {_span(durations.max)}"
    )
    echo(f"start: {_tally(result.start_activities)}")
    echo(f"end:   {_tally(result.end_activities)}")
    echo(f"\nvariants (top {top}):")
    for variant in result.variants[:top]:
        share = variant.count / result.cases
        echo(f"  {share:6.1%} {variant.count:>9,}  {' > '.join(variant.activities)}")
    echo(f"\ndirectly-follows (top {top} by count):")
    echo(f"  {'source -> target':<50}{'count':>10}{'mean':>10}{'median':>10}{'max':>10}")
    for edge in result.dfg[:top]:
        echo(
            f"  {edge.source + ' -> ' + edge.target:<50}{edge.count:>10,}"
            f"{_span(edge.mean_seconds):>10}{_span(edge.median_seconds):>10}"
            f"{_span(edge.max_seconds):>10}"
        )
    if result.handoffs:
        echo(f"\nteam handoffs (top {top} by count):")
        echo(f"  {'from -> to':<50}{'count':>10}{'mean':>10}{'median':>10}")
        for handoff in result.handoffs[:top]:
            echo(
                f"  {handoff.from_team + ' -> ' + handoff.to_team:<50}{handoff.count:>10,}"
                f"{_span(handoff.mean_seconds):>10}{_span(handoff.median_seconds):>10}"
            )
    echo("\nbottlenecks (share of all waiting):")
    for kind, items in (("edge", result.bottlenecks.edges), ("stage", result.bottlenecks.stages)):
        for item in items[:5]:
            echo(f"  {kind:<6}{item.name:<50}{_span(item.total_seconds):>10}{item.share:>8.1%}")
    rework = result.rework
    echo(f"\nrework: {rework.cases:,} cases ({rework.share:.1%}) repeat an activity")
    for repeated in rework.activities[:top]:
        echo(f"  {repeated.activity:<50}{repeated.cases:>10,} cases")
    if result.conformance is not None:
        _print_conformance(result, echo)


def _print_conformance(result: Mining, echo: Callable[[str], None]) -> None:
    conformance = result.conformance
    assert conformance is not None
    deviations = conformance.deviations
    echo(
        f"\nconformance: {conformance.fitting_cases:,} of {conformance.cases:,} cases fit "
        f"({conformance.fitness:.1%})"
    )
    for kind, deviation in (
        ("skipped stage", deviations.skipped_stage),
        ("out of order", deviations.out_of_order),
        ("loop", deviations.loop),
    ):
        echo(f"  {kind:<18}{deviation.cases:>10,} cases  {_tally(deviation.stages)}")
    unmapped = deviations.unmapped_activity
    echo(f"  {'unmapped activity':<18}{unmapped.cases:>10,} cases  {_tally(unmapped.activities)}")
    for sla in conformance.sla:
        echo(
            f"  SLA {sla.from_stage} -> {sla.to_stage} ({_span(sla.sla_seconds)}): "
            f"{sla.breaches:,} of {sla.handoffs:,} handoffs late ({sla.breach_share:.1%})"
        )


def _tally(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count:,}" for name, count in counts.items()) or "-"


def _span(seconds: float | None) -> str:
    """A duration as a person reads it: 45s, 12m 05s, 3h 20m, 2d 04h."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{seconds:.3g}s" if seconds < 10 else f"{secs}s"
