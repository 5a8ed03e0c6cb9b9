"""Real servers for the tests: nats-server with JetStream and PostgreSQL, each started in a
temporary directory on a free port and stopped afterwards."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.js.api import StreamConfig

from cxops.cli.nats_server import NatsServer
from tests.support.postgres import PostgresServer
from tests.support.services import RunningService, running, settings_for

os.environ.setdefault("CXOPS_TEST", "1")

#: The whole suite as processes (``suite``, ``suite_factory``), for any test that asks.
pytest_plugins = ["tests.support.suite"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    base = Path(tempfile.mkdtemp(prefix="cxops-pg-"))
    server = PostgresServer(base).start()
    yield server
    server.stop()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats").start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each kind: every database test runs on both."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database()


@pytest.fixture
async def nats_client(nats_server: NatsServer) -> AsyncIterator[NatsClient]:
    """A plain NATS client, to read what a service published or to publish by hand."""
    client = await nats.connect(nats_server.url, connect_timeout=2)
    yield client
    await asyncio.wait_for(client.close(), timeout=5)


@pytest.fixture
async def feedback_stream(nats_client: NatsClient) -> str:
    """CX_FEEDBACK as feedback would provision it, for tests that publish events by hand."""
    await nats_client.jetstream().add_stream(
        StreamConfig(name="CX_FEEDBACK", subjects=["cx.feedback.>"], duplicate_window=120)
    )
    return "CX_FEEDBACK"


@pytest.fixture
async def feedback(
    feedback_database: str, nats_server: NatsServer
) -> AsyncIterator[RunningService]:
    """The feedback service in-process on ``feedback_database`` (each test folder says which)."""
    from cxops.feedback.app import create_app
    from cxops.feedback.settings import FeedbackSettings

    settings = settings_for(
        FeedbackSettings, database_url=feedback_database, nats_url=nats_server.url
    )
    async with running(create_app(settings)) as service:
        yield service


@pytest.fixture
async def routing(routing_database: str, nats_server: NatsServer) -> AsyncIterator[RunningService]:
    """The routing service in-process on ``routing_database`` (each test folder says which)."""
    from cxops.routing.app import create_app
    from cxops.routing.settings import RoutingSettings

    settings = settings_for(
        RoutingSettings, database_url=routing_database, nats_url=nats_server.url
    )
    async with running(create_app(settings)) as service:
        yield service


@pytest.fixture(autouse=True)
async def no_task_left_behind() -> AsyncIterator[None]:
    """Cancel what a test left running, again and again until it ends.

    pytest-asyncio cancels leftover tasks once and then waits for them without a deadline; on
    Python 3.11 a task inside ``asyncio.wait_for`` (nats-py's requests) can swallow that single
    cancellation, and the test run would hang at teardown.
    """
    yield
    current = asyncio.current_task()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while loop.time() < deadline:
        pending = [task for task in asyncio.all_tasks() if task is not current and not task.done()]
        if not pending:
            return
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=0.2)
