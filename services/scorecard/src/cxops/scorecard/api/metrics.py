"""``/v1/scorecard/metrics``: the tenant's survey metrics, computed when asked."""

from typing import Annotated

from fastapi import APIRouter, Query

from cxops.common.auth import Caller
from cxops.common.db import SessionDep
from cxops.common.validation import UtcDateTime
from cxops.scorecard import service
from cxops.scorecard.schemas import MetricPublic
from cxops.stats.scales import SurveyKind

router = APIRouter(prefix="/metrics", tags=["metrics"])


@router.get("/{metric}", response_model=MetricPublic, summary="One survey metric")
async def get_metric(
    metric: SurveyKind,
    caller: Caller,
    session: SessionDep,
    occurred_from: Annotated[
        UtcDateTime | None,
        Query(alias="from", description="Only answers given at or after this time."),
    ] = None,
    occurred_to: Annotated[
        UtcDateTime | None,
        Query(
            alias="to",
            description=(
                "Only answers given before this time. A window that ends at or before its "
                "`from` holds no answer: the value is null and `responses` 0."
            ),
        ),
    ] = None,
) -> MetricPublic:
    """NPS, CSAT or CES over the caller's tenant's answers, optionally within ``[from, to)``.

    An empty window (``to`` at or before ``from``) is answered, not refused: JSON Schema cannot
    compare two parameters, so a rule against it could not be in the OpenAPI document, and the
    answer for a window with nothing in it is well defined.
    """
    value = await service.metric_value(
        session=session,
        caller=caller,
        metric=metric,
        occurred_from=occurred_from,
        occurred_to=occurred_to,
    )
    return MetricPublic(metric=value.metric, value=value.value, responses=value.responses)
