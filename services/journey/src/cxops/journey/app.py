"""The journey service: interactions in, resolved into customers across channels; journey maps,
process mining and simulation."""

from pathlib import Path

from fastapi import FastAPI

from cxops.common.service import ServiceSpec, create_service_app
from cxops.journey.api import customers, interactions
from cxops.journey.settings import JourneySettings

SPEC = ServiceSpec(
    name="journey",
    description=("Interactions, identity resolution, journey maps, process mining and simulation."),
    migrations=Path(__file__).parent / "migrations",
    routers=[interactions.router, customers.router],
    tags=[
        {
            "name": "interactions",
            "description": "What happened to customers, as platforms report it.",
        },
        {
            "name": "customers",
            "description": "One customer across channels: profiles resolved from interactions.",
        },
    ],
)


def create_app(settings: JourneySettings | None = None) -> FastAPI:
    """The ASGI app; a uvicorn factory (``cxops.journey.app:create_app --factory``) that reads
    ``CXOPS_JOURNEY_*`` from the environment when no settings are given."""
    return create_service_app(SPEC, settings or JourneySettings())
