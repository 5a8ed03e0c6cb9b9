"""The journey service: journey maps, interaction logs, identity resolution, mining, simulation.

For now the skeleton only: settings, migrations (the outbox and the inbox), health, metrics and
the operator's dead-letter view, so the suite starts whole and later issues add the behaviour.
"""

from pathlib import Path

from fastapi import FastAPI

from cxops.common.service import ServiceSpec, create_service_app
from cxops.journey.api import context
from cxops.journey.projections import FEEDBACK_FACTS, ROUTING_FACTS
from cxops.journey.settings import JourneySettings

SPEC = ServiceSpec(
    name="journey",
    description=(
        "Journey maps, interaction logs, identity resolution, process mining and simulation."
    ),
    migrations=Path(__file__).parent / "migrations",
    # The context router first: its /customers/context must win over /customers/{id}.
    routers=[context.router],
    consumers=[FEEDBACK_FACTS, ROUTING_FACTS],
    tags=[
        {
            "name": "customers",
            "description": "Resolved customers, their timeline and the agent desktop's context.",
        },
    ],
)


def create_app(settings: JourneySettings | None = None) -> FastAPI:
    """The ASGI app; a uvicorn factory (``cxops.journey.app:create_app --factory``) that reads
    ``CXOPS_JOURNEY_*`` from the environment when no settings are given."""
    return create_service_app(SPEC, settings or JourneySettings())
