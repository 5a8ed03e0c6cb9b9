"""The journey service: interactions in, resolved into customers across channels; journey maps
as a resource (versions, conformance over the stored interactions) and live (each customer's
stage, completed stages and delayed handoffs as interactions arrive); proactive triggers with
their holdouts; process mining and simulation as jobs any replica's worker takes from the
work-queue stream."""

from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path

from fastapi import FastAPI

from cxops.common.clock import Clock, system_clock
from cxops.common.service import Component, ServiceSpec, ServiceState, create_service_app
from cxops.journey import triggers
from cxops.journey.api import context, customers, interactions, maps
from cxops.journey.api import event_logs as event_logs_api
from cxops.journey.api import jobs as jobs_api
from cxops.journey.api import triggers as triggers_api
from cxops.journey.jobs import JOB_QUEUE, JobWorker
from cxops.journey.maps_live import MAP_PROGRESS, LiveMaps
from cxops.journey.projections import FEEDBACK_FACTS, ROUTING_FACTS
from cxops.journey.settings import JourneySettings


def components(clock: Clock) -> Sequence[Callable[[ServiceState], Component]]:
    """The service's components, every one reading time from ``clock``."""
    return (partial(LiveMaps, clock=clock), partial(triggers.Triggers, clock=clock), JobWorker)


SPEC = ServiceSpec(
    name="journey",
    description="Interactions, identity resolution, journey maps, triggers, mining and simulation.",
    migrations=Path(__file__).parent / "migrations",
    # The context router before the customers': its /customers/context must win over
    # /customers/{id}.
    routers=[
        interactions.router,
        context.router,
        customers.router,
        maps.router,
        triggers_api.router,
        event_logs_api.router,
        jobs_api.router,
    ],
    consumers=[
        MAP_PROGRESS,
        triggers.INTERACTIONS,
        triggers.HANDOFFS,
        FEEDBACK_FACTS,
        ROUTING_FACTS,
    ],
    components=components(system_clock),
    work_queues=(JOB_QUEUE,),
    tags=[
        {
            "name": "interactions",
            "description": "What happened to customers, as platforms report it.",
        },
        {
            "name": "customers",
            "description": (
                "One customer across channels: profiles resolved from interactions, their "
                "timeline and the agent desktop's context."
            ),
        },
        {
            "name": "maps",
            "description": (
                "Journey maps: stages with their owners, RACI, touchpoints and channels, "
                "handoff SLAs; versioned, and held against the stored interactions."
            ),
        },
        {
            "name": "triggers",
            "description": (
                "Proactive triggers: acting before customers complain, within frequency caps "
                "and quiet hours, with a holdout that measures the effect."
            ),
        },
        {
            "name": "mining jobs",
            "description": (
                "Event logs uploaded for mining, and `cxops journey mine` and `simulate` as "
                "jobs any replica runs; results are the commands' `--json` output."
            ),
        },
    ],
)


def create_app(settings: JourneySettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """The ASGI app; a uvicorn factory (``cxops.journey.app:create_app --factory``) that reads
    ``CXOPS_JOURNEY_*`` from the environment when no settings are given. ``clock`` replaces the
    system's time for every timer (tests move it instead of sleeping)."""
    spec = SPEC if clock is None else replace(SPEC, components=components(clock))
    return create_service_app(spec, settings or JourneySettings())
