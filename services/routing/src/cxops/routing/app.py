"""The routing service: agents, skills, queues, tasks, matching and staffing."""

from pathlib import Path

from fastapi import FastAPI

from cxops.common.service import ServiceSpec, create_service_app
from cxops.routing.api import routing
from cxops.routing.ownership import NotOwner, forward_to_owner
from cxops.routing.settings import RoutingSettings
from cxops.routing.switchboard import OWNERS_BUCKET, Switchboard

SPEC = ServiceSpec(
    name="routing",
    description="Agents, skills and proficiency, queues, tasks, skill-based matching and staffing.",
    migrations=Path(__file__).parent / "migrations",
    routers=[routing.router],
    components=[Switchboard],
    tags=[
        {"name": "agents", "description": "Agents, their skills, channels and presence."},
        {"name": "queues", "description": "Lines of work and the policy their tasks follow."},
        {"name": "tasks", "description": "Work to route, from arrival to outcome."},
        {"name": "reservations", "description": "Offers of tasks to agents."},
    ],
    lease_buckets=(OWNERS_BUCKET,),
)


def create_app(settings: RoutingSettings | None = None) -> FastAPI:
    app = create_service_app(SPEC, settings or RoutingSettings())
    app.add_exception_handler(NotOwner, forward_to_owner)
    return app
