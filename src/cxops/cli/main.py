"""The ``cxops`` command.

Each area is a typer sub-app or a command registered here, so later areas (``cxops staffing``,
``cxops journey``) plug in with one ``app.add_typer`` line and their own module.
"""

import typer

from cxops.cli import journey, keys, routing, staffing
from cxops.cli.migrate import migrate_command
from cxops.cli.up import up_command

app = typer.Typer(
    name="cxops",
    help="cxops: customer-experience operations as software.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("up")(up_command)
app.command("migrate")(migrate_command)
app.add_typer(keys.app, name="keys")
app.add_typer(staffing.app, name="staffing")
app.add_typer(routing.app, name="routing")
app.add_typer(journey.app, name="journey")
