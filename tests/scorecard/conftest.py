"""The scorecard service running in-process with its real consumer, the feedback service beside
it when a test posts responses, each on its own migrated database of the same kind, and one
real JetStream server."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cxops.cli.nats_server import NatsServer
from cxops.common.migrations import upgrade
from cxops.feedback.app import SPEC as FEEDBACK_SPEC
from cxops.scorecard.app import SPEC as SCORECARD_SPEC
from cxops.scorecard.app import create_app as create_scorecard_app
from cxops.scorecard.settings import ScorecardSettings
from tests.support.services import RunningService, running, settings_for


@pytest.fixture
async def scorecard_database(database_url: str) -> str:
    await upgrade(database_url, SCORECARD_SPEC.migrations)
    return database_url


@pytest.fixture
async def feedback_database(
    database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> str:
    """Feedback's own database, of the same kind as scorecard's."""
    if database_url.startswith("sqlite"):
        url = f"sqlite+aiosqlite:///{tmp_path / 'feedback.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database("feedback")
    await upgrade(url, FEEDBACK_SPEC.migrations)
    return url


@pytest.fixture
async def scorecard(
    scorecard_database: str, nats_server: NatsServer
) -> AsyncIterator[RunningService]:
    settings = settings_for(
        ScorecardSettings, database_url=scorecard_database, nats_url=nats_server.url
    )
    async with running(create_scorecard_app(settings)) as service:
        yield service
