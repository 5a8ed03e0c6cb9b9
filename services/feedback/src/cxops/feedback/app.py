"""The feedback service: survey responses in, ``cx.feedback.response.received.v1`` out, and the
closed-loop cases negative answers open, with their SLA clocks.

Later issues add survey triggers, enrichment and alerts.
"""

from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path

from fastapi import FastAPI

from cxops.common.service import Component, ServiceSpec, ServiceState, create_service_app
from cxops.feedback.api import cases, responses
from cxops.feedback.cases import CaseClocks, CaseSettingsCache, Now, system_clock
from cxops.feedback.settings import FeedbackSettings


def components(now: Now) -> Sequence[Callable[[ServiceState], Component]]:
    """The service's components, the case clocks reading time from ``now``."""
    return (CaseSettingsCache, partial(CaseClocks, now=now))


SPEC = ServiceSpec(
    name="feedback",
    description="Survey triggers, feedback intake, enrichment, closed-loop cases and alerts.",
    migrations=Path(__file__).parent / "migrations",
    routers=[responses.router, cases.router],
    components=components(system_clock),
    tags=[
        {
            "name": "responses",
            "description": "Survey answers (NPS, CSAT, CES) as the customer gave them.",
        },
        {
            "name": "cases",
            "description": (
                "Closed-loop cases: opened by negative answers, owned by a team, acknowledged, "
                "actioned with a root cause and closed within SLA clocks."
            ),
        },
    ],
)


def create_app(settings: FeedbackSettings | None = None, *, now: Now | None = None) -> FastAPI:
    """The ASGI app; a uvicorn factory (``cxops.feedback.app:create_app --factory``) that reads
    ``CXOPS_FEEDBACK_*`` from the environment when no settings are given. ``now`` replaces the
    system clock of the case clocks (tests move time instead of sleeping)."""
    spec = SPEC if now is None else replace(SPEC, components=components(now))
    return create_service_app(spec, settings or FeedbackSettings())
