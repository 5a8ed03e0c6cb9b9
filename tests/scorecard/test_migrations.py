"""Scorecard's migrations: they build the schema both ways, and the service refuses a database
they have not brought to the latest revision."""

import pytest
from asgi_lifespan import LifespanManager

from cxops.common.db import DatabaseNotMigrated
from cxops.common.migrations import downgrade, upgrade
from cxops.scorecard.app import SPEC, create_app
from cxops.scorecard.settings import ScorecardSettings
from tests.feedback.harness import settings_for, table_names

NOT_A_BROKER = "nats://127.0.0.1:1"


@pytest.mark.parametrize("revision", [None, "0001"], ids=["empty", "behind"])
async def test_the_service_refuses_a_database_that_is_not_migrated(
    database_url: str, revision: str | None
) -> None:
    if revision is not None:
        await upgrade(database_url, SPEC.migrations, revision)
    app = create_app(
        settings_for(ScorecardSettings, database_url=database_url, nats_url=NOT_A_BROKER)
    )

    with pytest.raises(DatabaseNotMigrated, match="cxops migrate"):
        async with LifespanManager(app):
            pass


async def test_migrations_go_up_down_and_up_again(database_url: str) -> None:
    await upgrade(database_url, SPEC.migrations)
    assert {"scorecard_response_facts", "cx_outbox", "cx_inbox"} <= await table_names(database_url)

    await downgrade(database_url, SPEC.migrations)
    assert await table_names(database_url) <= {"alembic_version"}

    await upgrade(database_url, SPEC.migrations)
    assert {"scorecard_response_facts", "cx_outbox", "cx_inbox"} <= await table_names(database_url)
