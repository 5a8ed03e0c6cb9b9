"""``cxops staffing``: Erlang C staffing from the command line."""

import json
import math
from typing import Annotated

import typer

from cxops.routing.domain.staffing import Demand, Staffing, Target, evaluate, required

app = typer.Typer(help="Staffing: the agents a queue needs, and what a number of agents achieves.")


def _as_dict(figures: Staffing) -> dict[str, float | int | None]:
    def finite(value: float) -> float | None:
        return None if math.isinf(value) else round(value, 6)

    return {
        "traffic_erlangs": round(figures.traffic_erlangs, 6),
        "agents": figures.agents,
        "staff": figures.staff,
        "wait_probability": finite(figures.wait_probability),
        "service_level": finite(figures.service_level),
        "asa_seconds": finite(figures.asa_seconds),
        "occupancy": finite(figures.occupancy),
    }


@app.command("erlang-c")
def erlang_c(
    volume: Annotated[float, typer.Option(help="Contacts offered in the interval.", min=0)],
    aht_seconds: Annotated[float, typer.Option(help="Mean handle time, seconds.", min=0.001)],
    target_seconds: Annotated[float, typer.Option(help="Answer within this many seconds.", min=0)],
    service_level: Annotated[
        float, typer.Option(help="Share to answer within the target (0-1, exclusive).")
    ],
    interval_minutes: Annotated[float, typer.Option(help="Interval length.", min=0.001)] = 30,
    shrinkage: Annotated[float, typer.Option(help="Share of paid time off the phones.")] = 0.0,
    max_occupancy: Annotated[float, typer.Option(help="Highest acceptable occupancy.")] = 1.0,
    agents: Annotated[
        int | None, typer.Option(help="Evaluate this many agents instead of sizing.", min=0)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The agents needed for a service level (or, with --agents, the figures for N agents)."""
    try:
        demand = Demand(volume, aht_seconds, interval_minutes * 60)
        target = Target(target_seconds, service_level, shrinkage, max_occupancy)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    figures = (
        evaluate(demand, agents, answer_seconds=target_seconds, shrinkage=shrinkage)
        if agents is not None
        else required(demand, target)
    )
    result = _as_dict(figures)
    if as_json:
        typer.echo(json.dumps(result))
        return
    for name, value in result.items():
        typer.echo(f"{name:>16}  {value}")
