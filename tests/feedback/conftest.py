"""Feedback's own database for its tests: a migrated one of each kind (the ``feedback`` service
fixture and ``nats_client`` come from ``tests/conftest.py``)."""

import pytest

from cxops.common.migrations import upgrade
from cxops.feedback.app import SPEC


@pytest.fixture
async def feedback_database(database_url: str) -> str:
    await upgrade(database_url, SPEC.migrations)
    return database_url
