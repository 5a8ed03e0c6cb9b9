"""``cxops routing``: replay a scenario through the routing engine in simulated time."""

import json
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import typer

from cxops.cli.json_input import read_json
from cxops.routing.domain.replay import replay
from cxops.routing.formats import ScenarioError, load_scenario, report

app = typer.Typer(help="Routing: try rules on recorded or invented traffic.", no_args_is_help=True)


@app.command("replay")
def replay_command(
    scenario: Annotated[
        str,
        typer.Argument(
            metavar="SCENARIO.json",
            help="Scenario JSON file (see services/routing/README.md), or - for stdin.",
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole replay as JSON.")
    ] = False,
) -> None:
    """Replay agents and tasks through the routing engine in simulated time.

    Prints every offer and assignment, escalations, and answer times, service level and
    occupancy per queue, tier and agent."""
    try:
        loaded = load_scenario(read_json(scenario))
    except ScenarioError as exc:
        places = "\n".join(f"  {place}: {message}" for place, message in exc.problems)
        raise typer.BadParameter(f"{scenario} is not a valid scenario:\n{places}") from exc
    result = report(replay(loaded))
    if as_json:
        typer.echo(json.dumps(result))
    else:
        _print_summary(result, typer.echo)


def _print_summary(result: Mapping[str, Any], echo: Callable[[str], None]) -> None:
    totals = result["totals"]
    echo(
        f"{totals['tasks']} tasks over {totals['simulated_seconds']:g} s: "
        f"{totals['answered']} answered, {totals['abandoned']} abandoned, "
        f"{totals['unanswered']} never answered; {totals['offers']} offers, "
        f"{totals['escalations']} escalations, service level {_share(totals['service_level'])}"
    )
    for title in ("queues", "tiers"):
        echo("")
        echo(
            f"{title[:-1]:<20}{'tasks':>7}{'answered':>10}{'abandoned':>11}{'SL':>8}"
            f"{'mean s':>9}{'p90 s':>9}{'max s':>9}{'escalated':>11}"
        )
        for name, row in result[title].items():
            echo(
                f"{name:<20}{row['tasks']:>7}{row['answered']:>10}{row['abandoned']:>11}"
                f"{_share(row['service_level']):>8}{_seconds(row['answer_seconds_mean']):>9}"
                f"{_seconds(row['answer_seconds_p90']):>9}{_seconds(row['answer_seconds_max']):>9}"
                f"{row['escalations']:>11}"
            )
    echo("")
    echo(
        f"{'agent':<20}{'offers':>8}{'accepted':>10}{'rejected':>10}{'timeouts':>10}"
        f"{'handled':>9}{'occupancy':>11}"
    )
    for name, row in result["agents"].items():
        echo(
            f"{name:<20}{row['offers']:>8}{row['accepted']:>10}{row['rejected']:>10}"
            f"{row['timeouts']:>10}{row['handled']:>9}{_share(row['occupancy']):>11}"
        )
    for escalation in result["escalations"]:
        echo(f"escalated {escalation['task']} at {escalation['at']:g} s: {escalation['detail']}")
    for away in result["agents_away"]:
        echo(f"{away['agent']} set away at {away['at']:g} s: {away['reason']}")
    for change in result["proficiency_changes"]:
        echo(f"{change['agent']} at {change['at']:g} s: {change['change']}")
    echo("(--json prints every offer and assignment)")


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
