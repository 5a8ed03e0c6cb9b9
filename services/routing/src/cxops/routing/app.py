"""The routing service: agents, skills, queues, tasks, matching and staffing."""

from pathlib import Path

from fastapi import FastAPI

from cxops.common.service import ServiceSpec, create_service_app
from cxops.routing.settings import RoutingSettings

SPEC = ServiceSpec(
    name="routing",
    description="Agents, skills and proficiency, queues, tasks, skill-based matching and staffing.",
    migrations=Path(__file__).parent / "migrations",
)


def create_app(settings: RoutingSettings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or RoutingSettings())
