"""``cxops nats-keys DIR``: the components' NATS identities for a production installation.

It writes one NKey seed per component (``DIR/<component>.nk``, 0600; a seed already there is
kept) and prints each public key as ``<COMPONENT>_NATS_NKEY=U…``: the ConfigMap the NATS
chart reads, and with ``--seeds`` also each seed as ``<COMPONENT>_NATS_SEED=SU…``, the lines
``.env`` takes for docker-compose (docs/deploy.md). The seeds become the components' Secrets;
the server only ever sees the public keys.
"""

from pathlib import Path
from typing import Annotated

import typer

from cxops.cli.nats_auth import CredentialsError, ensure_seeds, public_key_variable, seed_file


def nats_keys_command(
    directory: Annotated[
        Path, typer.Argument(help="Where the seeds are written (or kept), one file per component.")
    ],
    seeds: Annotated[
        bool, typer.Option("--seeds", help="Also print the seeds (secrets), for a .env file.")
    ] = False,
) -> None:
    """Make (or keep) each component's NATS NKey seed and print the public keys."""
    try:
        public_keys = ensure_seeds(directory)
    except CredentialsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    for component, key in public_keys.items():
        if seeds:
            seed = seed_file(directory, component).read_text().strip()
            typer.echo(f"{component.upper()}_NATS_SEED={seed}")
        typer.echo(f"{public_key_variable(component)}={key}")
