import asyncio
from types import SimpleNamespace

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from cxops.common.db import Database, DatabaseNotMigrated, SessionDep, once_per_transaction
from cxops.common.errors import install_problem_handlers
from cxops.common.migrations import upgrade
from tests.common.conftest import SAMPLE_MIGRATIONS

tally = sa.table("sample_tally", sa.column("tenant"), sa.column("key"), sa.column("count"))


async def test_unmigrated_database_is_refused(database_url: str) -> None:
    db = Database(database_url)
    try:
        with pytest.raises(DatabaseNotMigrated, match="cxops migrate"):
            await db.ensure_migrated(SAMPLE_MIGRATIONS)
        await upgrade(database_url, SAMPLE_MIGRATIONS)
        await db.ensure_migrated(SAMPLE_MIGRATIONS)
        await upgrade(database_url, SAMPLE_MIGRATIONS)  # repeating is harmless
        await db.ensure_migrated(SAMPLE_MIGRATIONS)
    finally:
        await db.dispose()


def _app(db: Database) -> FastAPI:
    app = FastAPI()
    app.state.cxops = SimpleNamespace(db=db)
    install_problem_handlers(app)

    @app.post("/tally/{key}")
    async def add(key: str, session: SessionDep, fail: bool = False) -> dict[str, str]:
        await session.execute(sa.insert(tally).values(tenant="t", key=key, count=1))
        if fail:
            raise RuntimeError("the endpoint failed after writing")
        return {"key": key}

    return app


async def _count(db: Database) -> int:
    async with db.transaction() as session:
        return int(await session.scalar(sa.select(sa.func.count()).select_from(tally)) or 0)


async def test_unit_of_work_commits_once_and_rolls_back(sample_db: Database) -> None:
    transport = httpx.ASGITransport(app=_app(sample_db), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.post("/tally/a")).status_code == 200
        failed = await client.post("/tally/b", params={"fail": "true"})
        assert failed.status_code == 500
        assert await _count(sample_db) == 1
        # The commit itself fails (duplicate key): the caller must see an error, not a 200.
        duplicate = await client.post("/tally/a")
        assert duplicate.status_code == 500
        assert await _count(sample_db) == 1


async def test_concurrent_writers_do_not_fail(sample_db: Database) -> None:
    """SQLite's lock upgrade is the classic failure here; BEGIN IMMEDIATE makes writers queue."""

    async def write(i: int) -> None:
        async with sample_db.transaction() as session:
            await session.execute(sa.select(sa.func.count()).select_from(tally))
            await session.execute(sa.insert(tally).values(tenant="t", key=f"k{i}", count=i))

    await asyncio.gather(*(write(i) for i in range(40)))
    assert await _count(sample_db) == 40


async def test_a_read_is_remembered_for_its_transaction_only(sample_db: Database) -> None:
    async with sample_db.transaction() as session:
        await session.execute(sa.insert(tally).values(tenant="t", key="a", count=1))

    async def counted() -> int:
        reads.append(1)
        return len((await session.execute(sa.select(tally.c.key))).all())

    reads: list[int] = []
    async with sample_db.transaction() as session:
        first = await once_per_transaction(session, ("keys", "t"), counted)
        await session.execute(sa.insert(tally).values(tenant="t", key="b", count=1))
        again = await once_per_transaction(session, ("keys", "t"), counted)
        other = await once_per_transaction(session, ("keys", "u"), counted)
    assert (first, again, other) == (1, 1, 2)
    assert len(reads) == 2
    async with sample_db.transaction() as session:
        assert await once_per_transaction(session, ("keys", "t"), counted) == 2
    assert len(reads) == 3
