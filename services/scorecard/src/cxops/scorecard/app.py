"""The scorecard service: metric facts folded from every event, and the figures they give.

For now it counts survey answers from ``cx.feedback.response.received.v1`` and answers NPS,
CSAT and CES per tenant; later issues add metric definitions, scorecards and variance governance.
"""

from pathlib import Path

from fastapi import FastAPI

from cxops.common.service import ServiceSpec, create_service_app
from cxops.scorecard.api import metrics
from cxops.scorecard.events import FEEDBACK_RESPONSES
from cxops.scorecard.settings import ScorecardSettings

SPEC = ServiceSpec(
    name="scorecard",
    description="Metric definitions, balanced scorecards, variance governance and action plans.",
    migrations=Path(__file__).parent / "migrations",
    routers=[metrics.router],
    consumers=[FEEDBACK_RESPONSES],
    tags=[{"name": "metrics", "description": "Survey metrics per tenant: NPS, CSAT and CES."}],
)


def create_app(settings: ScorecardSettings | None = None) -> FastAPI:
    """The ASGI app; a uvicorn factory (``cxops.scorecard.app:create_app --factory``) that reads
    ``CXOPS_SCORECARD_*`` from the environment when no settings are given."""
    return create_service_app(SPEC, settings or ScorecardSettings())
