"""The feedback service: survey answers in, each enriched (redacted, its language, sentiment and
topics); the closed-loop cases negative answers open, with their SLA clocks; survey invitations
at the customer's exit points; bulk imports; and live complaint alerts."""

from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path

from fastapi import FastAPI

from cxops.common.clock import Clock, system_clock
from cxops.common.service import Component, ServiceSpec, ServiceState, create_service_app
from cxops.feedback.alerting import AlertDetector, AlertRules
from cxops.feedback.api import alerts, cases, enrichment, imports, responses, surveys
from cxops.feedback.cases import CaseClocks, CaseSettingsCache
from cxops.feedback.consumers import JOURNEY_INTERACTIONS, ROUTING_TASKS
from cxops.feedback.enrichment import EnrichmentPool, Enrichments
from cxops.feedback.invitations import InvitationTimer
from cxops.feedback.settings import FeedbackSettings


def _enrichment_pool(state: ServiceState) -> EnrichmentPool:
    settings = state.settings
    assert isinstance(settings, FeedbackSettings)
    return EnrichmentPool(settings.import_workers)


def components(clock: Clock) -> Sequence[Callable[[ServiceState], Component]]:
    """The service's components, every timer reading time from ``clock``."""
    return (
        Enrichments,
        _enrichment_pool,
        CaseSettingsCache,
        partial(CaseClocks, now=clock),
        partial(InvitationTimer, clock=clock),
        AlertRules,
        partial(AlertDetector, clock=clock),
    )


SPEC = ServiceSpec(
    name="feedback",
    description="Survey triggers, feedback intake, enrichment, closed-loop cases and alerts.",
    migrations=Path(__file__).parent / "migrations",
    routers=[
        responses.router,
        imports.router,
        enrichment.router,
        cases.router,
        surveys.router,
        alerts.router,
    ],
    consumers=[ROUTING_TASKS, JOURNEY_INTERACTIONS],
    components=components(system_clock),
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
            "name": "cases",
            "description": (
                "Closed-loop cases: opened by negative answers, owned by a team, acknowledged, "
                "actioned with a root cause and closed within SLA clocks."
            ),
        },
        {"name": "surveys", "description": "Surveys and the exit points that trigger them."},
        {
            "name": "invitations",
            "description": "Invitations to surveys, and the exit points not invited and why.",
        },
        {
            "name": "alerts",
            "description": "Complaint alerts: hourly and daily spikes per topic, and the "
            "real-time tier rule.",
        },
    ],
)


def create_app(settings: FeedbackSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """The ASGI app; a uvicorn factory (``cxops.feedback.app:create_app --factory``) that reads
    ``CXOPS_FEEDBACK_*`` from the environment when no settings are given. ``clock`` replaces the
    system's time for every timer (tests move it instead of sleeping)."""
    spec = SPEC if clock is None else replace(SPEC, components=components(clock))
    return create_service_app(spec, settings or FeedbackSettings())
