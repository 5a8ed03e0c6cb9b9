"""The journey service as its tests start it: on the test's database (migrated once, of each
kind) and NATS, with the settings and the clock a test asks for."""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from functools import partial
from typing import Any

import pytest

from cxops.cli.nats_server import NatsServer
from cxops.common.clock import Clock
from cxops.common.migrations import upgrade
from cxops.journey.app import SPEC, create_app
from cxops.journey.settings import JourneySettings
from tests.support.services import RunningService, running, settings_for

JourneySettingsFor = Callable[..., JourneySettings]
StartJourney = Callable[..., AbstractAsyncContextManager[RunningService]]


@pytest.fixture
async def journey_settings(database_url: str, nats_server: NatsServer) -> JourneySettingsFor:
    """Settings for a journey service on the test's migrated database and broker; keywords
    override any setting."""
    await upgrade(database_url, SPEC.migrations)
    return partial(
        settings_for, JourneySettings, database_url=database_url, nats_url=nats_server.url
    )


@pytest.fixture
def start_journey(journey_settings: JourneySettingsFor) -> StartJourney:
    """``start_journey(clock=..., **settings)`` starts a journey service, as often as a test
    asks (a restart, two replicas): ``clock`` replaces the system's time for its timers, other
    keywords override settings."""

    def start(
        *, clock: Clock | None = None, **overrides: Any
    ) -> AbstractAsyncContextManager[RunningService]:
        return running(create_app(journey_settings(**overrides), clock=clock))

    return start


@pytest.fixture
async def journey(start_journey: StartJourney) -> AsyncIterator[RunningService]:
    async with start_journey() as service:
        yield service
