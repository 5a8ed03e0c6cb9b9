"""Feedback's queries, one tenant's at a time: every read is built by the tenant-scoped
repository base, so there is no way to ask for another tenant's rows by accident."""

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from cxops.common.events.group_commit import Row
from cxops.common.tenancy import ALL_TENANTS, TenantRepository
from cxops.feedback.domain.invitations import Status
from cxops.feedback.models import (
    FeedbackLabel,
    FeedbackResponse,
    FeedbackResponseTopic,
    FeedbackTaxonomy,
    FeedbackTenantSettings,
    Invitation,
    RecontactGuard,
    Survey,
    SurveyQuotaUsage,
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


# ------------------------------------------------------------------------ survey invitations


def insert_if_absent(dialect: str, table: sa.Table, *, unique: Sequence[str] | None = None) -> Any:
    """INSERT … ON CONFLICT DO NOTHING (on the ``unique`` columns, else any conflict) in
    ``dialect`` (``postgresql`` or ``sqlite``)."""
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    return insert.on_conflict_do_nothing(index_elements=unique)


class SurveyRepository(TenantRepository):
    """One tenant's surveys."""

    async def get(self, key: str) -> Survey | None:
        return await self.session.scalar(self.select(Survey).where(col(Survey.key) == key))

    async def list_by_key(self) -> list[Survey]:
        return list((await self.session.scalars(self.select(Survey).order_by(Survey.key))).all())


class InvitationRepository(TenantRepository):
    """One tenant's invitations, its customers' recontact guards and its surveys' quotas."""

    @property
    def _dialect(self) -> str:
        return self.session.get_bind().dialect.name

    async def get(self, invitation_id: uuid.UUID) -> Invitation | None:
        return await self.session.scalar(
            self.select(Invitation).where(col(Invitation.id) == invitation_id)
        )

    async def get_by_source(self, survey_key: str, source_id: str) -> Invitation | None:
        return await self.session.scalar(
            self.select(Invitation).where(
                col(Invitation.survey_key) == survey_key, col(Invitation.source_id) == source_id
            )
        )

    async def get_by_token(self, token: str) -> Invitation | None:
        return await self.session.scalar(
            self.select(Invitation).where(col(Invitation.token) == token)
        )

    async def list_newest_first(
        self,
        *,
        customer_ref: str | None,
        status: str | None,
        before: uuid.UUID | None,
        limit: int,
    ) -> list[Invitation]:
        """As :meth:`ResponseRepository.list_newest_first`: UUIDv7 ids are the order and the
        cursor."""
        query = self.select(Invitation)
        if customer_ref is not None:
            query = query.where(col(Invitation.customer_ref) == customer_ref)
        if status is not None:
            query = query.where(col(Invitation.status) == status)
        if before is not None:
            query = query.where(col(Invitation.id) < before)
        query = query.order_by(col(Invitation.id).desc()).limit(limit)
        return list((await self.session.scalars(query)).all())

    async def lock_recontact_guard(self, customer_ref: str) -> datetime | None:
        """When any survey last invited the customer, with the customer's guard row locked until
        the transaction ends (created first if need be): a concurrent decision for the same
        customer, on any replica, waits here until this one commits and then sees its outcome.
        SQLite has one writer at a time, so there the transaction itself is the lock."""
        table = RecontactGuard.__table__  # type: ignore[attr-defined]
        await self.session.execute(
            insert_if_absent(self._dialect, table).values(
                {"tenant": self.tenant, "customer_ref": customer_ref}
            )
        )
        return await self.session.scalar(
            self.select(RecontactGuard.last_invited_at)
            .where(col(RecontactGuard.customer_ref) == customer_ref)
            .with_for_update()
        )

    async def set_last_invited(self, customer_ref: str, at: datetime) -> None:
        await self.session.execute(
            self.update(RecontactGuard)
            .where(col(RecontactGuard.customer_ref) == customer_ref)
            .values(last_invited_at=at)
        )

    async def lock_quota(self, survey_key: str, day: date) -> int:
        """The survey's invitations on ``day``, its counter row locked until the transaction
        ends (as :meth:`lock_recontact_guard`)."""
        table = SurveyQuotaUsage.__table__  # type: ignore[attr-defined]
        await self.session.execute(
            insert_if_absent(self._dialect, table).values(
                {"tenant": self.tenant, "survey_key": survey_key, "day": day, "used": 0}
            )
        )
        used = await self.session.scalar(
            self.select(SurveyQuotaUsage.used)
            .where(col(SurveyQuotaUsage.survey_key) == survey_key, col(SurveyQuotaUsage.day) == day)
            .with_for_update()
        )
        return int(used or 0)

    async def use_quota(self, survey_key: str, day: date) -> None:
        await self.session.execute(
            self.update(SurveyQuotaUsage)
            .where(col(SurveyQuotaUsage.survey_key) == survey_key, col(SurveyQuotaUsage.day) == day)
            .values(used=SurveyQuotaUsage.used + 1)
        )

    async def mark_sent(self, invitation_id: uuid.UUID, at: datetime) -> bool:
        """``scheduled`` → ``sent``, if it still is scheduled: of several replicas' timers, the
        one whose update changes the row sends it, the others change nothing."""
        result = await self.session.execute(
            self.update(Invitation)
            .where(
                col(Invitation.id) == invitation_id,
                col(Invitation.status) == Status.SCHEDULED.value,
            )
            .values(status=Status.SENT.value, sent_at=at)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def mark_responded(self, invitation_id: uuid.UUID, at: datetime) -> sa.Update:
        """The statement that marks an invitation answered, for the response's own commit; an
        invitation answered before stays as it was."""
        return (
            self.update(Invitation)
            .where(
                col(Invitation.id) == invitation_id,
                col(Invitation.status).in_([Status.SCHEDULED.value, Status.SENT.value]),
            )
            .values(status=Status.RESPONDED.value, responded_at=at)
        )


async def due_invitations(session: AsyncSession, *, now: datetime, limit: int) -> list[Invitation]:
    """Every tenant's scheduled invitations due by ``now``, earliest first: the timer's work,
    which spans tenants by design."""
    query = (
        sa.select(Invitation)
        .where(col(Invitation.status) == Status.SCHEDULED.value, col(Invitation.due_at) <= now)
        .order_by(col(Invitation.due_at), col(Invitation.id))
        .limit(limit)
        .execution_options(**{ALL_TENANTS: True})
    )
    return list((await session.scalars(query)).all())


async def next_due_at(session: AsyncSession) -> datetime | None:
    """When the earliest scheduled invitation of any tenant falls due."""
    query = (
        sa.select(sa.func.min(Invitation.due_at))
        .where(col(Invitation.status) == Status.SCHEDULED.value)
        .execution_options(**{ALL_TENANTS: True})
    )
    due: datetime | None = await session.scalar(query)
    return due
