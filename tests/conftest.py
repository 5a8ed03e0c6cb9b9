"""Real servers for the tests: nats-server with JetStream and PostgreSQL, each started in a
temporary directory on a free port and stopped afterwards."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cxops.common.embedded import NatsServer
from tests.support.postgres import PostgresServer

os.environ.setdefault("CXOPS_TEST", "1")


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
