"""The ``cxops`` command.

Each area lives in a module of its own and is imported only when one of its commands runs, so
``cxops staffing`` does not pay for the database stack that ``cxops keys`` loads, nor
``cxops keys`` for polars (the imports took seconds together). A new area is one line in
:data:`AREAS`; ``cxops --help`` imports them all to show their help.
"""

import importlib

import click
import typer
from typer.core import TyperGroup

#: Command name → (module, attribute): a Typer app (a group of commands) or a command function.
AREAS: dict[str, tuple[str, str]] = {
    "up": ("cxops.cli.up", "up_command"),
    "migrate": ("cxops.cli.migrate", "migrate_command"),
    "keys": ("cxops.cli.keys", "app"),
    "nats-keys": ("cxops.cli.nats_keys", "nats_keys_command"),
    "staffing": ("cxops.cli.staffing", "app"),
    "routing": ("cxops.cli.routing", "app"),
    "journey": ("cxops.cli.journey", "app"),
    "feedback": ("cxops.cli.feedback", "app"),
    "scorecard": ("cxops.cli.scorecard", "app"),
}


class LazyGroup(TyperGroup):
    """A group that lists ``targets`` (command name → (module, attribute)) and imports a
    command's module only when that command is asked for."""

    targets: dict[str, tuple[str, str]] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.targets)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.targets.get(cmd_name)
        if target is None:
            return None
        module, attribute = target
        loaded = getattr(importlib.import_module(module), attribute)
        if isinstance(loaded, typer.Typer):
            command: click.Command = typer.main.get_group(loaded)
        else:
            single = typer.Typer()
            single.command(cmd_name)(loaded)
            command = typer.main.get_command(single)
        command.name = cmd_name
        return command


def lazy_group(targets: dict[str, tuple[str, str]]) -> type[LazyGroup]:
    """A :class:`LazyGroup` class for these targets, for ``typer.Typer(cls=...)``."""
    return type("Lazy", (LazyGroup,), {"targets": targets})


app = typer.Typer(
    name="cxops",
    cls=lazy_group(AREAS),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def cxops() -> None:
    """cxops: customer-experience operations as software."""
