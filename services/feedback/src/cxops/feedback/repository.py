"""Feedback's queries, one tenant's at a time: every read is built by the tenant-scoped
repository base, so there is no way to ask for another tenant's rows by accident."""

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from operator import attrgetter
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from cxops.common.db import insert_if_absent
from cxops.common.events.group_commit import Row
from cxops.common.tenancy import ALL_TENANTS, TenantRepository
from cxops.feedback.domain.complaints import Count, Granularity, Total
from cxops.feedback.domain.invitations import Status
from cxops.feedback.models import (
    FeedbackAlert,
    FeedbackAlertRules,
    FeedbackCase,
    FeedbackCaseHistory,
    FeedbackCaseSettings,
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

P = TypeVar("P")


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


def page_of(
    rows: Sequence[P], limit: int, *, id_of: Callable[[P], uuid.UUID] = attrgetter("id")
) -> tuple[list[P], uuid.UUID | None]:
    """The first ``limit`` of ``rows`` (read with one more than asked, to know whether there is
    more) and the next page's cursor: the id of the last row shown, None on the last page."""
    page = list(rows[:limit])
    return page, id_of(page[-1]) if len(rows) > limit else None


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
