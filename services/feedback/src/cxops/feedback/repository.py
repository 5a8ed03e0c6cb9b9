"""Feedback's queries, one tenant's at a time: every read is built by the tenant-scoped
repository base, so there is no way to ask for another tenant's rows by accident."""

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlmodel import col

from cxops.common.events.group_commit import Row
from cxops.common.tenancy import TenantRepository
from cxops.feedback.models import (
    FeedbackLabel,
    FeedbackResponse,
    FeedbackResponseTopic,
    FeedbackTaxonomy,
    FeedbackTenantSettings,
)
from cxops.stats.scales import SurveyKind


def response_rows(response: Mapping[str, Any], *, tenant: str) -> list[Row]:
    """A new response as rows for a write (the response, one row per topic): plain inserts, no
    ORM object (building one costs more than the rest of the request's Python).

    ``response`` is the table's columns but the tenant and what the enrichment (in its JSON
    shape, :class:`~cxops.feedback.schemas.EnrichmentPublic`) already says."""
    enrichment = response["enrichment"]
    sentiment = enrichment["sentiment"]
    rows: list[Row] = [
        (
            FeedbackResponse.__table__,  # type: ignore[attr-defined]
            {
                **response,
                "tenant": tenant,
                "needs_review": enrichment["needs_review"],
                "sentiment_label": sentiment["label"] if sentiment else None,
                "taxonomy_version": enrichment["taxonomy_version"],
            },
        )
    ]
    topics = FeedbackResponseTopic.__table__  # type: ignore[attr-defined]
    rows += [
        (
            topics,
            {
                "response_id": response["id"],
                "topic": topic["topic"],
                "tenant": tenant,
                "occurred_at": response["occurred_at"],
                "confidence": topic["confidence"],
                "sentiment_label": topic["sentiment"]["label"] if topic["sentiment"] else None,
            },
        )
        for topic in enrichment["topics"]
    ]
    return rows


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

    async def review_queue(self, *, after: uuid.UUID | None, limit: int) -> list[FeedbackResponse]:
        """Responses flagged for review that nobody has labelled, oldest first."""
        labelled = self.select(col(FeedbackLabel.response_id)).where(
            col(FeedbackLabel.response_id) == col(FeedbackResponse.id)
        )
        query = self.select(FeedbackResponse).where(
            col(FeedbackResponse.needs_review).is_(True), ~labelled.exists()
        )
        if after is not None:
            query = query.where(col(FeedbackResponse.id) > after)
        query = query.order_by(col(FeedbackResponse.id)).limit(limit)
        return list((await self.session.scalars(query)).all())


class TaxonomyRepository(TenantRepository):
    """One tenant's taxonomy versions."""

    async def latest(self) -> FeedbackTaxonomy | None:
        return await self.session.scalar(
            self.select(FeedbackTaxonomy).order_by(col(FeedbackTaxonomy.version).desc()).limit(1)
        )


class TenantSettingsRepository(TenantRepository):
    async def get(self) -> FeedbackTenantSettings | None:
        return await self.session.scalar(self.select(FeedbackTenantSettings))


class LabelRepository(TenantRepository):
    """Reviewers' labels of one tenant's responses."""

    async def get(self, response_id: uuid.UUID) -> FeedbackLabel | None:
        return await self.session.scalar(
            self.select(FeedbackLabel).where(col(FeedbackLabel.response_id) == response_id)
        )

    async def given_between(
        self, start: datetime | None, end: datetime | None
    ) -> list[FeedbackLabel]:
        query = self.select(FeedbackLabel)
        if start is not None:
            query = query.where(col(FeedbackLabel.labelled_at) >= start)
        if end is not None:
            query = query.where(col(FeedbackLabel.labelled_at) < end)
        return list((await self.session.scalars(query)).all())
