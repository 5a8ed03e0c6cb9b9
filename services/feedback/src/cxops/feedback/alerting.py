"""Live complaint alerts: the periodic detector over the service's own counts, the real-time
tier rule at intake, and reading and acknowledging alerts.

The pure parts (what a complaint is, the periods, the detector's series, the tier rule) are in
:mod:`cxops.feedback.domain.complaints`; this module loads, calls them and saves. Each new
alert is inserted with its ``cx.feedback.alert.raised.v1`` in one transaction; a periodic alert
is unique per tenant, granularity, topic, segment and period, so when two replicas evaluate the
same period the database lets one row (and so one event) in.
"""

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from uuid6 import uuid7

from cxops.common.auth import CallerContext
from cxops.common.clock import Clock, system_clock
from cxops.common.db import Database
from cxops.common.events import Event
from cxops.common.events.group_commit import Row
from cxops.common.events.outbox import add_event
from cxops.common.service import ServiceState
from cxops.feedback import events
from cxops.feedback.domain.complaints import (
    DEFAULT_TEAM,
    Granularity,
    PeriodAlert,
    RealtimeRule,
    Tag,
    alerts_in,
    detector_config,
    history_start,
    last_closed,
    next_close,
    period_length,
    realtime_alert,
)
from cxops.feedback.domain.sentiment import SentimentLabel
from cxops.feedback.enrichment import Enrichments
from cxops.feedback.models import FeedbackAlert, FeedbackAlertRules
from cxops.feedback.repository import (
    AlertRepository,
    AlertRulesRepository,
    ComplaintRepository,
    ResponseRepository,
    page_of,
    tenants_with_complaints,
)
from cxops.feedback.schemas import (
    AlertDetail,
    AlertPublic,
    AlertResponsePublic,
    AlertRulesDocument,
    AlertRulesPublic,
    AlertStatus,
    ResponsePublic,
)
from cxops.feedback.settings import FeedbackSettings
from cxops.feedback.tenant_cache import TenantCache

log = logging.getLogger("cxops.feedback.alerts")

#: The responses listed behind an alert.
RESPONSES_BEHIND = 100
#: How long after a period closes it is evaluated: intake still committing at the close counts.
CLOSE_GRACE = timedelta(seconds=10)
REALTIME = "realtime"


class AlertNotFound(LookupError):
    """No alert with that id in the caller's tenant."""


class AlreadyAcknowledged(Exception):
    def __init__(self, alert: FeedbackAlert) -> None:
        super().__init__(f"alert {alert.id} was acknowledged by {alert.acknowledged_by}")
        self.alert = alert


# --- the tenant's rules -----------------------------------------------------------------------


class AlertRules(TenantCache[AlertRulesDocument]):
    """Each tenant's alert rules, as intake reads them for every answer (see
    :mod:`cxops.feedback.tenant_cache`)."""

    def __init__(self, state: ServiceState) -> None:
        settings = state.settings
        assert isinstance(settings, FeedbackSettings)
        super().__init__(state.db, _read_rules, ttl_seconds=settings.tenant_settings_cache_seconds)


async def _read_rules(session: AsyncSession, tenant: str) -> AlertRulesDocument:
    return _document(await AlertRulesRepository(session, tenant=tenant).get())


def _document(row: FeedbackAlertRules | None) -> AlertRulesDocument:
    return AlertRulesDocument() if row is None else AlertRulesDocument.model_validate(row.document)


async def get_rules(*, session: AsyncSession, caller: CallerContext) -> AlertRulesPublic:
    row = await AlertRulesRepository(session, tenant=caller.tenant).get()
    return AlertRulesPublic(
        **_document(row).model_dump(),
        updated_at=row.updated_at if row is not None else None,
        updated_by=row.updated_by if row is not None else None,
    )


async def put_rules(
    *,
    session: AsyncSession,
    rules: AlertRules,
    caller: CallerContext,
    document: AlertRulesDocument,
) -> AlertRulesPublic:
    """Replace the tenant's rules; committed here, so this process forgets the old ones only
    once the new ones are in force."""
    row = await AlertRulesRepository(session, tenant=caller.tenant).get()
    if row is None:
        row = FeedbackAlertRules(tenant=caller.tenant, document={}, updated_at=datetime.now(UTC))
        session.add(row)
    row.document = document.model_dump(mode="json")
    row.updated_at = datetime.now(UTC)
    row.updated_by = caller.subject
    await session.commit()
    rules.forget(caller.tenant)
    return AlertRulesPublic(
        **document.model_dump(), updated_at=row.updated_at, updated_by=row.updated_by
    )


# --- the real-time rule, inside intake's transaction --------------------------------------------


@dataclass(frozen=True, slots=True)
class Raised:
    """What a new response adds to its group commit: alert rows and their events."""

    rows: list[Row]
    events: list[Event]


