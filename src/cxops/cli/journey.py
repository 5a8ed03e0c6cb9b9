"""``cxops journey``: mine interaction logs, resolve customer identities, and stress-test a
journey by simulation."""

import typer

from cxops.cli.main import lazy_group

#: Each command imports only what it needs: ``identities`` runs without polars, which ``mine``
#: and ``simulate`` load (a second of starting up).
app = typer.Typer(
    cls=lazy_group(
        {
            "identities": ("cxops.cli.journey_identities", "identities_command"),
            "mine": ("cxops.cli.journey_mine", "mine_command"),
            "simulate": ("cxops.cli.journey_simulate", "simulate_command"),
        }
    ),
    help="Journeys: what customers really do, who they are, and what more load would do.",
    no_args_is_help=True,
)
