"""Scorecard's use cases. They run inside the caller's transaction (the request's unit of work,
or the consumer's, which also records the event in the inbox) and never commit."""

import logging
import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from cxops.common.auth import CallerContext
from cxops.scorecard import repository
from cxops.scorecard.domain import metrics
from cxops.scorecard.domain.metrics import MetricValue
from cxops.scorecard.models import ResponseFact
from cxops.stats.scales import SurveyKind

log = logging.getLogger("cxops.scorecard")


async def record_response_fact(
    *,
    session: AsyncSession,
    tenant: str,
    event_id: str,
    response_id: uuid.UUID,
    metric: SurveyKind,
    score: int,
    occurred_at: datetime,
) -> bool:
    """Count one survey answer for ``tenant``; ``False`` if that response was already counted
    (announced again under another event id), in which case nothing changes."""
    fact = ResponseFact(
        tenant=tenant,
        response_id=response_id,
        metric=metric,
        score=score,
        occurred_at=occurred_at,
        event_id=event_id,
        recorded_at=datetime.now(UTC),
    )
    counted = await repository.insert_fact_unless_known(session=session, fact=fact)
    if not counted:
        log.info("response %s already counted; event %s changes nothing", response_id, event_id)
    return counted


async def metric_value(
    *,
    session: AsyncSession,
    caller: CallerContext,
    metric: SurveyKind,
    occurred_from: datetime | None,
    occurred_to: datetime | None,
) -> MetricValue:
    """``metric`` over the caller's tenant's answers given in ``[occurred_from, occurred_to)``."""
    counts = await repository.score_counts(
        session=session,
        tenant=caller.tenant,
        metric=metric,
        occurred_from=occurred_from,
        occurred_to=occurred_to,
    )
    return metrics.compute(metric, counts)
