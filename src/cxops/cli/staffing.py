"""``cxops staffing``: Erlang C and Erlang A staffing, for one interval or a whole forecast.

The options are the fields of the routing API's staffing requests and are read by the same
models (:mod:`cxops.routing.formats`), and the figures come from the same functions
(:mod:`cxops.routing.staffing`), so ``--json`` prints what ``POST /v1/routing/staffing/...``
answers for the same input.
"""

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from cxops.routing import staffing
from cxops.routing.formats import (
    DEFAULT_ERLANG_A_SERVICE_LEVEL,
    DEFAULT_INTERVAL_MINUTES,
    DEFAULT_MAX_OCCUPANCY,
    DEFAULT_SHRINKAGE,
    ErlangARequest,
    ErlangCRequest,
    read_forecast,
    staffing_input,
)

app = typer.Typer(
    help="Staffing: the agents a queue needs, and what a number of agents achieves.",
    no_args_is_help=True,
)

Volume = Annotated[float, typer.Option(help="Contacts offered in the interval.")]
AhtSeconds = Annotated[float, typer.Option(help="Mean handle time, seconds.")]
TargetSeconds = Annotated[float, typer.Option(help="Answer within this many seconds.")]
ServiceLevel = Annotated[float, typer.Option(help="Share to answer within the target, 0-1.")]
IntervalMinutes = Annotated[float, typer.Option(help="Interval length.")]
Shrinkage = Annotated[float, typer.Option(help="Share of paid time off the phones, 0-1.")]
MaxOccupancy = Annotated[float, typer.Option(help="Highest acceptable occupancy, 0-1.")]
Agents = Annotated[int | None, typer.Option(help="Evaluate this many agents instead of sizing.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]

RequestT = TypeVar("RequestT", ErlangCRequest, ErlangARequest)


def _request(model: type[RequestT], options: Mapping[str, object]) -> RequestT:
    try:
        return staffing_input(model, options)
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
    interval_minutes: IntervalMinutes = DEFAULT_INTERVAL_MINUTES,
    shrinkage: Shrinkage = DEFAULT_SHRINKAGE,
    max_occupancy: MaxOccupancy = DEFAULT_MAX_OCCUPANCY,
    agents: Agents = None,
    as_json: AsJson = False,
) -> None:
    """The agents needed for a service level (or, with --agents, the figures for N agents)."""
    request = _request(
        ErlangCRequest,
        {
            "volume": volume,
            "interval_minutes": interval_minutes,
            "aht_seconds": aht_seconds,
            "target_seconds": target_seconds,
            "service_level": service_level,
            "shrinkage": shrinkage,
            "max_occupancy": max_occupancy,
            "agents": agents,
        },
    )
    _print(staffing.erlang_c(request=request).model_dump(mode="json"), as_json)


@app.command("erlang-a")
def erlang_a_command(
    volume: Volume,
    aht_seconds: AhtSeconds,
    target_seconds: TargetSeconds,
    patience_seconds: Annotated[
        float, typer.Option(help="Customers' mean patience before hanging up.")
    ],
    service_level: ServiceLevel = DEFAULT_ERLANG_A_SERVICE_LEVEL,
    interval_minutes: IntervalMinutes = DEFAULT_INTERVAL_MINUTES,
    shrinkage: Shrinkage = DEFAULT_SHRINKAGE,
    max_occupancy: MaxOccupancy = DEFAULT_MAX_OCCUPANCY,
    agents: Agents = None,
    as_json: AsJson = False,
) -> None:
    """Like erlang-c, with customers who abandon: adds the probability of abandoning."""
    request = _request(
        ErlangARequest,
        {
            "volume": volume,
            "interval_minutes": interval_minutes,
            "aht_seconds": aht_seconds,
            "target_seconds": target_seconds,
            "service_level": service_level,
            "shrinkage": shrinkage,
            "max_occupancy": max_occupancy,
            "patience_seconds": patience_seconds,
            "agents": agents,
        },
    )
    try:
        result = staffing.erlang_a(request=request)
    except ValueError as exc:  # a queue tail that does not converge
        raise typer.BadParameter(str(exc)) from exc
    _print(result.model_dump(mode="json"), as_json)


@app.command("plan")
def plan_command(
    forecast: Annotated[
        Path, typer.Argument(help="CSV of interval_start,volume[,aht_seconds].", exists=True)
    ],
    aht_seconds: AhtSeconds,
    target_seconds: TargetSeconds,
    service_level: ServiceLevel,
    shrinkage: Shrinkage = DEFAULT_SHRINKAGE,
    max_occupancy: MaxOccupancy = DEFAULT_MAX_OCCUPANCY,
    interval_minutes: Annotated[
        float | None,
        typer.Option(help="Interval length; by default the spacing of the starts, else 30."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Erlang C staffing for every interval of a forecast, and the totals."""
    try:
        request = read_forecast(
            forecast,
            {
                "interval_minutes": interval_minutes,
                "aht_seconds": aht_seconds,
                "target_seconds": target_seconds,
                "service_level": service_level,
                "shrinkage": shrinkage,
                "max_occupancy": max_occupancy,
            },
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    result = staffing.plan(request=request).model_dump(mode="json")
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
