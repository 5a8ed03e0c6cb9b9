"""Feedback's queries, one tenant's at a time: every read is built by the tenant-scoped
repository base, so there is no way to ask for another tenant's rows by accident."""

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from cxops.common.events.group_commit import Row
from cxops.common.tenancy import TenantRepository
from cxops.feedback.domain.complaints import Count, Granularity, Total
from cxops.feedback.models import (
    FeedbackAlert,
    FeedbackAlertRules,
    FeedbackLabel,
    FeedbackResponse,
    FeedbackResponseTopic,
    FeedbackTaxonomy,
    FeedbackTenantSettings,
)
from cxops.feedback.schemas import ResponsePublic
from cxops.stats.scales import SurveyKind


def response_rows(
    response: ResponsePublic,
    *,
    tenant: str,
    raw_comment: str | None,
    idempotency_key: str | None,
    request_fingerprint: str | None,
) -> list[Row]:
    """A new response as rows for the group commit (the response, one row per topic): plain
    inserts, no ORM object (building one costs more than the rest of the request's Python)."""
    enrichment = response.enrichment
    columns = response.model_dump(exclude={"enrichment"})
    sentiment = enrichment.sentiment
    rows: list[Row] = [
        (
            FeedbackResponse.__table__,  # type: ignore[attr-defined]
            {
                **columns,
                "tenant": tenant,
                "raw_comment": raw_comment,
                "enrichment": enrichment.model_dump(mode="json"),
                "needs_review": enrichment.needs_review,
                "sentiment_label": sentiment.label.value if sentiment else None,
                "taxonomy_version": enrichment.taxonomy_version,
                "idempotency_key": idempotency_key,
                "request_fingerprint": request_fingerprint,
            },
        )
    ]
    topics = FeedbackResponseTopic.__table__  # type: ignore[attr-defined]
    rows += [
        (
            topics,
            {
                "response_id": response.id,
                "topic": topic.topic,
                "tenant": tenant,
                "occurred_at": response.occurred_at,
                "confidence": topic.confidence,
                "sentiment_label": topic.sentiment.label.value if topic.sentiment else None,
            },
        )
        for topic in enrichment.topics
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


# --- live complaint alerts --------------------------------------------------------------------

NEGATIVE = "negative"
_BUCKET_FORMATS = {
    # strftime on SQLite's stored text, to_char on PostgreSQL's instant read in UTC.
    "sqlite": {Granularity.HOUR: "%Y-%m-%dT%H:00:00", Granularity.DAY: "%Y-%m-%d"},
    "postgresql": {Granularity.HOUR: 'YYYY-MM-DD"T"HH24:00:00', Granularity.DAY: "YYYY-MM-DD"},
}


def _bucket(session: AsyncSession, column: Any, granularity: Granularity) -> Any:
    """The UTC hour or day ``column`` falls in, as ISO text: what the counts GROUP BY."""
    dialect = session.get_bind().dialect.name
    pattern = _BUCKET_FORMATS[dialect][granularity]
    if dialect == "sqlite":
        return sa.func.strftime(pattern, column)
    return sa.func.to_char(sa.func.timezone("UTC", column), pattern)


def _period(bucket: str) -> datetime:
    return datetime.fromisoformat(bucket).replace(tzinfo=UTC)


async def tenants_with_complaints(
    session: AsyncSession, *, start: datetime, end: datetime
) -> list[str]:
    """Every tenant with a complaint between ``start`` and ``end``: the only tenants a period's
    evaluation can alert for (an alert needs complaints in its period). Spans tenants by design.
    """
    topics = FeedbackResponseTopic.__table__  # type: ignore[attr-defined]
    found = await session.scalars(
        sa.select(topics.c.tenant)
        .where(
            topics.c.occurred_at >= start,
            topics.c.occurred_at < end,
            topics.c.sentiment_label == NEGATIVE,
        )
        .distinct()
        .execution_options(all_tenants=True)
    )
    return sorted(found)


class ComplaintRepository(TenantRepository):
    """One tenant's complaints (topic tags with negative sentiment), counted and listed."""

    async def counts(
        self, *, granularity: Granularity, start: datetime, end: datetime
    ) -> list[Count]:
        """Complaints per period, topic and customer tier between ``start`` and ``end``."""
        topics = FeedbackResponseTopic.__table__  # type: ignore[attr-defined]
        responses = FeedbackResponse.__table__  # type: ignore[attr-defined]
        bucket = _bucket(self.session, topics.c.occurred_at, granularity).label("bucket")
        query = (
            sa.select(bucket, topics.c.topic, responses.c.customer_tier, sa.func.count())
            .select_from(topics.join(responses, responses.c.id == topics.c.response_id))
            .where(
                topics.c.sentiment_label == NEGATIVE,
                topics.c.occurred_at >= start,
                topics.c.occurred_at < end,
            )
            .group_by(bucket, topics.c.topic, responses.c.customer_tier)
        )
        rows = await self.session.execute(self.scoped(query))
        return [Count(_period(b), topic, tier, n) for b, topic, tier, n in rows.all()]

    async def totals(
        self, *, granularity: Granularity, start: datetime, end: datetime
    ) -> list[Total]:
        """Responses per period and customer tier between ``start`` and ``end``."""
        responses = FeedbackResponse.__table__  # type: ignore[attr-defined]
        bucket = _bucket(self.session, responses.c.occurred_at, granularity).label("bucket")
        query = (
            sa.select(bucket, responses.c.customer_tier, sa.func.count())
            .where(responses.c.occurred_at >= start, responses.c.occurred_at < end)
            .group_by(bucket, responses.c.customer_tier)
        )
        rows = await self.session.execute(self.scoped(query))
        return [Total(_period(b), tier, n) for b, tier, n in rows.all()]

    async def behind(
        self, *, topic: str, tier: str | None, start: datetime, end: datetime, limit: int
    ) -> tuple[list[FeedbackResponse], int]:
        """The responses complaining about ``topic`` (of customers of ``tier``, or all) between
        ``start`` and ``end``: up to ``limit`` of them, newest first, and how many in all."""
        topics = FeedbackResponseTopic.__table__  # type: ignore[attr-defined]
        conditions = [
            col(FeedbackResponse.id) == topics.c.response_id,
            topics.c.topic == topic,
            topics.c.sentiment_label == NEGATIVE,
            topics.c.occurred_at >= start,
            topics.c.occurred_at < end,
        ]
        if tier is not None:
            conditions.append(col(FeedbackResponse.customer_tier) == tier)
        listed = self.scoped(
            sa.select(FeedbackResponse)
            .where(*conditions)
            .order_by(col(FeedbackResponse.occurred_at).desc(), col(FeedbackResponse.id).desc())
            .limit(limit)
        )
        counted = self.scoped(
            sa.select(sa.func.count()).select_from(FeedbackResponse).where(*conditions)
        )
        rows = list((await self.session.scalars(listed)).all())
        return rows, int(await self.session.scalar(counted) or 0)


class AlertRepository(TenantRepository):
    """One tenant's complaint alerts."""

    async def get(self, alert_id: uuid.UUID) -> FeedbackAlert | None:
        return await self.session.scalar(
            self.select(FeedbackAlert).where(col(FeedbackAlert.id) == alert_id)
        )

    async def exists(
        self, *, granularity: Granularity, topic: str, segment: str, period_start: datetime
    ) -> bool:
        found = await self.session.scalar(
            self.select(col(FeedbackAlert.id)).where(
                col(FeedbackAlert.granularity) == granularity.value,
                col(FeedbackAlert.topic) == topic,
                col(FeedbackAlert.segment) == segment,
                col(FeedbackAlert.period_start) == period_start,
            )
        )
        return found is not None

    async def list_newest_first(
        self, *, status: str | None, topic: str | None, before: uuid.UUID | None, limit: int
    ) -> list[FeedbackAlert]:
        """Up to ``limit`` alerts raised before the one with id ``before`` (UUIDv7: in order of
        raising), newest first."""
        query = self.select(FeedbackAlert)
        if status is not None:
            query = query.where(col(FeedbackAlert.status) == status)
        if topic is not None:
            query = query.where(col(FeedbackAlert.topic) == topic)
        if before is not None:
            query = query.where(col(FeedbackAlert.id) < before)
        query = query.order_by(col(FeedbackAlert.id).desc()).limit(limit)
        return list((await self.session.scalars(query)).all())


class AlertRulesRepository(TenantRepository):
    async def get(self) -> FeedbackAlertRules | None:
        return await self.session.scalar(self.select(FeedbackAlertRules))
