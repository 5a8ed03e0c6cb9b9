"""``cxops migrate``: bring databases to the latest revision, as a step of its own.

Services refuse an unmigrated database instead of migrating while serving; this command is what
migrates them, on a laptop and as the Kubernetes Job before a rollout. Each component's database
comes from its own setting (``CXOPS_<COMPONENT>_DATABASE_URL``), the same variable the running
service reads, and defaults to the embedded runtime's SQLite file.
"""

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from cxops.cli.components import embedded_database_url
from cxops.cli.database import display_url, migrate
from cxops.common.components import COMPONENTS, env_prefix

ALL = "all"
#: ``all`` or one component, from the one list.
MigrationTarget = StrEnum(  # type: ignore[misc]
    "MigrationTarget", {name.upper(): name for name in (ALL, *COMPONENTS)}
)


def database_url_for(component: str, var_dir: Path) -> str:
    """The component's configured database, else its embedded SQLite file."""
    return os.environ.get(f"{env_prefix(component)}DATABASE_URL") or embedded_database_url(
        var_dir, component
    )


def migrate_command(
    service: Annotated[
        MigrationTarget, typer.Option("--service", help="Which database to migrate.")
    ] = MigrationTarget(ALL),
    var_dir: Annotated[
        Path,
        typer.Option(
            "--var-dir", help="Where the embedded SQLite files are, for components without a URL."
        ),
    ] = Path("var"),
) -> None:
    """Run the migrations of every component (or one) on its database."""
    components = COMPONENTS if service == ALL else (service.value,)
    for component in components:
        url = database_url_for(component, var_dir)
        try:
            migrate(component, url)
        except Exception as exc:
            where = display_url(url)
            typer.echo(f"error: migrating {component} at {where} failed: {exc}", err=True)
            raise typer.Exit(1) from exc
        typer.echo(f"{component}: {display_url(url)} is at the latest revision")
