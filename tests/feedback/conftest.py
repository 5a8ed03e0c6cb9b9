"""The feedback service running in-process on a migrated database of each kind and a real
JetStream server, and a NATS client to read what it publishes."""

import asyncio
from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client as NatsClient

from cxops.common.embedded import NatsServer
from cxops.common.migrations import upgrade
from cxops.feedback.app import SPEC, create_app
from cxops.feedback.settings import FeedbackSettings
from tests.feedback.harness import RunningService, running, settings_for


@pytest.fixture
async def feedback_database(database_url: str) -> str:
    await upgrade(database_url, SPEC.migrations)
    return database_url


@pytest.fixture
async def feedback(
    feedback_database: str, nats_server: NatsServer
) -> AsyncIterator[RunningService]:
    settings = settings_for(
        FeedbackSettings, database_url=feedback_database, nats_url=nats_server.url
    )
    async with running(create_app(settings)) as service:
        yield service


@pytest.fixture
async def nats_client(nats_server: NatsServer) -> AsyncIterator[NatsClient]:
    client = await nats.connect(nats_server.url, connect_timeout=2)
    yield client
    await asyncio.wait_for(client.close(), timeout=5)
