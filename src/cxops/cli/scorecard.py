"""``cxops scorecard``: evaluate balanced scorecards."""

import typer

from cxops.cli.scorecard_evaluate import evaluate_command

app = typer.Typer(
    help="Scorecards: weighted metrics against targets, real variances and their action plans.",
    no_args_is_help=True,
)
app.command("evaluate")(evaluate_command)
