"""``cxops keys`` and ``cxops migrate`` on real databases, SQLite and PostgreSQL."""

import json
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from cxops.cli.components import migrations_location
from cxops.cli.database import run_blocking
from cxops.cli.main import app
from cxops.common.components import COMPONENTS
from cxops.common.db import Database, DatabaseNotMigrated
from tests.support.postgres import PostgresServer

runner = CliRunner()


def cxops(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run the command in-process; stdout and stderr are kept apart."""
    return runner.invoke(app, list(args), env=env, catch_exceptions=False)


def is_migrated(component: str, url: str) -> bool:
    async def _check() -> bool:
        db = Database(url)
        try:
            await db.ensure_migrated(migrations_location(component))
        except DatabaseNotMigrated:
            return False
        finally:
            await db.dispose()
        return True

    return run_blocking(_check)


@pytest.fixture
def gateway_db(database_url: str) -> str:
    """The gateway's database, migrated by the command itself."""
    result = cxops(
        "migrate", "--service", "gateway", env={"CXOPS_GATEWAY_DATABASE_URL": database_url}
    )
    assert result.exit_code == 0, result.stderr
    assert "gateway:" in result.stdout
    return database_url


def test_create_list_revoke(gateway_db: str) -> None:
    url = ["--database-url", gateway_db]
    created = cxops("keys", "create", "--tenant", "acme", "--role", "supervisor", *url)
    assert created.exit_code == 0, created.stderr
    key = created.stdout.strip()
    assert key and "\n" not in key  # only the key on stdout, for KEY=$(cxops keys create ...)
    assert "not shown again" in created.stderr

    other = cxops("keys", "create", "--tenant", "globex", "--role", "viewer", "--name", "bi", *url)
    assert other.exit_code == 0, other.stderr

    listed = cxops("keys", "list", "--tenant", "acme", "--json", *url)
    assert listed.exit_code == 0, listed.stderr
    [acme] = json.loads(listed.stdout)
    assert acme["tenant"] == "acme"
    assert acme["role"] == "supervisor"
    assert acme["name"] == "acme-supervisor"
    assert acme["revoked_at"] is None
    assert key not in listed.stdout  # the plaintext is never shown again

    everything = cxops("keys", "list", *url)
    assert everything.exit_code == 0
    assert (
        "acme" in everything.stdout and "globex" in everything.stdout and "bi" in everything.stdout
    )

    revoked = cxops("keys", "revoke", str(acme["id"]), *url)
    assert revoked.exit_code == 0, revoked.stderr
    [after] = json.loads(cxops("keys", "list", "--tenant", "acme", "--json", *url).stdout)
    assert after["revoked_at"] is not None


def test_the_database_url_comes_from_the_gateway_setting(gateway_db: str) -> None:
    env = {"CXOPS_GATEWAY_DATABASE_URL": gateway_db}
    created = cxops("keys", "create", "--tenant", "t1", "--role", "admin", "--json", env=env)
    assert created.exit_code == 0, created.stderr
    record = json.loads(created.stdout)
    assert record["key"] and record["tenant"] == "t1" and record["role"] == "admin"
    [listed] = json.loads(cxops("keys", "list", "--json", env=env).stdout)
    assert listed["id"] == record["id"]


def test_an_unknown_role_is_refused(gateway_db: str) -> None:
    result = runner.invoke(
        app, ["keys", "create", "--tenant", "t", "--role", "owner", "--database-url", gateway_db]
    )
    assert result.exit_code == 2
    assert "owner" in result.stderr


def test_an_unmigrated_database_is_refused(database_url: str) -> None:
    result = cxops("keys", "list", "--database-url", database_url)
    assert result.exit_code == 1
    assert "cxops migrate" in result.stderr


def test_a_missing_sqlite_file_is_refused_and_not_created(tmp_path: Path) -> None:
    result = cxops("keys", "list", "--var-dir", str(tmp_path / "var"))
    assert result.exit_code == 1
    assert "no database at" in result.stderr and "cxops migrate" in result.stderr
    assert not (tmp_path / "var" / "gateway.db").exists()


def test_migrate_defaults_to_the_embedded_files(tmp_path: Path) -> None:
    var = tmp_path / "var"
    for _ in range(2):  # a second run finds nothing to do
        result = cxops("migrate", "--var-dir", str(var), env={})
        assert result.exit_code == 0, result.stderr
    for component in COMPONENTS:
        assert is_migrated(component, f"sqlite+aiosqlite:///{var / f'{component}.db'}")


def test_migrate_uses_each_components_setting(postgres_server: PostgresServer) -> None:
    urls = {
        component: postgres_server.create_database(prefix=component) for component in COMPONENTS
    }
    env = {f"CXOPS_{component.upper()}_DATABASE_URL": url for component, url in urls.items()}
    result = cxops("migrate", env=env)
    assert result.exit_code == 0, result.stderr
    for component, url in urls.items():
        assert is_migrated(component, url)


def test_migrate_one_service(tmp_path: Path) -> None:
    result = cxops("migrate", "--service", "routing", "--var-dir", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert is_migrated("routing", f"sqlite+aiosqlite:///{tmp_path / 'routing.db'}")
    assert not (tmp_path / "feedback.db").exists()


def test_bad_input_is_an_error_not_a_traceback(gateway_db: str) -> None:
    url = ["--database-url", gateway_db]
    tenant = cxops("keys", "create", "--tenant", "Not A Slug", "--role", "viewer", *url)
    assert tenant.exit_code == 1
    assert "is not a slug" in tenant.stderr
    unknown = cxops("keys", "revoke", "01936f0e-6a3c-7d42-9a51-3c1c0f6f2b7e", *url)
    assert unknown.exit_code == 1
    assert "no key" in unknown.stderr
    assert json.loads(cxops("keys", "list", "--json", *url).stdout) == []


def test_an_agent_key_is_bound_with_agent_id(gateway_db: str) -> None:
    url = ["--database-url", gateway_db]
    agent = "0190f3c2-7a1b-7c3d-8e4f-5a6b7c8d9e0f"
    created = cxops(
        "keys", "create", "--tenant", "acme", "--role", "agent", "--agent-id", agent, *url
    )
    assert created.exit_code == 0, created.stderr
    assert f"agent {agent}" in created.stderr
    as_json = cxops(
        "keys", "create", "--tenant", "acme", "--role", "agent", "--agent-id", agent, "--json", *url
    )
    assert json.loads(as_json.stdout)["agent_id"] == agent
    unbound = cxops("keys", "create", "--tenant", "acme", "--role", "agent", *url)
    assert unbound.exit_code == 0, unbound.stderr

    listed = json.loads(cxops("keys", "list", "--json", *url).stdout)
    assert [record["agent_id"] for record in listed] == [agent, agent, None]
    table = cxops("keys", "list", *url).stdout
    assert "AGENT_ID" in table and agent in table

    other_role = cxops(
        "keys", "create", "--tenant", "acme", "--role", "integration", "--agent-id", agent, *url
    )
    assert other_role.exit_code == 1
    assert "agent_id may be set only for role 'agent'" in other_role.stderr
    not_a_uuid = runner.invoke(
        app,
        ["keys", "create", "--tenant", "acme", "--role", "agent", "--agent-id", "agent-7", *url],
    )
    assert not_a_uuid.exit_code == 2
    assert "--agent-id" in not_a_uuid.stderr
    assert len(json.loads(cxops("keys", "list", "--json", *url).stdout)) == 3
