"""``cxops staffing``: Erlang C and Erlang A staffing, for one interval or a whole forecast."""

import json
import math
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from cxops.routing.domain import erlang_a
from cxops.routing.domain.staffing import Demand, Target, evaluate, plan, required
from cxops.routing.formats import read_forecast

app = typer.Typer(
    help="Staffing: the agents a queue needs, and what a number of agents achieves.",
    no_args_is_help=True,
)

Volume = Annotated[float, typer.Option(help="Contacts offered in the interval.", min=0)]
AhtSeconds = Annotated[float, typer.Option(help="Mean handle time, seconds.", min=0.001)]
TargetSeconds = Annotated[float, typer.Option(help="Answer within this many seconds.", min=0)]
ServiceLevel = Annotated[float, typer.Option(help="Share to answer within the target, 0-1.")]
IntervalMinutes = Annotated[float, typer.Option(help="Interval length.", min=0.001)]
Shrinkage = Annotated[float, typer.Option(help="Share of paid time off the phones, 0-1.")]
MaxOccupancy = Annotated[float, typer.Option(help="Highest acceptable occupancy, 0-1.")]
Agents = Annotated[
    int | None, typer.Option(help="Evaluate this many agents instead of sizing.", min=0)
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]

FIELDS = (
    "traffic_erlangs",
    "agents",
    "staff",
    "wait_probability",
    "service_level",
    "asa_seconds",
    "occupancy",
    "abandon_probability",
)


def _figures(result: object) -> dict[str, Any]:
    """The contracted JSON fields, rounded; an infinite wait is ``null``."""
    values = asdict(result)  # type: ignore[call-overload]
    out: dict[str, Any] = {}
    for name in FIELDS:
        if name not in values:
            continue
        value = values[name]
        if isinstance(value, float):
            value = None if math.isinf(value) else round(value, 6)
        out[name] = value
    return out


def _inputs(
    volume: float,
    aht_seconds: float,
    interval_minutes: float,
    target_seconds: float,
    service_level: float,
    shrinkage: float,
    max_occupancy: float,
) -> tuple[Demand, Target]:
    try:
        return (
            Demand(volume, aht_seconds, interval_minutes * 60),
            Target(target_seconds, service_level, shrinkage, max_occupancy),
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _print(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result))
        return
    for name, value in result.items():
        typer.echo(f"{name:>20}  {value}")


@app.command("erlang-c")
def erlang_c_command(
    volume: Volume,
    aht_seconds: AhtSeconds,
    target_seconds: TargetSeconds,
    service_level: ServiceLevel,
    interval_minutes: IntervalMinutes = 30,
    shrinkage: Shrinkage = 0.0,
    max_occupancy: MaxOccupancy = 1.0,
    agents: Agents = None,
    as_json: AsJson = False,
) -> None:
    """The agents needed for a service level (or, with --agents, the figures for N agents)."""
    demand, target = _inputs(
        volume,
        aht_seconds,
        interval_minutes,
        target_seconds,
        service_level,
        shrinkage,
        max_occupancy,
    )
    result = (
        evaluate(demand, agents, answer_seconds=target_seconds, shrinkage=shrinkage)
        if agents is not None
        else required(demand, target)
    )
    _print(_figures(result), as_json)


@app.command("erlang-a")
def erlang_a_command(
    volume: Volume,
    aht_seconds: AhtSeconds,
    target_seconds: TargetSeconds,
    patience_seconds: Annotated[
        float, typer.Option(help="Customers' mean patience before hanging up.", min=0.001)
    ],
    service_level: ServiceLevel = 0.8,
    interval_minutes: IntervalMinutes = 30,
    shrinkage: Shrinkage = 0.0,
    max_occupancy: MaxOccupancy = 1.0,
    agents: Agents = None,
    as_json: AsJson = False,
) -> None:
    """Like erlang-c, with customers who abandon: adds the probability of abandoning."""
    demand, target = _inputs(
        volume,
        aht_seconds,
        interval_minutes,
        target_seconds,
        service_level,
        shrinkage,
        max_occupancy,
    )
    if agents is not None and agents < 1:
        raise typer.BadParameter("agents must be at least 1", param_hint="--agents")
    result = (
        erlang_a.evaluate(
            demand,
            agents,
            patience_seconds=patience_seconds,
            answer_seconds=target_seconds,
            shrinkage=shrinkage,
        )
        if agents is not None
        else erlang_a.required(demand, target, patience_seconds=patience_seconds)
    )
    _print(_figures(result), as_json)


@app.command("plan")
def plan_command(
    forecast: Annotated[
        Path, typer.Argument(help="CSV of interval_start,volume[,aht_seconds].", exists=True)
    ],
    aht_seconds: AhtSeconds,
    target_seconds: TargetSeconds,
    service_level: ServiceLevel,
    shrinkage: Shrinkage = 0.0,
    max_occupancy: MaxOccupancy = 1.0,
    interval_minutes: Annotated[
        float | None,
        typer.Option(help="Interval length; by default the spacing of the starts, else 30."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Erlang C staffing for every interval of a forecast, and the totals."""
    try:
        intervals, spacing = read_forecast(forecast, default_aht_seconds=aht_seconds)
        seconds = interval_minutes * 60 if interval_minutes else (spacing or 1800.0)
        target = Target(target_seconds, service_level, shrinkage, max_occupancy)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    rows, totals = plan(intervals, interval_seconds=seconds, target=target)
    result = {
        "interval_minutes": seconds / 60,
        "intervals": [
            {
                "interval_start": row.start,
                "volume": row.volume,
                "aht_seconds": row.aht_seconds,
                **_figures(row.staffing),
            }
            for row in rows
        ],
        "totals": {
            k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(totals).items()
        },
    }
    if as_json:
        typer.echo(json.dumps(result))
        return
    _print_plan(result, typer.echo)


def _print_plan(result: dict[str, Any], echo: Callable[[str], None]) -> None:
    echo(
        f"{'interval_start':<26}{'volume':>9}{'erlangs':>9}{'agents':>8}{'staff':>7}"
        f"{'SL':>8}{'ASA s':>9}{'occ':>7}"
    )
    for row in result["intervals"]:
        asa = "-" if row["asa_seconds"] is None else f"{row['asa_seconds']:.1f}"
        echo(
            f"{row['interval_start']:<26}{row['volume']:>9.0f}{row['traffic_erlangs']:>9.2f}"
            f"{row['agents']:>8}{row['staff']:>7}{row['service_level']:>8.1%}{asa:>9}"
            f"{row['occupancy']:>7.1%}"
        )
    totals = result["totals"]
    echo(
        f"totals: {totals['volume']:.0f} contacts, {totals['staff_hours']:.1f} staff hours "
        f"({totals['agent_hours']:.1f} on the phones), peak {totals['peak_staff']} staff, "
        f"service level {totals['service_level']:.1%}, ASA {totals['asa_seconds']:.1f} s"
    )
