"""Database work the command does outside any service: migrating, and opening the gateway's
database for key management only when it is already migrated.

The command is synchronous (typer), the database layer is async; :func:`run_blocking` bridges
them, also when the caller (a test, a benchmark) already runs an event loop.
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from cxops.cli.components import migrations_location
from cxops.common.db import Database, DatabaseNotMigrated, is_sqlite
from cxops.common.migrations import upgrade

T = TypeVar("T")


def run_blocking(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run the coroutine made by ``factory`` to completion and return its result.

    Inside a running event loop ``asyncio.run`` is refused, so the coroutine then runs on a
    loop of its own in a worker thread (the caller's loop is blocked meanwhile, as any
    synchronous call would block it).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cxops-blocking") as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def display_url(url: str) -> str:
    """The URL with its password masked, fit for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


def migrate(component: str, url: str) -> None:
    """Bring ``component``'s database at ``url`` to the latest revision."""
    location = migrations_location(component)
    run_blocking(lambda: upgrade(url, location))


class NotMigrated(RuntimeError):
    """The database is missing or behind its migrations; the message says what to run."""


@asynccontextmanager
async def migrated_transaction(component: str, url: str) -> AsyncIterator[AsyncSession]:
    """One transaction on ``component``'s database, refused unless it is fully migrated.

    A command that manages keys must not create tables as a side effect (nor an empty SQLite
    file): migrating is a step of its own, ``cxops migrate``.
    """
    hint = f"run `cxops migrate --service {component}` (or start the suite with `cxops up`)"
    _require_sqlite_file(url, hint)
    db = Database(url)
    try:
        try:
            await db.ensure_migrated(migrations_location(component))
        except DatabaseNotMigrated as exc:
            raise NotMigrated(f"{exc}; {hint}") from exc
        async with db.transaction() as session:
            yield session
    finally:
        await db.dispose()


def _require_sqlite_file(url: str, hint: str) -> None:
    """Connecting would create a missing SQLite file; say it is missing instead."""
    if is_sqlite(url):
        path = make_url(url).database
        if path and path != ":memory:" and not Path(path).exists():
            raise NotMigrated(f"no database at {path}; {hint}")
