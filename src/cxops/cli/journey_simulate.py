"""``cxops journey simulate``: stress-test a journey model by discrete-event simulation."""

import json
from collections.abc import Callable
from typing import Annotated, Any

import typer

from cxops.cli.json_input import read_json
from cxops.journey.domain.simulation.experiments import RunSettings
from cxops.journey.domain.simulation.model import JourneyModel
from cxops.journey.formats.simulation import ModelError, load_model
from cxops.journey.runs import simulation_result


def simulate_command(
    model_file: Annotated[
        str,
        typer.Argument(
            metavar="MODEL.json",
            help="Journey model (see services/journey/README.md), or - for stdin.",
        ),
    ],
    load: Annotated[
        float, typer.Option(help="Multiply every arrival rate by this.", min=0.001)
    ] = 1.0,
    hours: Annotated[
        float | None, typer.Option(help="Measured hours per replication (model: hours).", min=0.001)
    ] = None,
    warmup_hours: Annotated[
        float | None,
        typer.Option(help="Hours simulated before measuring (model: warmup_hours).", min=0),
    ] = None,
    replications: Annotated[
        int | None,
        typer.Option(help="Independent runs pooled (model: replications).", min=1, max=1000),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed (model: seed).", min=0)] = None,
    breaking_point: Annotated[
        bool,
        typer.Option(
            "--breaking-point", help="Also search the lowest load at which a stage misses its SLA."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Simulate a journey under load: waits, utilisation and hang-ups per stage.

    Per stage waits, utilisation, queue, hang-ups and SLA; per journey the time from arrival
    to exit; and, if the model has an intervention, the difference it makes with a 95%
    confidence interval."""
    model = _read_model(model_file)
    try:
        settings = RunSettings.of(
            model,
            load=load,
            hours=hours,
            warmup_hours=warmup_hours,
            replications=replications,
            seed=seed,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if model.intervention is not None and settings.replications < 2:
        raise typer.BadParameter(
            "at least 2 to compare the intervention",
            param_hint="--replications",
        )
    if breaking_point and not any(stage.sla for stage in model.stages):
        raise typer.BadParameter("no stage has an sla to break", param_hint="--breaking-point")
    result = simulation_result(model, settings, breaking_point=breaking_point)
    if as_json:
        typer.echo(json.dumps(result))
    else:
        _print_summary(result, typer.echo)


def _read_model(model_file: str) -> JourneyModel:
    data = read_json(model_file)
    try:
        return load_model(data)
    except ModelError as exc:
        places = "\n".join(f"  {place}: {message}" for place, message in exc.problems)
        raise typer.BadParameter(f"{model_file} is not a valid journey model:\n{places}") from exc


def _print_summary(result: dict[str, Any], echo: Callable[[str], None]) -> None:
    settings = result["settings"]
    echo(
        f"{result['model']}: load x{settings['load']:g}, {settings['replications']} replications"
        f" of {settings['hours']:g} h after {settings['warmup_hours']:g} h warm-up"
        f" (seed {settings['seed']}), {result['events']} events"
    )
    _print_figures(result, echo)
    if "breaking_point" in result:
        _print_breaking_point(result["breaking_point"], echo)
    intervention = result.get("intervention")
    if intervention is None:
        return
    echo("")
    echo(f"intervention: {intervention['name']}")
    _print_figures(intervention, echo)
    if "breaking_point" in intervention:
        _print_breaking_point(intervention["breaking_point"], echo)
    difference = intervention["difference"]
    echo("")
    echo(
        f"difference, intervention - baseline, {difference['confidence']:.0%} interval, paired by "
        "replication:"
    )
    rows = [("journey", m, d) for m, d in difference["journey"].items()] + [
        (stage, m, d) for stage, per in difference["stages"].items() for m, d in per.items()
    ]
    unchanged = 0
    for place, measure, d in rows:
        if d["low"] == d["high"] == 0:
            unchanged += 1
            continue
        # Shares are shown in percent and their differences in percentage points.
        scale, unit = (100, " pp") if measure in ("abandoned_share", "utilisation") else (1, "")
        mark = "  *" if d["significant"] else ""
        echo(
            f"  {place:<16}{measure:<20}{d['baseline'] * scale:>10.2f} ->"
            f"{d['intervention'] * scale:>10.2f}  {d['difference'] * scale:>+9.2f}{unit}"
            f"  [{d['low'] * scale:+.2f}, {d['high'] * scale:+.2f}]{mark}"
        )
    echo("  * the interval excludes 0; shares are in %, their differences in points")
    if unchanged:
        echo(f"  ({unchanged} measures identical in every replication are not shown)")


def _print_figures(result: dict[str, Any], echo: Callable[[str], None]) -> None:
    echo(
        f"{'stage':<16}{'servers':>8}{'arrivals':>9}{'served':>8}{'aband.':>8}{'mean wait':>10}"
        f"{'p90 wait':>10}{'util':>7}{'per h':>8}{'queue':>7}  sla"
    )
    for name, row in result["stages"].items():
        sla = row["sla"]
        verdict = "-" if sla is None else ("met" if sla["met"] else "; ".join(sla["breaches"]))
        echo(
            f"{name:<16}{row['servers']:>8}{row['arrivals']:>9}{row['served']:>8}"
            f"{_share(row['abandoned_share']):>8}{_seconds(row['wait_seconds_mean']):>10}"
            f"{_seconds(row['wait_seconds_p90']):>10}{_share(row['utilisation']):>7}"
            f"{row['throughput_per_hour']:>8.1f}{row['queue_length_mean']:>7.2f}  {verdict}"
        )
    journey = result["journey"]
    echo(
        f"journey: {journey['customers']} customers, {journey['completed']} completed, "
        f"{_share(journey['abandoned_share'])} hung up; time in journey mean "
        f"{_seconds(journey['total_seconds_mean'])} s, "
        f"p90 {_seconds(journey['total_seconds_p90'])} s"
    )


def _print_breaking_point(found: dict[str, Any], echo: Callable[[str], None]) -> None:
    if found["load"] is None:
        echo(f"breaking point: every SLA still met at load x{found['highest_load_met']:g}")
    elif found["highest_load_met"] is None:
        echo(f"breaking point: SLAs already missed at load x{found['load']:g}, the lowest tried")
    else:
        missed = "; ".join(f"{stage}: {', '.join(b)}" for stage, b in found["breaches"].items())
        echo(
            f"breaking point: load x{found['load']:.3f} (all met at x"
            f"{found['highest_load_met']:.3f}): {missed}"
        )


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
