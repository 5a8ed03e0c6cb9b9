"""The routing service: agents, skills, queues, tasks, matching and staffing."""

from pathlib import Path

from fastapi import FastAPI

from cxops.common.service import ServiceSpec, create_service_app
from cxops.routing.api import staffing
from cxops.routing.settings import RoutingSettings

SPEC = ServiceSpec(
    name="routing",
    description="Agents, skills and proficiency, queues, tasks, skill-based matching and staffing.",
    migrations=Path(__file__).parent / "migrations",
    routers=[staffing.router],
    tags=[
        {
            "name": "staffing",
            "description": (
                "Erlang C and Erlang A staffing for one interval, and a forecast's plan: pure "
                "calculations, the same figures as `cxops staffing ... --json`."
            ),
        }
    ],
)


def create_app(settings: RoutingSettings | None = None) -> FastAPI:
    """The ASGI app; a uvicorn factory (``cxops.routing.app:create_app --factory``) that reads
    ``CXOPS_ROUTING_*`` from the environment when no settings are given."""
    return create_service_app(SPEC, settings or RoutingSettings())
