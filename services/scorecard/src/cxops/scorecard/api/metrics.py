"""``/v1/scorecard/metrics``: the tenant's survey metrics, computed when asked."""

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError

from cxops.common.auth import Caller
from cxops.common.db import SessionDep
from cxops.common.validation import UtcDateTime
from cxops.scorecard import service
from cxops.scorecard.domain.metrics import Metric
from cxops.scorecard.schemas import MetricPublic

router = APIRouter(prefix="/metrics", tags=["metrics"])


@router.get("/{metric}", response_model=MetricPublic, summary="One survey metric")
async def get_metric(
    metric: Metric,
    caller: Caller,
    session: SessionDep,
    occurred_from: Annotated[
        UtcDateTime | None,
        Query(alias="from", description="Only answers given at or after this time."),
    ] = None,
    occurred_to: Annotated[
        UtcDateTime | None,
        Query(alias="to", description="Only answers given before this time."),
    ] = None,
) -> MetricPublic:
    """NPS, CSAT or CES over the caller's tenant's answers, optionally within ``[from, to)``."""
    if occurred_from is not None and occurred_to is not None and occurred_to <= occurred_from:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", "to"),
                    "msg": "must be later than 'from'",
                    "type": "range_empty",
                }
            ]
        )
    value = await service.metric_value(
        session=session,
        caller=caller,
        metric=metric,
        occurred_from=occurred_from,
        occurred_to=occurred_to,
    )
    return MetricPublic(metric=value.metric, value=value.value, responses=value.responses)
