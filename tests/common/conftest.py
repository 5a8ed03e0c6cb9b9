from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cxops.common.db import Database
from cxops.common.migrations import upgrade

SAMPLE_MIGRATIONS = Path(__file__).parent / "sample_migrations"


@pytest.fixture
async def sample_db(database_url: str) -> AsyncIterator[Database]:
    """A database of each kind, migrated to the sample service's schema."""
    await upgrade(database_url, SAMPLE_MIGRATIONS)
    db = Database(database_url)
    yield db
    await db.dispose()
