"""Routing's own database for its tests: a migrated one of each kind (the ``routing`` service
fixture comes from ``tests/conftest.py``)."""

import pytest

from cxops.common.migrations import upgrade
from cxops.routing.app import SPEC


@pytest.fixture
async def routing_database(database_url: str) -> str:
    await upgrade(database_url, SPEC.migrations)
    return database_url