async def realtime_alerts(*, rules: AlertRules, tenant: str, response: ResponsePublic) -> Raised:
    """The real-time alert ``response`` raises under the tenant's rule, if any, as rows and an
    event to write with the response itself."""
    document = (await rules.get(tenant)).realtime
    rule = RealtimeRule(
        enabled=document.enabled,
        tiers=frozenset(document.tiers),
        min_confidence=document.min_confidence,
    )
    sentiment = response.enrichment.sentiment
    found = realtime_alert(
        rule,
        tier=response.customer_tier,
        negative=sentiment is not None and sentiment.label is SentimentLabel.NEGATIVE,
        confidence=sentiment.confidence if sentiment is not None else None,
        tags=[
            Tag(
                topic=tag.topic,
                owner=tag.owner,
                negative=tag.sentiment is not None
                and tag.sentiment.label is SentimentLabel.NEGATIVE,
            )
            for tag in response.enrichment.topics
        ],
    )
    if found is None:
        return Raised(rows=[], events=[])
    alert = AlertPublic(
        id=uuid7(),
        granularity=REALTIME,
        topic=found.topic,
        segment=found.segment,
        team=found.team,
        period_start=response.occurred_at,
        period_end=response.occurred_at,
        test=REALTIME,
        p_value=None,
        observed=1,
        expected=None,
        statistic=None,
        threshold=None,
        reason=found.reason,
        response_id=response.id,
        status=AlertStatus.OPEN,
        raised_at=response.received_at,
        acknowledged_at=None,
        acknowledged_by=None,
    )
    table = FeedbackAlert.__table__  # type: ignore[attr-defined]
    return Raised(
        rows=[(table, {**alert.model_dump(), "tenant": tenant})],
        events=[events.alert_raised(alert, tenant=tenant)],
    )


# --- the periodic detector ----------------------------------------------------------------------


async def evaluate_tenant(
    *,
    db: Database,
    enrichments: Enrichments,
    rules: AlertRules,
    tenant: str,
    granularity: Granularity,
    period: datetime,
    now: datetime,
) -> list[AlertPublic]:
    """Run the detector on the tenant's counts for the period starting at ``period`` and store
    the alerts not stored yet; return those this call stored."""
    periodic = (await rules.get(tenant)).periodic
    if not periodic.enabled:
        return []
    config = detector_config(granularity, alpha=periodic.alpha, min_count=periodic.min_count)
    start = history_start(period, granularity, config)
    end = period + period_length(granularity)
    async with db.sessionmaker() as session:
        complaints = ComplaintRepository(session, tenant=tenant)
        counts = await complaints.counts(granularity=granularity, start=start, end=end)
        totals = await complaints.totals(granularity=granularity, start=start, end=end)
    found = alerts_in(counts, totals, period=period, granularity=granularity, config=config)
    if not found:
        return []
    taxonomy = (await enrichments.get(tenant)).enrichment.taxonomy
    raised = []
    for alert in found:
        topic = taxonomy.topic(alert.topic)
        team = (topic.owner if topic is not None else None) or DEFAULT_TEAM
        stored = await _store(
            db, tenant=tenant, alert=_public(alert, granularity, team=team, now=now)
        )
        if stored is not None:
            raised.append(stored)
    return raised


def _public(
    alert: PeriodAlert, granularity: Granularity, *, team: str, now: datetime
) -> AlertPublic:
    return AlertPublic(
        id=uuid7(),
        granularity=granularity.value,
        topic=alert.topic,
        segment=alert.segment,
        team=team,
        period_start=alert.period_start,
        period_end=alert.period_end,
        test=alert.test,
        p_value=alert.p_value,
        observed=alert.observed,
        expected=alert.expected,
        statistic=alert.statistic,
        threshold=alert.threshold,
        reason=alert.reason,
        response_id=None,
        status=AlertStatus.OPEN,
        raised_at=now,
        acknowledged_at=None,
        acknowledged_by=None,
    )


async def _store(db: Database, *, tenant: str, alert: AlertPublic) -> AlertPublic | None:
    """Insert ``alert`` with its event unless the series already alerted in that period; the
    unique index settles a race with another replica (the loser stores and publishes nothing).
    """
    try:
        async with db.transaction() as session:
            if await AlertRepository(session, tenant=tenant).exists(
                granularity=Granularity(alert.granularity),
                topic=alert.topic or "",
                segment=alert.segment,
                period_start=alert.period_start,
            ):
                return None
            session.add(FeedbackAlert(**alert.model_dump(), tenant=tenant))
            await add_event(session, events.alert_raised(alert, tenant=tenant))
    except IntegrityError:
        return None
    log.info("alert %s: %s", alert.id, alert.reason)
    return alert


