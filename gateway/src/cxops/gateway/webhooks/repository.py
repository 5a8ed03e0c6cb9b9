"""Queries on webhook endpoints and deliveries; every one scoped to a tenant, except the
worker's, which serve every tenant's due deliveries."""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from cxops.gateway.models import WebhookDelivery, WebhookEndpoint
from cxops.gateway.webhooks.retries import DeliveryStatus


async def endpoint(
    session: AsyncSession, *, tenant: str, endpoint_id: uuid.UUID
) -> WebhookEndpoint | None:
    row = await session.get(WebhookEndpoint, endpoint_id)
    return row if row is not None and row.tenant == tenant else None


async def endpoints(session: AsyncSession, *, tenant: str) -> Sequence[WebhookEndpoint]:
    query = (
        sa.select(WebhookEndpoint)
        .where(col(WebhookEndpoint.tenant) == tenant)
        .order_by(col(WebhookEndpoint.created_at), col(WebhookEndpoint.id))
    )
    return (await session.scalars(query)).all()


async def enabled_endpoints(session: AsyncSession, *, tenant: str) -> Sequence[WebhookEndpoint]:
    query = sa.select(WebhookEndpoint).where(
        col(WebhookEndpoint.tenant) == tenant, col(WebhookEndpoint.enabled).is_(True)
    )
    return (await session.scalars(query)).all()


async def delivery(
    session: AsyncSession, *, tenant: str, delivery_id: uuid.UUID
) -> WebhookDelivery | None:
    row = await session.get(WebhookDelivery, delivery_id)
    return row if row is not None and row.tenant == tenant else None


async def deliveries(
    session: AsyncSession,
    *,
    tenant: str,
    endpoint_id: uuid.UUID,
    status: DeliveryStatus | None,
    cursor: uuid.UUID | None,
    limit: int,
) -> tuple[Sequence[WebhookDelivery], uuid.UUID | None]:
    """Newest first; the cursor is the last id of the page before (ids are UUIDv7)."""
    query = sa.select(WebhookDelivery).where(
        col(WebhookDelivery.tenant) == tenant, col(WebhookDelivery.endpoint_id) == endpoint_id
    )
    if status is not None:
        query = query.where(col(WebhookDelivery.status) == status.value)
    if cursor is not None:
        query = query.where(col(WebhookDelivery.id) < cursor)
    rows = (
        await session.scalars(query.order_by(col(WebhookDelivery.id).desc()).limit(limit + 1))
    ).all()
    next_cursor = rows[limit - 1].id if len(rows) > limit else None
    return rows[:limit], next_cursor
