"""Routing's queries, one tenant's at a time (the tenant-scoped repository base)."""

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from cxops.common.tenancy import TenantRepository
from cxops.routing.changes import AGENTS, QUEUES, RESERVATIONS, TASK_EVENTS, TASKS


class RoutingRepository(TenantRepository):
    """One tenant's agents, queues, tasks and reservations, as plain rows."""

    async def _one(self, query: sa.Select[Any]) -> dict[str, Any] | None:
        row = (await self.session.execute(query)).mappings().first()
        return dict(row) if row is not None else None

    async def _all(self, query: sa.Select[Any]) -> list[dict[str, Any]]:
        return [dict(row) for row in (await self.session.execute(query)).mappings()]

    async def agent(self, agent_id: uuid.UUID) -> dict[str, Any] | None:
        return await self._one(
            self.select(AGENTS).where(AGENTS.c.id == agent_id, AGENTS.c.deleted_at.is_(None))
        )

    async def agents(
        self, *, team: str | None, status: str | None, after: uuid.UUID | None, limit: int
    ) -> list[dict[str, Any]]:
        query = self.select(AGENTS).where(AGENTS.c.deleted_at.is_(None))
        if team is not None:
            query = query.where(AGENTS.c.team == team)
        if status is not None:
            query = query.where(AGENTS.c.status == status)
        if after is not None:
            query = query.where(AGENTS.c.id > after)
        return await self._all(query.order_by(AGENTS.c.id).limit(limit))

    async def queue(self, queue_id: uuid.UUID) -> dict[str, Any] | None:
        return await self._one(self.select(QUEUES).where(QUEUES.c.id == queue_id))

    async def queues(self) -> list[dict[str, Any]]:
        return await self._all(self.select(QUEUES).order_by(QUEUES.c.name))

    async def task(self, task_id: uuid.UUID) -> dict[str, Any] | None:
        return await self._one(self.select(TASKS).where(TASKS.c.id == task_id))

    async def tasks(
        self,
        *,
        state: str | None,
        queue: str | None,
        customer_ref: str | None,
        before: uuid.UUID | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Newest first (ids are UUIDv7, so the id is also the cursor)."""
        query = self.select(TASKS)
        for column, value in (
            (TASKS.c.state, state),
            (TASKS.c.queue, queue),
            (TASKS.c.customer_ref, customer_ref),
        ):
            if value is not None:
                query = query.where(column == value)
        if before is not None:
            query = query.where(TASKS.c.id < before)
        return await self._all(query.order_by(TASKS.c.id.desc()).limit(limit))

    async def task_history(self, task_id: uuid.UUID) -> list[dict[str, Any]]:
        return await self._all(
            self.select(TASK_EVENTS)
            .where(TASK_EVENTS.c.task_id == task_id)
            .order_by(TASK_EVENTS.c.at, TASK_EVENTS.c.id)
        )

    async def reservation(self, reservation_id: uuid.UUID) -> dict[str, Any] | None:
        return await self._one(self.select(RESERVATIONS).where(RESERVATIONS.c.id == reservation_id))

    async def reservations_of_task(self, task_id: uuid.UUID) -> list[dict[str, Any]]:
        return await self._all(
            self.select(RESERVATIONS)
            .where(RESERVATIONS.c.task_id == task_id)
            .order_by(RESERVATIONS.c.offered_at, RESERVATIONS.c.id)
        )

    async def reservations_of_agent(
        self,
        agent_id: uuid.UUID,
        *,
        state: str | None,
        after: uuid.UUID | None = None,
        limit: int = 200,
    ) -> list[dict[str, Any]]:
        query = self.select(RESERVATIONS).where(RESERVATIONS.c.agent_id == agent_id)
        if state is not None:
            query = query.where(RESERVATIONS.c.state == state)
        if after is not None:
            query = query.where(RESERVATIONS.c.id > after)
        return await self._all(query.order_by(RESERVATIONS.c.id).limit(limit))

    async def queue_window(
        self, queue: str, start: datetime, end: datetime
    ) -> tuple[list[dict[str, Any]], dict[str, int]]:
        """The queue's tasks created in ``[start, end)`` and their offers counted by state."""
        window = (TASKS.c.queue == queue, TASKS.c.created_at >= start, TASKS.c.created_at < end)
        tasks = await self._all(
            self.select(
                TASKS.c.state, TASKS.c.wait_seconds, TASKS.c.agent_id, TASKS.c.handle_seconds
            ).where(*window)
        )
        counted = await self.session.execute(
            self.scoped(
                sa.select(RESERVATIONS.c.state, sa.func.count())
                .select_from(RESERVATIONS.join(TASKS, TASKS.c.id == RESERVATIONS.c.task_id))
                .where(*window)
                .group_by(RESERVATIONS.c.state)
            )
        )
        return tasks, {state: int(n) for state, n in counted.all()}

    async def queue_named(self, name: str) -> dict[str, Any] | None:
        return await self._one(self.select(QUEUES).where(QUEUES.c.name == name))

    async def arrivals(
        self, queue: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, float | None]]:
        """When each task of the queue arrived in ``[start, end)``, and its handle time if it
        was completed."""
        rows = await self.session.execute(
            self.select(TASKS.c.created_at, TASKS.c.handle_seconds).where(
                TASKS.c.queue == queue, TASKS.c.created_at >= start, TASKS.c.created_at < end
            )
        )
        return [(created, handle) for created, handle in rows.all()]
