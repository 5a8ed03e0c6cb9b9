"""``cxops journey``: mine interaction logs, resolve customer identities, and stress-test a
journey by simulation."""

import typer

from cxops.cli.journey_identities import identities_command
from cxops.cli.journey_mine import mine_command
from cxops.cli.journey_simulate import simulate_command

app = typer.Typer(
    help="Journeys: what customers really do, who they are, and what more load would do.",
    no_args_is_help=True,
)
app.command("identities")(identities_command)
app.command("mine")(mine_command)
app.command("simulate")(simulate_command)
