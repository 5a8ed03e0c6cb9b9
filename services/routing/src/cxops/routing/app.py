"""The routing service: agents, skills, queues, tasks, matching and staffing."""

from pathlib import Path

from fastapi import FastAPI

from cxops.common.service import ServiceSpec, create_service_app
from cxops.routing.api import routing, staffing
from cxops.routing.consumers import FEEDBACK_CASES, FEEDBACK_RESPONSES, JOURNEY_TASKS
from cxops.routing.ownership import NotOwner, forward_to_owner
from cxops.routing.settings import RoutingSettings
from cxops.routing.switchboard import OWNERS_BUCKET, Switchboard

SPEC = ServiceSpec(
    name="routing",
    description="Agents, skills and proficiency, queues, tasks, skill-based matching and staffing.",
    migrations=Path(__file__).parent / "migrations",
    routers=[routing.router, staffing.router],
    consumers=[FEEDBACK_CASES, FEEDBACK_RESPONSES, JOURNEY_TASKS],
    components=[Switchboard],
    tags=[
        {"name": "agents", "description": "Agents, their skills, channels and presence."},
        {"name": "queues", "description": "Lines of work and the policy their tasks follow."},
        {"name": "tasks", "description": "Work to route, from arrival to outcome."},
        {"name": "reservations", "description": "Offers of tasks to agents."},
        {
            "name": "staffing",
            "description": (
                "Erlang C and Erlang A staffing for one interval, and a forecast's plan: pure "
                "calculations, the same figures as `cxops staffing ... --json`."
            ),
        },
    ],
    lease_buckets=(OWNERS_BUCKET,),
)


def create_app(settings: RoutingSettings | None = None) -> FastAPI:
    """The ASGI app; a uvicorn factory (``cxops.routing.app:create_app --factory``) that reads
    ``CXOPS_ROUTING_*`` from the environment when no settings are given. A call for a tenant
    another replica owns is forwarded there."""
    app = create_service_app(SPEC, settings or RoutingSettings())
    app.add_exception_handler(NotOwner, forward_to_owner)
    return app
