"""Tenant scoping in one place: the repository base filters by tenant, and the guard refuses any
statement on a tenant's table that is not filtered, on both databases."""

from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase

from cxops.common.db import Database
from cxops.common.tenancy import TenantRepository, TenantScopeMissing, install_tenant_guard

metadata = sa.MetaData()
tally = sa.Table(
    "sample_tally",
    metadata,
    sa.Column("tenant", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("count", sa.Integer(), nullable=False),
)


@pytest.fixture
async def guarded_db(sample_db: Database) -> AsyncIterator[Database]:
    install_tenant_guard(sample_db)
    async with sample_db.transaction() as session:
        await session.execute(
            sa.insert(tally),
            [
                {"tenant": "acme", "key": "a", "count": 1},
                {"tenant": "acme", "key": "b", "count": 2},
                {"tenant": "globex", "key": "a", "count": 40},
            ],
        )
    yield sample_db


async def test_the_repository_base_reads_and_writes_one_tenant_only(guarded_db: Database) -> None:
    async with guarded_db.transaction() as session:
        acme = TenantRepository(session, tenant="acme")
        assert (await session.execute(acme.select(sa.func.sum(tally.c.count)))).scalar() == 3
        await session.execute(acme.update(tally).values(count=tally.c.count + 100))
        await session.execute(acme.delete(tally).where(tally.c.key == "b"))
    async with guarded_db.transaction() as session:
        rows = (
            await session.execute(
                sa.select(tally.c.tenant, tally.c.key, tally.c.count)
                .order_by(tally.c.tenant, tally.c.key)
                .execution_options(all_tenants=True)
            )
        ).all()
    assert [tuple(row) for row in rows] == [("acme", "a", 101), ("globex", "a", 40)]


@pytest.mark.parametrize(
    "statement",
    [
        sa.select(tally),
        sa.select(tally.c.count).where(tally.c.key == "a"),
        # An equality under an OR does not confine the rows to one tenant.
        sa.select(tally).where(sa.or_(tally.c.tenant == "acme", tally.c.key == "a")),
        sa.update(tally).where(tally.c.key == "a").values(count=0),
        sa.delete(tally).where(tally.c.key == "a"),
        # Both sides of a join must be scoped, not just one.
        sa.select(tally)
        .join(other := tally.alias("other"), other.c.key == tally.c.key)
        .where(tally.c.tenant == "acme"),
    ],
    ids=["select", "filtered-by-key", "or", "update", "delete", "join"],
)
async def test_the_guard_refuses_a_statement_without_the_tenant(
    guarded_db: Database, statement: sa.Executable
) -> None:
    with pytest.raises(TenantScopeMissing, match="sample_tally"):
        async with guarded_db.transaction() as session:
            await session.execute(statement)
    async with guarded_db.transaction() as session:  # nothing was changed
        total = await session.scalar(
            sa.select(sa.func.sum(tally.c.count)).execution_options(all_tenants=True)
        )
    assert total == 43


async def test_the_guard_lets_scoped_and_declared_cross_tenant_work_through(
    guarded_db: Database,
) -> None:
    async with guarded_db.transaction() as session:
        scoped = sa.select(tally.c.key).where(tally.c.key == "a", tally.c.tenant == "globex")
        assert (await session.scalars(scoped)).all() == ["a"]
        everyone = sa.select(sa.func.count()).select_from(tally)
        assert await session.scalar(everyone.execution_options(all_tenants=True)) == 3
        # The outbox and inbox carry tenants but are read across tenants by design.
        assert await session.scalar(sa.text("SELECT count(*) FROM cx_outbox")) == 0


async def test_the_unit_of_work_writes_back_what_a_scoped_query_loaded(
    guarded_db: Database,
) -> None:
    """An ORM object loaded through the repository is updated and deleted by its primary key;
    that is the unit of work's own statement, not a query that forgot the tenant."""

    class Base(DeclarativeBase):
        pass

    class Tally(Base):
        __table__ = tally

    async with guarded_db.transaction() as session:
        acme = TenantRepository(session, tenant="acme")
        row = await session.scalar(acme.select(Tally).where(tally.c.key == "a"))
        assert row is not None
        row.count = 7
        await session.flush()
        gone = await session.scalar(acme.select(Tally).where(tally.c.key == "b"))
        await session.delete(gone)
    async with guarded_db.transaction() as session:
        rows = (
            await session.execute(
                sa.select(tally.c.tenant, tally.c.key, tally.c.count)
                .order_by(tally.c.tenant)
                .execution_options(all_tenants=True)
            )
        ).all()
    assert [tuple(r) for r in rows] == [("acme", "a", 7), ("globex", "a", 40)]


async def test_a_verdict_remembered_for_one_shape_never_passes_another(
    guarded_db: Database,
) -> None:
    """The guard remembers verdicts by statement shape: a scoped read seen many times must not
    let through the same read without its tenant, nor one filtered by another column."""
    async with guarded_db.transaction() as session:
        for tenant in ("acme", "globex", "acme"):
            scoped = sa.select(tally.c.key).where(tally.c.tenant == tenant, tally.c.key == "a")
            await session.execute(scoped)
    for unscoped in (
        sa.select(tally.c.key).where(tally.c.key == "a"),
        sa.select(tally.c.key).where(tally.c.key == "acme", tally.c.key == "a"),
    ):
        with pytest.raises(TenantScopeMissing):
            async with guarded_db.transaction() as session:
                await session.execute(unscoped)
