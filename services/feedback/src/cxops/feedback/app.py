"""The feedback service: survey responses in, ``cx.feedback.response.received.v1`` out.

Later issues add survey triggers, enrichment, closed-loop cases and alerts.
"""

from dataclasses import replace
from functools import partial
from pathlib import Path

from fastapi import FastAPI

from cxops.common.service import ServiceSpec, ServiceState, create_service_app
from cxops.feedback.api import enrichment, imports, responses, surveys
from cxops.feedback.consumers import JOURNEY_INTERACTIONS, ROUTING_TASKS
from cxops.feedback.enrichment import EnrichmentPool, Enrichments
from cxops.feedback.invitations import Clock, InvitationTimer, system_clock
from cxops.feedback.settings import FeedbackSettings


def _enrichment_pool(state: ServiceState) -> EnrichmentPool:
    settings = state.settings
    assert isinstance(settings, FeedbackSettings)
    return EnrichmentPool(settings.import_workers)


SPEC = ServiceSpec(
    name="feedback",
    description="Survey triggers, feedback intake, enrichment, closed-loop cases and alerts.",
    migrations=Path(__file__).parent / "migrations",
    routers=[responses.router, imports.router, enrichment.router, surveys.router],
    consumers=[ROUTING_TASKS, JOURNEY_INTERACTIONS],
    components=[lambda state: Enrichments(state.db), _enrichment_pool, InvitationTimer],
    tags=[
        {
            "name": "responses",
            "description": "Survey answers (NPS, CSAT, CES), each with what was read in it.",
        },
        {
            "name": "enrichment",
            "description": "The topic taxonomy, the review queue, labels and calibration.",
        },
        {"name": "surveys", "description": "Surveys and the exit points that trigger them."},
        {
            "name": "invitations",
            "description": "Invitations to surveys, and the exit points not invited and why.",
        },
    ],
)


def create_app(settings: FeedbackSettings | None = None, *, clock: Clock = system_clock) -> FastAPI:
    """The ASGI app; a uvicorn factory (``cxops.feedback.app:create_app --factory``) that reads
    ``CXOPS_FEEDBACK_*`` from the environment when no settings are given. ``clock`` is the
    invitations' time (tests move it instead of sleeping)."""
    components = [
        partial(InvitationTimer, clock=clock) if factory is InvitationTimer else factory
        for factory in SPEC.components
    ]
    spec = replace(SPEC, components=components)
    return create_service_app(spec, settings or FeedbackSettings())
