"""Group commit: many requests' writes in one transaction, each still all-or-nothing, on both
databases."""

import asyncio

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from cxops.common.db import Database
from cxops.common.events import Event
from cxops.common.events.group_commit import GroupCommit
from cxops.common.events.tables import outbox

tally = sa.Table(
    "sample_tally",
    sa.MetaData(),
    sa.Column("tenant", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("count", sa.Integer(), nullable=False),
)


def _event(key: str) -> Event:
    return Event.new(
        subject="cx.sample.tally.added.v1", source="/test", tenant="t", data={"k": key}
    )


async def _keys(db: Database) -> list[str]:
    async with db.sessionmaker() as session:
        return sorted((await session.scalars(sa.select(tally.c.key))).all())


async def _outbox_keys(db: Database) -> list[str]:
    async with db.sessionmaker() as session:
        bodies = (await session.scalars(sa.select(outbox.c.body))).all()
    return sorted(body.decode().split('"')[3] for body in bodies)


def _row(key: str) -> tuple[sa.Table, dict[str, object]]:
    return tally, {"tenant": "t", "key": key, "count": 1}


async def test_concurrent_writes_share_transactions_and_all_commit(sample_db: Database) -> None:
    group = GroupCommit(sample_db)
    commits = 0

    def count_commit(_session: object) -> None:
        nonlocal commits
        commits += 1

    sample_db.on_commit(count_commit)
    keys = [f"k{i:03}" for i in range(200)]
    await asyncio.gather(*(group.write(rows=[_row(k)], events=[_event(k)]) for k in keys))
    assert await _keys(sample_db) == keys
    assert await _outbox_keys(sample_db) == keys
    # 200 requests arriving together are not 200 transactions (the first goes alone, at once).
    assert commits < 20


async def test_a_failing_write_fails_alone(sample_db: Database) -> None:
    """A duplicate key in the middle of a batch: the batch is rolled back and replayed one by
    one, so only the request at fault gets the error and its event is not queued."""
    group = GroupCommit(sample_db)
    await group.write(rows=[_row("taken")])
    results = await asyncio.gather(
        *(
            group.write(rows=[_row(k)], events=[_event(k)])
            for k in ("a1", "a2", "taken", "a3", "a4")
        ),
        return_exceptions=True,
    )
    assert [type(r) for r in results] == [type(None)] * 2 + [IntegrityError] + [type(None)] * 2
    assert await _keys(sample_db) == ["a1", "a2", "a3", "a4", "taken"]
    assert await _outbox_keys(sample_db) == ["a1", "a2", "a3", "a4"]


async def test_one_request_writes_all_its_rows_or_none(sample_db: Database) -> None:
    group = GroupCommit(sample_db)
    await group.write(rows=[_row("x")])
    with pytest.raises(IntegrityError):
        await group.write(rows=[_row("y"), _row("x")], events=[_event("y")])
    assert await _keys(sample_db) == ["x"]
    assert await _outbox_keys(sample_db) == []


async def test_a_caller_that_goes_away_does_not_undo_its_write(sample_db: Database) -> None:
    group = GroupCommit(sample_db)
    writes = [asyncio.create_task(group.write(rows=[_row(f"c{i}")])) for i in range(5)]
    await asyncio.sleep(0)  # all submitted
    writes[2].cancel()
    await asyncio.gather(*writes, return_exceptions=True)
    await group.close()
    assert await _keys(sample_db) == [f"c{i}" for i in range(5)]
