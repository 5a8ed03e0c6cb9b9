"""What every service package promises alike: settings from its own prefix only, a production
refusal of the development secret, migrations that go up and down on both databases, and a
refusal to start on a database they have not brought to the latest revision."""

import importlib
from dataclasses import dataclass
from types import ModuleType

import pytest
from asgi_lifespan import LifespanManager
from pydantic import ValidationError

from cxops.common.db import DatabaseNotMigrated
from cxops.common.migrations import downgrade, upgrade
from cxops.common.settings import ServiceSettings
from tests.support.services import settings_for, table_names

NOT_A_BROKER = "nats://127.0.0.1:1"
EVENT_TABLES = {"cx_outbox", "cx_inbox"}


@dataclass(frozen=True)
class Package:
    name: str
    own_tables: frozenset[str]

    @property
    def app(self) -> ModuleType:
        return importlib.import_module(f"cxops.{self.name}.app")

    @property
    def settings_class(self) -> type[ServiceSettings]:
        module = importlib.import_module(f"cxops.{self.name}.settings")
        settings_class: type[ServiceSettings] = getattr(module, f"{self.name.title()}Settings")
        return settings_class

    @property
    def prefix(self) -> str:
        return f"CXOPS_{self.name.upper()}_"


PACKAGES = [
    Package("feedback", frozenset({"feedback_responses"})),
    Package(
        "routing",
        frozenset(
            {
                "routing_agents",
                "routing_queues",
                "routing_tasks",
                "routing_reservations",
                "routing_task_events",
                "routing_proficiency_changes",
            }
        ),
    ),
    Package("scorecard", frozenset({"scorecard_response_facts"})),
    Package("journey", frozenset()),
]
by_name = pytest.mark.parametrize("package", PACKAGES, ids=[p.name for p in PACKAGES])


@by_name
def test_settings_come_from_the_service_prefix_only(
    package: Package, monkeypatch: pytest.MonkeyPatch
) -> None:
    others = [p for p in PACKAGES if p is not package]
    monkeypatch.setenv(f"{package.prefix}ENVIRONMENT", "development")
    monkeypatch.setenv(f"{package.prefix}DATABASE_URL", f"sqlite+aiosqlite:///{package.name}.db")
    monkeypatch.setenv(f"{package.prefix}NATS_URL", "nats://127.0.0.1:4222,nats://127.0.0.1:4223")
    for other in others:
        monkeypatch.setenv(f"{other.prefix}DATABASE_URL", "sqlite+aiosqlite:///wrong.db")
        monkeypatch.setenv(f"{other.prefix}OUTBOX_BATCH_SIZE", "7")

    app = package.app.create_app()
    settings: ServiceSettings = app.state.cxops.settings

    assert isinstance(settings, package.settings_class)
    assert settings.database_url == f"sqlite+aiosqlite:///{package.name}.db"
    assert settings.nats_servers == ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223"]
    assert settings.outbox_batch_size != 7
    assert app.state.cxops.name == package.name


@by_name
def test_production_refuses_the_development_secret(
    package: Package, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(f"{package.prefix}SIGNING_SECRET", raising=False)
    monkeypatch.setenv(f"{package.prefix}ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="signing_secret"):
        package.settings_class()


@by_name
async def test_migrations_go_up_down_and_up_again(package: Package, database_url: str) -> None:
    migrations = package.app.SPEC.migrations
    await upgrade(database_url, migrations)
    assert package.own_tables | EVENT_TABLES <= await table_names(database_url)

    await downgrade(database_url, migrations)
    assert await table_names(database_url) <= {"alembic_version"}

    await upgrade(database_url, migrations)
    assert package.own_tables | EVENT_TABLES <= await table_names(database_url)


NOT_MIGRATED = [(p, None) for p in PACKAGES] + [(p, "0001") for p in PACKAGES if p.own_tables]


@pytest.mark.parametrize(
    ("package", "revision"),
    NOT_MIGRATED,
    ids=[f"{p.name}-{'behind' if r else 'empty'}" for p, r in NOT_MIGRATED],
)
async def test_the_service_refuses_a_database_that_is_not_migrated(
    package: Package, database_url: str, revision: str | None
) -> None:
    if revision is not None:
        await upgrade(database_url, package.app.SPEC.migrations, revision)
    settings = settings_for(
        package.settings_class, database_url=database_url, nats_url=NOT_A_BROKER
    )
    with pytest.raises(DatabaseNotMigrated, match="cxops migrate"):
        async with LifespanManager(package.app.create_app(settings)):
            pass
