"""The journey service: journey maps, interaction logs, identity resolution, mining, simulation,
and proactive triggers.
"""

from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path

from fastapi import FastAPI

from cxops.common.service import Component, ServiceSpec, ServiceState, create_service_app
from cxops.journey import triggers
from cxops.journey.api import triggers as triggers_api
from cxops.journey.clock import Clock, system_clock
from cxops.journey.settings import JourneySettings


def components(clock: Clock) -> Sequence[Callable[[ServiceState], Component]]:
    """The service's components, every one reading time from ``clock``."""
    return (partial(triggers.Triggers, clock=clock),)


SPEC = ServiceSpec(
    name="journey",
    description=(
        "Journey maps, interaction logs, identity resolution, process mining and simulation."
    ),
    migrations=Path(__file__).parent / "migrations",
    routers=[triggers_api.router],
    consumers=[triggers.INTERACTIONS, triggers.HANDOFFS],
    components=components(system_clock),
    tags=[
        {
            "name": "triggers",
            "description": (
                "Proactive triggers: acting before customers complain, within frequency caps "
                "and quiet hours, with a holdout that measures the effect."
            ),
        },
    ],
)


def create_app(settings: JourneySettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """The ASGI app; a uvicorn factory (``cxops.journey.app:create_app --factory``) that reads
    ``CXOPS_JOURNEY_*`` from the environment when no settings are given. ``clock`` replaces the
    system's time for every decision and timer (tests move it instead of sleeping)."""
    spec = SPEC if clock is None else replace(SPEC, components=components(clock))
    return create_service_app(spec, settings or JourneySettings())
