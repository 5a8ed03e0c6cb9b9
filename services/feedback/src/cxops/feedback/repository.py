"""Feedback's queries, one tenant's at a time: every read is built by the tenant-scoped
repository base, so there is no way to ask for another tenant's rows by accident."""

import uuid

from sqlmodel import col

from cxops.common.events.group_commit import Row
from cxops.common.tenancy import TenantRepository
from cxops.feedback.models import FeedbackResponse
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
