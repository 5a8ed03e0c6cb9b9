"""The feedback service: survey responses in, ``cx.feedback.response.received.v1`` out.

Later issues add survey triggers, enrichment, closed-loop cases and alerts.
"""

from pathlib import Path

from fastapi import FastAPI

from cxops.common.service import ServiceSpec, create_service_app
from cxops.feedback.alerting import AlertDetector, AlertRules
from cxops.feedback.api import alerts, enrichment, responses
from cxops.feedback.enrichment import Enrichments
from cxops.feedback.settings import FeedbackSettings

SPEC = ServiceSpec(
    name="feedback",
    description="Survey triggers, feedback intake, enrichment, closed-loop cases and alerts.",
    migrations=Path(__file__).parent / "migrations",
    routers=[responses.router, enrichment.router, alerts.router],
    components=[
        lambda state: Enrichments(state.db),
        lambda state: AlertRules(state.db),
        AlertDetector,
    ],
    tags=[
        {
            "name": "responses",
            "description": "Survey answers (NPS, CSAT, CES), each with what was read in it.",
        },
        {
            "name": "enrichment",
            "description": "The topic taxonomy, the review queue, labels and calibration.",
        },
        {
            "name": "alerts",
            "description": "Complaint alerts: hourly and daily spikes per topic, and the "
            "real-time tier rule.",
        },
    ],
)


def create_app(settings: FeedbackSettings | None = None) -> FastAPI:
    """The ASGI app; a uvicorn factory (``cxops.feedback.app:create_app --factory``) that reads
    ``CXOPS_FEEDBACK_*`` from the environment when no settings are given."""
    return create_service_app(SPEC, settings or FeedbackSettings())
