"""``cxops keys``: the gateway's API keys, managed on its database directly.

This is how the first keys exist (before any key could call an admin API) and how an operator
revokes a leaked key even when the gateway is down. The plaintext of a key is printed once, at
creation; the database keeps only its hash.
"""

import json
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from cxops.cli.components import embedded_database_url
from cxops.cli.database import NotMigrated, migrated_transaction, run_blocking
from cxops.common.auth import Role
from cxops.common.components import GATEWAY

T = TypeVar("T")

app = typer.Typer(
    help="Create, list and revoke the gateway's API keys.",
    no_args_is_help=True,
)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="CXOPS_GATEWAY_DATABASE_URL",
        show_envvar=True,
        help="The gateway's database; default: the embedded runtime's <var-dir>/gateway.db.",
    ),
]
VarDir = Annotated[
    Path,
    typer.Option("--var-dir", help="The embedded runtime's data directory."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def gateway_database_url(database_url: str | None, var_dir: Path) -> str:
    return database_url or embedded_database_url(var_dir, GATEWAY)


def on_gateway_db(url: str, work: Callable[[AsyncSession], Coroutine[Any, Any, T]]) -> T:
    """Run ``work`` in one transaction on the migrated gateway database, or exit 1 saying why."""

    async def _run() -> T:
        async with migrated_transaction(GATEWAY, url) as session:
            return await work(session)

    try:
        return run_blocking(_run)
    except NotMigrated as exc:
        raise fail(str(exc)) from exc


def key_fields(record: Any) -> dict[str, Any]:
    """The printable fields of a key record (the record never holds the hash)."""
    fields: dict[str, Any] = record.model_dump(mode="json")
    return fields


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


@app.command("create")
def create(
    tenant: Annotated[str, typer.Option(help="The tenant the key acts for.")],
    role: Annotated[Role, typer.Option(help="What the key may do.")],
    name: Annotated[str | None, typer.Option(help="A label: who or what holds the key.")] = None,
    agent_id: Annotated[
        uuid.UUID | None,
        typer.Option(
            "--agent-id",
            metavar="UUID",
            help="Bind a key of role agent to this routing agent: it may act on that agent's "
            "offers only. Only for --role agent.",
        ),
    ] = None,
    database_url: DatabaseUrl = None,
    var_dir: VarDir = Path("var"),
    as_json: AsJson = False,
) -> None:
    """Create a key and print it. This is the only time the key is shown.

    The key alone goes to standard output (``KEY=$(cxops keys create ...)`` works); the
    details go to standard error. An agent's key is bound to their routing agent with
    ``--role agent --agent-id <id>``; an integration acting for many agents gets
    ``--role integration`` instead.
    """
    from cxops.gateway.keys import create_key

    label = name or f"{tenant}-{role.value}"

    async def _create(session: AsyncSession) -> tuple[Any, str]:
        result: tuple[Any, str] = await create_key(
            session, tenant=tenant, role=role, name=label, agent_id=agent_id
        )
        return result

    try:
        record, plaintext = on_gateway_db(gateway_database_url(database_url, var_dir), _create)
    except ValueError as exc:  # a tenant that is not a slug, a name too long, a misplaced agent_id
        raise fail(str(exc)) from exc
    details = key_fields(record)
    if as_json:
        typer.echo(json.dumps({**details, "key": plaintext}))
        return
    bound = f", agent {details['agent_id']}" if details["agent_id"] else ""
    typer.echo(
        f"Created key {details['id']} ({details['name']}): tenant {details['tenant']}, "
        f"role {details['role']}{bound}. Store it now; it is not shown again.",
        err=True,
    )
    typer.echo(plaintext)


@app.command("list")
def list_(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None,
    database_url: DatabaseUrl = None,
    var_dir: VarDir = Path("var"),
    as_json: AsJson = False,
) -> None:
    """List keys (revoked ones included, with the time they were revoked)."""
    from cxops.gateway.keys import list_keys

    async def _list(session: AsyncSession) -> list[Any]:
        return list(await list_keys(session, tenant=tenant))

    records = [
        key_fields(record)
        for record in on_gateway_db(gateway_database_url(database_url, var_dir), _list)
    ]
    if as_json:
        typer.echo(json.dumps(records))
        return
    if not records:
        typer.echo("no keys", err=True)
        return
    columns = ("id", "prefix", "tenant", "role", "agent_id", "name", "created_at", "revoked_at")
    rows = [["-" if record[c] is None else str(record[c]) for c in columns] for record in records]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(columns)]
    for row in [[c.upper() for c in columns], *rows]:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


@app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id, as `cxops keys list` shows it.")],
    database_url: DatabaseUrl = None,
    var_dir: VarDir = Path("var"),
) -> None:
    """Revoke a key: from now on the gateway answers 401 to it."""
    from cxops.gateway.keys import KeyNotFound, revoke_key

    async def _revoke(session: AsyncSession) -> Any:
        return await revoke_key(session, key_id=key_id)

    try:
        record = on_gateway_db(gateway_database_url(database_url, var_dir), _revoke)
    except KeyNotFound as exc:
        raise fail(str(exc)) from exc
    details = key_fields(record)
    typer.echo(f"Revoked key {details['id']} ({details['name']}) at {details['revoked_at']}.")
