"""The queries of journey maps: their versions, the stored interactions conformance reads, each
customer's progress and the handoff deadlines. One tenant's at a time (the tenant-scoped
repository base), except the deadline timer's look across every tenant, which says so."""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession
from uuid6 import uuid7

from cxops.common.tenancy import ALL_TENANTS, TenantRepository
from cxops.journey.models import HandoffDeadline, Interaction, JourneyMapVersion, MapProgress

MAPS: sa.Table = JourneyMapVersion.__table__  # type: ignore[attr-defined]
INTERACTIONS: sa.Table = Interaction.__table__  # type: ignore[attr-defined]
PROGRESS: sa.Table = MapProgress.__table__  # type: ignore[attr-defined]
DEADLINES: sa.Table = HandoffDeadline.__table__  # type: ignore[attr-defined]

ARMED = "armed"
CLEARED = "cleared"
FIRED = "fired"


class MapRepository(TenantRepository):
    async def version(self, key: str, version: int | None = None) -> Row[Any] | None:
        """The map's ``version``, or its latest."""
        query = self.select(MAPS).where(MAPS.c.key == key)
        if version is not None:
            query = query.where(MAPS.c.version == version)
        return (await self.session.execute(query.order_by(MAPS.c.version.desc()).limit(1))).first()

    async def latest_of_each(self) -> Sequence[Row[Any]]:
        """The latest version of every map of the tenant, by key."""
        latest = (
            self.select(MAPS.c.key, sa.func.max(MAPS.c.version).label("version"))
            .group_by(MAPS.c.key)
            .subquery()
        )
        query = self.select(MAPS).join(
            latest, (MAPS.c.key == latest.c.key) & (MAPS.c.version == latest.c.version)
        )
        return (await self.session.execute(query.order_by(MAPS.c.key))).all()

    async def add_version(self, values: dict[str, Any]) -> None:
        await self.session.execute(sa.insert(MAPS).values(tenant=self.tenant, **values))

    async def interactions(self, *, start: datetime, end: datetime) -> Sequence[Row[Any]]:
        """The interactions that occurred in ``[start, end)``, by customer, then time, then
        arrival (ids are time-ordered), each with its customer, activity, time, team and channel.
        """
        columns = INTERACTIONS.c
        query = (
            self.select(
                columns.customer_id,
                columns.activity,
                columns.occurred_at,
                columns.team,
                columns.channel,
            )
            .where(columns.occurred_at >= start, columns.occurred_at < end)
            .order_by(columns.customer_id, columns.occurred_at, columns.id)
        )
        return (await self.session.execute(query)).all()


class ProgressRepository(TenantRepository):
    async def get(self, *, map_key: str, customer_id: str) -> Row[Any] | None:
        query = self.select(PROGRESS).where(
            PROGRESS.c.map_key == map_key, PROGRESS.c.customer_id == customer_id
        )
        return (await self.session.execute(query)).first()

    async def insert(self, values: dict[str, Any]) -> None:
        await self.session.execute(
            sa.insert(PROGRESS).values(tenant=self.tenant, version=1, **values)
        )

    async def update_if_version(
        self, *, map_key: str, customer_id: str, version: int, values: dict[str, Any]
    ) -> bool:
        """Write ``values`` if the row is still at ``version``; whether it was."""
        result = await self.session.execute(
            self.update(PROGRESS)
            .where(
                PROGRESS.c.map_key == map_key,
                PROGRESS.c.customer_id == customer_id,
                PROGRESS.c.version == version,
            )
            .values(version=version + 1, **values)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


class DeadlineRepository(TenantRepository):
    async def armed_for(self, *, map_key: str, customer_id: str) -> Sequence[Row[Any]]:
        query = self.select(DEADLINES).where(
            DEADLINES.c.map_key == map_key,
            DEADLINES.c.customer_id == customer_id,
            DEADLINES.c.state == ARMED,
        )
        return (await self.session.execute(query)).all()

    async def arm(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            await self.session.execute(
                sa.insert(DEADLINES),
                [{"id": uuid7(), "tenant": self.tenant, "state": ARMED, **r} for r in rows],
            )

    async def settle(self, deadline_id: uuid.UUID, *, state: str, at: datetime) -> bool:
        """Mark an armed deadline ``cleared`` or ``fired``; whether this call did (only one
        caller, of however many replicas, ever does)."""
        result = await self.session.execute(
            self.update(DEADLINES)
            .where(DEADLINES.c.id == deadline_id, DEADLINES.c.state == ARMED)
            .values(state=state, settled_at=at)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


async def due_deadlines(session: AsyncSession, *, now: datetime, limit: int) -> Sequence[Row[Any]]:
    """Every tenant's armed deadlines due by ``now``, earliest first."""
    query = (
        sa.select(DEADLINES)
        .where(DEADLINES.c.state == ARMED, DEADLINES.c.due_at <= now)
        .order_by(DEADLINES.c.due_at)
        .limit(limit)
        .execution_options(**{ALL_TENANTS: True})
    )
    return (await session.execute(query)).all()


async def earliest_deadline(session: AsyncSession) -> datetime | None:
    """When the next armed deadline of any tenant falls due."""
    query = (
        sa.select(sa.func.min(DEADLINES.c.due_at))
        .where(DEADLINES.c.state == ARMED)
        .execution_options(**{ALL_TENANTS: True})
    )
    due: datetime | None = await session.scalar(query)
    return due