class AlertDetector:
    """Evaluates every closed hour and day for the tenants with complaints in it (a service
    component). ``clock`` tells the time; tests move it and call :meth:`evaluate_due`."""

    def __init__(self, state: ServiceState, *, clock: Clock = system_clock) -> None:
        self.db = state.db
        self.enrichments = state.component(Enrichments)
        self.rules = state.component(AlertRules)
        self.clock = clock
        self._evaluated: dict[Granularity, datetime] = {}
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="cxops-feedback-alerts")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self.evaluate_due()
            except Exception:
                log.exception("complaint alerts: evaluation failed; trying at the next close")
            now = self.clock()
            await asyncio.sleep((next_close(now) + CLOSE_GRACE - now).total_seconds())

    async def evaluate_due(self) -> list[AlertPublic]:
        """Evaluate the latest closed hour and day, each once per process (a period closed
        while no replica ran is not evaluated later), for every tenant with complaints in it."""
        async with self._lock:
            now = self.clock()
            raised: list[AlertPublic] = []
            for granularity in Granularity:
                period = last_closed(now, granularity)
                if self._evaluated.get(granularity) == period:
                    continue
                async with self.db.sessionmaker() as session:
                    tenants = await tenants_with_complaints(
                        session, start=period, end=period + period_length(granularity)
                    )
                for tenant in tenants:
                    raised += await self._evaluate(tenant, granularity, period, now)
                self._evaluated[granularity] = period
            return raised

    async def evaluate_tenant(self, tenant: str) -> list[AlertPublic]:
        """Evaluate the latest closed hour and day for one tenant, now (on demand)."""
        now = self.clock()
        raised: list[AlertPublic] = []
        for granularity in Granularity:
            raised += await self._evaluate(tenant, granularity, last_closed(now, granularity), now)
        return raised

    async def _evaluate(
        self, tenant: str, granularity: Granularity, period: datetime, now: datetime
    ) -> list[AlertPublic]:
        return await evaluate_tenant(
            db=self.db,
            enrichments=self.enrichments,
            rules=self.rules,
            tenant=tenant,
            granularity=granularity,
            period=period,
            now=now,
        )


# --- reading and acknowledging ----------------------------------------------------------------


async def list_alerts(
    *,
    session: AsyncSession,
    caller: CallerContext,
    status: AlertStatus | None,
    topic: str | None,
    cursor: uuid.UUID | None,
    limit: int,
) -> tuple[list[FeedbackAlert], uuid.UUID | None]:
    """A page of the tenant's alerts, newest first, and the cursor of the next page."""
    rows = await AlertRepository(session, tenant=caller.tenant).list_newest_first(
        status=status.value if status is not None else None,
        topic=topic,
        before=cursor,
        limit=limit + 1,
    )
    return page_of(rows, limit)


async def get_alert(
    *, session: AsyncSession, caller: CallerContext, alert_id: uuid.UUID
) -> AlertDetail:
    """The alert and the responses behind it: for a periodic alert, those complaining about its
    topic in its segment and period; for a real-time one, its response."""
    alert = await AlertRepository(session, tenant=caller.tenant).get(alert_id)
    if alert is None:
        raise AlertNotFound(alert_id)
    if alert.response_id is not None:
        response = await ResponseRepository(session, tenant=caller.tenant).get(alert.response_id)
        behind, total = ([response], 1) if response is not None else ([], 0)
    else:
        tier = alert.segment.removeprefix("tier:") if alert.segment.startswith("tier:") else None
        behind, total = await ComplaintRepository(session, tenant=caller.tenant).behind(
            topic=alert.topic or "",
            tier=tier,
            start=alert.period_start,
            end=alert.period_end,
            limit=RESPONSES_BEHIND,
        )
    return AlertDetail(
        **AlertPublic.model_validate(alert).model_dump(),
        responses=[AlertResponsePublic.model_validate(row) for row in behind],
        responses_total=total,
    )


async def acknowledge(
    *, session: AsyncSession, caller: CallerContext, alert_id: uuid.UUID
) -> AlertPublic:
    """Record who acknowledged the alert and when. Only an open alert can be acknowledged: a
    second acknowledgement raises :class:`AlreadyAcknowledged` (the first one stands)."""
    alerts = AlertRepository(session, tenant=caller.tenant)
    changed = await session.execute(
        alerts.update(FeedbackAlert)
        .where(
            col(FeedbackAlert.id) == alert_id,
            col(FeedbackAlert.status) == AlertStatus.OPEN.value,
        )
        .values(
            status=AlertStatus.ACKNOWLEDGED.value,
            acknowledged_at=datetime.now(UTC),
            acknowledged_by=caller.subject,
        )
        .execution_options(synchronize_session=False)
    )
    alert = await session.scalar(
        alerts.select(FeedbackAlert)
        .where(col(FeedbackAlert.id) == alert_id)
        .execution_options(populate_existing=True)
    )
    if alert is None:
        raise AlertNotFound(alert_id)
    if changed.rowcount == 0:  # type: ignore[attr-defined]
        raise AlreadyAcknowledged(alert)
    return AlertPublic.model_validate(alert)
