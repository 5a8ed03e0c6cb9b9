"""Scorecard's use cases. They run inside the caller's transaction (the request's unit of work,
or the consumer's, which also records the event in the inbox) and never commit."""

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession
from uuid6 import uuid7

from cxops.common.auth import CallerContext
from cxops.scorecard import repository
from cxops.scorecard.domain import metrics
from cxops.scorecard.domain.metrics import MetricValue
from cxops.scorecard.repository import FactRepository
from cxops.stats.scales import SurveyKind

log = logging.getLogger("cxops.scorecard")


@dataclass(frozen=True, slots=True)
class ResponseAnswer:
    """One survey answer as an event announced it, in the tenant it belongs to."""

    tenant: str
    event_id: str
    response_id: uuid.UUID
    metric: SurveyKind
    score: int
    occurred_at: datetime


async def record_response_facts(*, session: AsyncSession, answers: Sequence[ResponseAnswer]) -> int:
    """Count survey answers, each in its own tenant; an answer whose response was already
    counted (announced again under another event id) changes nothing. Returns how many were
    new."""
    recorded_at = datetime.now(UTC)
    facts = [
        {
            "id": uuid7(),
            "tenant": answer.tenant,
            "response_id": answer.response_id,
            "metric": answer.metric,
            "score": answer.score,
            "occurred_at": answer.occurred_at,
            "event_id": answer.event_id,
            "recorded_at": recorded_at,
        }
        for answer in answers
    ]
    counted = await repository.insert_facts_unless_known(session=session, facts=facts)
    if counted < len(facts):
        log.info("%d of %d answers were already counted", len(facts) - counted, len(facts))
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
    counts = await FactRepository(session, tenant=caller.tenant).score_counts(
        metric=metric, occurred_from=occurred_from, occurred_to=occurred_to
    )
    return metrics.compute(metric, counts)
