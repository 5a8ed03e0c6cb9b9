"""One tenant's webhook endpoints and deliveries. The delivery worker's queries, which serve
every tenant's due deliveries, are its own and say so (``all_tenants``)."""

import uuid
from collections.abc import Sequence

from sqlmodel import col

from cxops.common.tenancy import TenantRepository
from cxops.gateway.models import WebhookDelivery, WebhookEndpoint
from cxops.gateway.webhooks.retries import DeliveryStatus


class WebhookRepository(TenantRepository):
    async def endpoint(self, endpoint_id: uuid.UUID) -> WebhookEndpoint | None:
        row: WebhookEndpoint | None = await self.session.scalar(
            self.select(WebhookEndpoint).where(col(WebhookEndpoint.id) == endpoint_id)
        )
        return row

    async def endpoints(self) -> Sequence[WebhookEndpoint]:
        query = self.select(WebhookEndpoint).order_by(
            col(WebhookEndpoint.created_at), col(WebhookEndpoint.id)
        )
        return (await self.session.scalars(query)).all()

    async def enabled_endpoints(self) -> Sequence[WebhookEndpoint]:
        query = self.select(WebhookEndpoint).where(col(WebhookEndpoint.enabled).is_(True))
        return (await self.session.scalars(query)).all()

    async def delivery(self, delivery_id: uuid.UUID) -> WebhookDelivery | None:
        row: WebhookDelivery | None = await self.session.scalar(
            self.select(WebhookDelivery).where(col(WebhookDelivery.id) == delivery_id)
        )
        return row

    async def deliveries(
        self,
        *,
        endpoint_id: uuid.UUID,
        status: DeliveryStatus | None,
        cursor: uuid.UUID | None,
        limit: int,
    ) -> tuple[Sequence[WebhookDelivery], uuid.UUID | None]:
        """Newest first; the cursor is the last id of the page before (ids are UUIDv7)."""
        query = self.select(WebhookDelivery).where(col(WebhookDelivery.endpoint_id) == endpoint_id)
        if status is not None:
            query = query.where(col(WebhookDelivery.status) == status.value)
        if cursor is not None:
            query = query.where(col(WebhookDelivery.id) < cursor)
        rows = (
            await self.session.scalars(
                query.order_by(col(WebhookDelivery.id).desc()).limit(limit + 1)
            )
        ).all()
        next_cursor = rows[limit - 1].id if len(rows) > limit else None
        return rows[:limit], next_cursor

    async def delete_deliveries_of(self, endpoint_id: uuid.UUID) -> None:
        await self.session.execute(
            self.delete(WebhookDelivery).where(col(WebhookDelivery.endpoint_id) == endpoint_id)
        )
