"""The database: an async engine for SQLite (embedded) or PostgreSQL (production), a unit of work
per request, and the start-up check that refuses an unmigrated database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Protocol, TypeVar

import sqlalchemy as sa
from fastapi import Depends, Request
from sqlalchemy import event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL keeps the instant (``timestamptz``); SQLite has no such type and SQLAlchemy would
    drop the offset, storing a non-UTC time's wall clock and reading back naive values. So values
    are converted to UTC on the way in and tagged as UTC on the way out; a naive value is refused
    rather than guessed at.
    """

    impl = sa.DateTime
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=True)

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: cxops stores timezone-aware UTC times only")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)


class DatabaseNotMigrated(RuntimeError):
    """The database is behind (or ahead of) the code's migrations: run ``cxops migrate``."""


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An engine tuned for the backend. SQLite gets WAL, a busy timeout and ``BEGIN IMMEDIATE``
    so that concurrent writers queue instead of failing on a lock upgrade."""
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # One connection: SQLite has one writer at a time anyway, and queueing for the pool in
        # the event loop is far cheaper than connections spinning in SQLite's busy handler.
        engine = create_async_engine(
            url,
            echo=echo,
            connect_args={"timeout": 30},
            pool_size=1,
            max_overflow=0,
            pool_timeout=60,
        )
        _tune_sqlite(engine.sync_engine)
        return engine
    return create_async_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=10)


def _sqlite_writer_engine(url: str, *, echo: bool) -> sa.Engine:
    """The same SQLite file through the standard driver, for whole transactions run in one
    worker thread (see :meth:`Database.run_transaction`)."""
    sync_url = make_url(url).set(drivername="sqlite+pysqlite")
    engine = sa.create_engine(
        sync_url,
        echo=echo,
        connect_args={"timeout": 30},
        poolclass=sa.pool.SingletonThreadPool,
    )
    _tune_sqlite(engine)
    return engine


def _tune_sqlite(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let us issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


#: A transaction's notes for the commit hooks (``session.info``, or the one handed to the work
#: of :meth:`Database.run_transaction`): what it did that others must hear of once committed.
CommitInfo = dict[str, Any]
T = TypeVar("T")


class Database:
    """One engine and its session factory; services hold exactly one."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine = create_engine(url, echo=echo)
        # A session class of its own, so that commit hooks (see on_commit) concern this
        # database only, not every session in the process.
        self._session_class: type[Session] = type("CxopsSession", (Session,), {})
        self.sessionmaker = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=self._session_class
        )
        self._commit_hooks: list[Callable[[CommitInfo], None]] = []
        event.listen(self._session_class, "after_commit", lambda s: self._committed(s.info))
        self._writer: sa.Engine | None = None
        self._writer_thread: ThreadPoolExecutor | None = None
        if is_sqlite(url):
            self._writer = _sqlite_writer_engine(url, echo=echo)
            self._writer_thread = ThreadPoolExecutor(1, thread_name_prefix="cxops-sqlite-writer")

    @property
    def sync_engines(self) -> list[sa.Engine]:
        """Every engine statements go through (for listeners such as the tenant guard)."""
        return [self.engine.sync_engine] + ([self._writer] if self._writer is not None else [])

    def on_commit(self, hook: Callable[[CommitInfo], None]) -> None:
        """Call ``hook`` with the transaction's notes after each successful commit on this
        database: how work that must follow a commit (publishing the outbox) learns of it."""
        self._commit_hooks.append(hook)

    def _committed(self, info: CommitInfo) -> None:
        for hook in self._commit_hooks:
            hook(info)

    async def run_transaction(self, work: Callable[[sa.Connection, CommitInfo], T]) -> T:
        """Run the synchronous ``work(connection, info)`` in one transaction, committed when it
        returns, rolled back if it raises.

        For short write bursts that are all statements and no waiting (a group commit, the
        outbox relay's bookkeeping). On SQLite the whole transaction is one hand-off to a worker
        thread, where the async driver makes several per statement, each a wait for a busy
        machine to schedule that thread: under load that was most of a request's time. On
        PostgreSQL it runs on the async connection, as any statement does.
        """
        info: CommitInfo = {}
        if self._writer is not None and self._writer_thread is not None:
            writer = self._writer

            def transaction() -> T:
                with writer.begin() as connection:
                    return work(connection, info)

            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(self._writer_thread, transaction)
        else:
            async with self.engine.begin() as connection:
                result = await connection.run_sync(work, info)
        self._committed(info)
        return result

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session that commits when the block ends and rolls back if it raises."""
        async with self.sessionmaker() as session, session.begin():
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def ensure_migrated(self, script_location: str | Path) -> None:
        from cxops.common.migrations import current_and_head

        current, head = await current_and_head(self.engine, script_location)
        if current != head:
            raise DatabaseNotMigrated(
                f"database {make_url(self.url).render_as_string(hide_password=True)} is at "
                f"revision {sorted(current) or 'none'}, the code expects {sorted(head)}; "
                "run `cxops migrate` first"
            )

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._writer is not None and self._writer_thread is not None:
            writer = self._writer
            await asyncio.get_running_loop().run_in_executor(self._writer_thread, writer.dispose)
            self._writer_thread.shutdown(wait=True)


class HoldsDatabase(Protocol):
    """What an app's state (``app.state.cxops``) offers the unit of work."""

    @property
    def db(self) -> Database: ...


async def unit_of_work(request: Request) -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: one transaction per request, committed after the endpoint returns.

    Service functions never commit. Outbox rows written in the request are published as soon as
    the commit succeeds (the outbox's commit hook wakes its relay), not at the next poll.
    """
    state: HoldsDatabase = request.app.state.cxops
    async with state.db.sessionmaker() as session, session.begin():
        yield session


#: ``scope="function"`` makes FastAPI commit before the response is sent, so a failed commit is
#: answered with an error instead of a success the database never saw.
SessionDep = Annotated[AsyncSession, Depends(unit_of_work, scope="function")]


def insert_if_absent(dialect: str, table: sa.Table, *, unique: Sequence[str] | None = None) -> Any:
    """INSERT … ON CONFLICT DO NOTHING (on the ``unique`` columns, else any conflict) in
    ``dialect`` (``postgresql`` or ``sqlite``)."""
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    return insert.on_conflict_do_nothing(index_elements=unique)


async def once_per_transaction(
    session: AsyncSession, key: tuple[Any, ...], load: Callable[[], Awaitable[T]]
) -> T:
    """``load()``'s answer, read once in ``session`` and remembered until it ends: a consumer
    handling a batch of events in one transaction asks for the same definitions (a tenant's
    maps, its triggers) once per event, and would otherwise query them a thousand times. Only
    for reads the transaction itself does not change."""
    memo: dict[tuple[Any, ...], Any] = session.info.setdefault("cxops.once_per_transaction", {})
    if key not in memo:
        memo[key] = await load()
    return memo[key]  # type: ignore[no-any-return]


def take_tenant_lock(connection: sa.Connection, table: sa.Table, tenant: str) -> None:
    """Update the tenant's row of a lock ``table`` (``tenant``, ``version``), created on first
    use: PostgreSQL holds the row's lock to the end of the transaction, so the tenant's other
    transactions that take it wait their turn (SQLite has one writer at a time anyway)."""
    bump = sa.update(table).where(table.c.tenant == tenant).values(version=table.c.version + 1)
    if connection.execute(bump).rowcount:
        return
    dialect = connection.dialect.name
    connection.execute(insert_if_absent(dialect, table).values(tenant=tenant, version=0))
    connection.execute(bump)
