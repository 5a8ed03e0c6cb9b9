"""Feedback's queries. Every read takes the tenant: there is no way to ask for another
tenant's rows by accident."""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from cxops.feedback.models import FeedbackResponse
from cxops.stats.scales import SurveyKind


async def insert(*, session: AsyncSession, response: FeedbackResponse) -> None:
    """Write ``response`` now, so a constraint violation surfaces here, not at commit."""
    session.add(response)
    await session.flush()


async def insert_unless_key_taken(*, session: AsyncSession, response: FeedbackResponse) -> None:
    """Write ``response`` now, inside a savepoint.

    A unique violation (two requests racing with one idempotency key) raises
    :class:`sqlalchemy.exc.IntegrityError` and rolls back only the savepoint, so the caller's
    transaction stays usable to read the row that won.
    """
    async with session.begin_nested():
        session.add(response)


async def get(
    *, session: AsyncSession, tenant: str, response_id: uuid.UUID
) -> FeedbackResponse | None:
    return await session.scalar(
        select(FeedbackResponse).where(
            col(FeedbackResponse.tenant) == tenant, col(FeedbackResponse.id) == response_id
        )
    )


async def get_by_idempotency_key(
    *, session: AsyncSession, tenant: str, idempotency_key: str
) -> FeedbackResponse | None:
    return await session.scalar(
        select(FeedbackResponse).where(
            col(FeedbackResponse.tenant) == tenant,
            col(FeedbackResponse.idempotency_key) == idempotency_key,
        )
    )


async def list_newest_first(
    *,
    session: AsyncSession,
    tenant: str,
    kind: SurveyKind | None,
    before: uuid.UUID | None,
    limit: int,
) -> list[FeedbackResponse]:
    """Up to ``limit`` responses received before the one with id ``before``, newest first.

    Ids are UUIDv7, ordered by time of receipt, so ``id`` is both the sort key and a cursor that
    stays stable while new responses arrive.
    """
    query = select(FeedbackResponse).where(col(FeedbackResponse.tenant) == tenant)
    if kind is not None:
        query = query.where(col(FeedbackResponse.kind) == kind)
    if before is not None:
        query = query.where(col(FeedbackResponse.id) < before)
    query = query.order_by(col(FeedbackResponse.id).desc()).limit(limit)
    return list((await session.scalars(query)).all())
