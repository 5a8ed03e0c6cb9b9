"""``cxops feedback``: enrich verbatims, score surveys with honest error bars, and find
complaint spikes."""

import typer

from cxops.cli.feedback_analyze import analyze_command
from cxops.cli.feedback_score import experiment_command, score_command
from cxops.cli.feedback_spikes import spikes_command

app = typer.Typer(
    help="Feedback: what customers say, how the scores move, and when to raise an alarm.",
    no_args_is_help=True,
)
app.command("score")(score_command)
app.command("experiment")(experiment_command)
app.command("spikes")(spikes_command)
app.command("analyze")(analyze_command)
