"""Alembic, run as a step of its own (``cxops migrate``, the Kubernetes Job), never by serving.

Every service's ``migrations/env.py`` calls :func:`run_env`; the same code runs migrations from
Python (sharing one connection, as Alembic documents for asyncio) and from the alembic CLI.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from cxops.common.db import create_engine, is_sqlite


def alembic_config(script_location: str | Path, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


async def upgrade(url: str, script_location: str | Path, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (the latest by default)."""
    await _run_command(command.upgrade, url, script_location, revision)


async def downgrade(url: str, script_location: str | Path, revision: str = "base") -> None:
    """Take the database at ``url`` down to ``revision`` (to nothing by default)."""
    await _run_command(command.downgrade, url, script_location, revision)


async def _run_command(
    alembic_command: Callable[[Config, str], None],
    url: str,
    script_location: str | Path,
    revision: str,
) -> None:
    engine = create_engine(url)
    cfg = alembic_config(script_location, url)
    try:
        async with engine.begin() as conn:

            def _run(sync_conn: Connection) -> None:
                cfg.attributes["connection"] = sync_conn
                alembic_command(cfg, revision)

            await conn.run_sync(_run)
    finally:
        await engine.dispose()


async def current_and_head(
    engine: AsyncEngine, script_location: str | Path
) -> tuple[set[str], set[str]]:
    heads = set(ScriptDirectory.from_config(alembic_config(script_location, "")).get_heads())
    async with engine.connect() as conn:

        def _current(sync_conn: Connection) -> set[str]:
            return set(MigrationContext.configure(sync_conn).get_current_heads())

        current = await conn.run_sync(_current)
    return current, heads


def run_env(target_metadata: sa.MetaData | Sequence[sa.MetaData] | None = None) -> None:
    """The body of a service's ``env.py``; pass the service's metadata and the event tables'."""
    connection: Connection | None = context.config.attributes.get("connection")
    if connection is not None:
        _run_on(connection, target_metadata)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url (or call cxops.common.migrations.upgrade)")

    async def _offline_engine() -> None:
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(_run_on, target_metadata)
        await engine.dispose()

    asyncio.run(_offline_engine())


def _run_on(connection: Connection, target_metadata: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=is_sqlite(str(connection.engine.url)),
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def migrate_main(*, component: str, env_prefix: str, script_location: str | Path) -> int:
    """The body of ``python -m cxops.common.migrate <component>``: the migration step of the
    component's container image (the compose one-shot service, the Kubernetes Job).

    The database is the one the running component reads, ``<env_prefix>DATABASE_URL``, and it
    must be set: in a container, falling back to a default SQLite file would "migrate" a file
    nobody serves from. Only that variable is read, so a migration needs no signing secret.
    Returns the process's exit status.
    """
    variable = f"{env_prefix}DATABASE_URL"
    url = os.environ.get(variable, "").strip()
    if not url:
        print(f"error: {variable} is not set; it names {component}'s database", file=sys.stderr)
        return 2
    where = make_url(url).render_as_string(hide_password=True)
    try:
        asyncio.run(upgrade(url, script_location))
    except Exception as exc:  # noqa: BLE001 (any failure: one line and a non-zero exit)
        print(f"error: migrating {component} at {where} failed: {exc}", file=sys.stderr)
        return 1
    print(f"{component}: {where} is at the latest revision")
    return 0
