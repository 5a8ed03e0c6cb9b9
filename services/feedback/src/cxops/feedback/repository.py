"""Feedback's queries, one tenant's at a time: every read is built by the tenant-scoped
repository base, so there is no way to ask for another tenant's rows by accident."""

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from cxops.common.events.group_commit import Row
from cxops.common.tenancy import ALL_TENANTS, TenantRepository
from cxops.feedback.models import (
    FeedbackCase,
    FeedbackCaseHistory,
    FeedbackCaseSettings,
    FeedbackResponse,
)
from cxops.feedback.schemas import ResponsePublic
from cxops.stats.scales import SurveyKind


def response_row(
    response: ResponsePublic,
    *,
    tenant: str,
    idempotency_key: str | None,
    request_fingerprint: str | None,
) -> Row:
    """A new response as a row for the group commit: a plain insert, no ORM object (building
    one costs more than the rest of the request's Python)."""
    table = FeedbackResponse.__table__  # type: ignore[attr-defined]
    return table, {
        **response.model_dump(),
        "tenant": tenant,
        "idempotency_key": idempotency_key,
        "request_fingerprint": request_fingerprint,
    }


class ResponseRepository(TenantRepository):
    """One tenant's survey responses."""

    async def get(self, response_id: uuid.UUID) -> FeedbackResponse | None:
        return await self.session.scalar(
            self.select(FeedbackResponse).where(col(FeedbackResponse.id) == response_id)
        )

    async def get_by_idempotency_key(self, idempotency_key: str) -> FeedbackResponse | None:
        return await self.session.scalar(
            self.select(FeedbackResponse).where(
                col(FeedbackResponse.idempotency_key) == idempotency_key
            )
        )

    async def list_newest_first(
        self, *, kind: SurveyKind | None, before: uuid.UUID | None, limit: int
    ) -> list[FeedbackResponse]:
        """Up to ``limit`` responses received before the one with id ``before``, newest first.

        Ids are UUIDv7, ordered by time of receipt, so ``id`` is both the sort key and a cursor
        that stays stable while new responses arrive.
        """
        query = self.select(FeedbackResponse)
        if kind is not None:
            query = query.where(col(FeedbackResponse.kind) == kind)
        if before is not None:
            query = query.where(col(FeedbackResponse.id) < before)
        query = query.order_by(col(FeedbackResponse.id).desc()).limit(limit)
        return list((await self.session.scalars(query)).all())


# ---------------------------------------------------------------------- closed-loop cases

CASES: sa.Table = FeedbackCase.__table__  # type: ignore[attr-defined]
CASE_HISTORY: sa.Table = FeedbackCaseHistory.__table__  # type: ignore[attr-defined]
CASE_SETTINGS: sa.Table = FeedbackCaseSettings.__table__  # type: ignore[attr-defined]
RESPONSES: sa.Table = FeedbackResponse.__table__  # type: ignore[attr-defined]


class CaseRepository(TenantRepository):
    """One tenant's cases, their history and its case setting. Rows are read as mappings (not
    ORM objects), so that a re-read after a lost race sees the committed row, not a cached one.
    """

    async def get(self, case_id: uuid.UUID) -> Mapping[str, Any] | None:
        found = await self.session.execute(self.select(CASES).where(CASES.c.id == case_id))
        return found.mappings().one_or_none()

    async def update_if_version(
        self, case_id: uuid.UUID, *, version: int, values: Mapping[str, Any]
    ) -> bool:
        """Write ``values`` and the next version if the case is still at ``version``; whether it
        was (so that, of two concurrent changes, exactly one applies)."""
        result = await self.session.execute(
            self.update(CASES)
            .where(CASES.c.id == case_id, CASES.c.version == version)
            .values(**values, version=version + 1)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def add_history(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            await self.session.execute(sa.insert(CASE_HISTORY), [dict(row) for row in rows])

    async def history(self, case_id: uuid.UUID) -> list[Mapping[str, Any]]:
        found = await self.session.execute(
            self.select(CASE_HISTORY)
            .where(CASE_HISTORY.c.case_id == case_id)
            .order_by(CASE_HISTORY.c.id)
        )
        return list(found.mappings().all())

    async def list_newest_first(
        self,
        *,
        state: str | None,
        team: str | None,
        breached: bool | None,
        topic: str | None,
        before: uuid.UUID | None,
        limit: int,
    ) -> list[Mapping[str, Any]]:
        """Up to ``limit`` cases opened before the one with id ``before`` (UUIDv7: the id is
        the time order and a stable cursor), newest first."""
        query = self.select(CASES)
        if state is not None:
            query = query.where(CASES.c.state == state)
        if team is not None:
            query = query.where(CASES.c.team == team)
        if breached is not None:
            query = query.where(CASES.c.breached == breached)
        if topic is not None:
            query = query.where(CASES.c.topic == topic)
        if before is not None:
            query = query.where(CASES.c.id < before)
        found = await self.session.execute(query.order_by(CASES.c.id.desc()).limit(limit))
        return list(found.mappings().all())

    async def with_root_causes(
        self, *, opened_from: datetime, opened_to: datetime, closed_from: datetime
    ) -> list[Mapping[str, Any]]:
        """Cases with a documented root cause opened in ``[opened_from, opened_to)``, and those
        closed from ``closed_from`` on (the earlier closes a recurrence is judged against)."""
        found = await self.session.execute(
            self.select(
                CASES.c.root_cause_category,
                CASES.c.topic,
                CASES.c.team,
                CASES.c.opened_at,
                CASES.c.closed_at,
            ).where(
                CASES.c.root_cause_category.is_not(None),
                sa.or_(
                    sa.and_(CASES.c.opened_at >= opened_from, CASES.c.opened_at < opened_to),
                    sa.and_(CASES.c.closed_at >= closed_from, CASES.c.closed_at < opened_to),
                ),
            )
        )
        return list(found.mappings().all())

    async def settings(self) -> Mapping[str, Any] | None:
        found = await self.session.execute(self.select(CASE_SETTINGS))
        return found.mappings().one_or_none()

    async def save_settings(self, values: Mapping[str, Any]) -> int:
        """Replace the tenant's case setting; its new version. Two concurrent first settings
        are settled by the primary key (the loser's request fails and may be retried)."""
        current = await self.session.scalar(self.select(CASE_SETTINGS.c.version).with_for_update())
        if current is None:
            await self.session.execute(
                sa.insert(CASE_SETTINGS).values(**values, tenant=self.tenant, version=1)
            )
            return 1
        await self.session.execute(self.update(CASE_SETTINGS).values(**values, version=current + 1))
        return int(current) + 1


async def due_cases(session: AsyncSession, *, now: datetime, limit: int) -> list[Mapping[str, Any]]:
    """Every tenant's cases whose next due moment has come, earliest first: the clocks' work,
    which spans tenants by design."""
    found = await session.execute(
        sa.select(CASES)
        .where(CASES.c.next_due_at <= now)
        .order_by(CASES.c.next_due_at)
        .limit(limit)
        .execution_options(**{ALL_TENANTS: True})
    )
    return list(found.mappings().all())


async def earliest_due(session: AsyncSession) -> datetime | None:
    """The earliest next due moment of any tenant's case: what the one timer is armed for."""
    found: datetime | None = await session.scalar(
        sa.select(sa.func.min(CASES.c.next_due_at)).execution_options(**{ALL_TENANTS: True})
    )
    return found
