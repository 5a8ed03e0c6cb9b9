"""The whole suite as real processes for tests: nats-server, the four services and the gateway,
on free ports in a temporary directory, on SQLite files or on fresh PostgreSQL databases.

It is the same :class:`cxops.cli.supervisor.Suite` that ``cxops up`` runs, so the tests exercise
the embedded runtime itself. Its fixtures are a plugin of the root ``conftest.py``:

- ``suite``: a running suite shared by the tests of one module, once on SQLite and once on
  PostgreSQL (parametrized, like ``database_url``). Tests sharing it keep apart by tenant.
- ``suite_factory``: fresh suites for one test (outages, kills, restarts, other settings);
  every suite it made is stopped at the end of the test.

The suite's methods are synchronous (they wait for processes); from an async test, call the
slow ones through ``asyncio.to_thread`` when the test's own loop must keep running meanwhile.
"""

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Literal

import pytest

from cxops.cli.supervisor import Ports, Suite, SuiteConfig
from cxops.common.components import COMPONENTS
from tests.support.postgres import PostgresServer

Backend = Literal["sqlite", "postgres"]
BACKENDS: tuple[Backend, ...] = ("sqlite", "postgres")


def postgres_database_urls(server: PostgresServer) -> dict[str, str]:
    """A fresh PostgreSQL database for every component (each service owns its own)."""
    return {component: server.create_database(prefix=component) for component in COMPONENTS}


class SuiteFactory:
    """Makes suites in sub-directories of ``base_dir`` and stops all of them in :meth:`close`."""

    def __init__(self, base_dir: Path, postgres: Callable[[], PostgresServer]) -> None:
        self.base_dir = base_dir
        self._postgres = postgres
        self.suites: list[Suite] = []

    def config(
        self,
        *,
        database: Backend = "sqlite",
        nats_url: str | None = None,
        env: Mapping[str, str] | None = None,
        ready_timeout: float = 120.0,
        stop_grace: float = 10.0,
    ) -> SuiteConfig:
        """A configuration on free ports in a new directory. ``nats_url`` points the suite at
        an externally started NATS (it then starts none); ``env`` adds settings to every
        process, e.g. ``{"CXOPS_SCORECARD_CONSUMER_MAX_DELIVER": "2"}``."""
        var_dir = self.base_dir / f"suite-{len(self.suites)}"
        return SuiteConfig(
            var_dir=var_dir,
            ports=Ports.free(),
            database_urls=postgres_database_urls(self._postgres())
            if database == "postgres"
            else {},
            nats_url=nats_url,
            env=dict(env or {}),
            ready_timeout=ready_timeout,
            stop_grace=stop_grace,
        )

    def create(self, config: SuiteConfig | None = None, **options: object) -> Suite:
        """A suite that is not started yet (``options`` as for :meth:`config`)."""
        suite = Suite(config or self.config(**options))  # type: ignore[arg-type]
        self.suites.append(suite)
        return suite

    def start(self, config: SuiteConfig | None = None, **options: object) -> Suite:
        """A suite started and ready."""
        return self.create(config, **options).start()

    def close(self) -> None:
        for suite in reversed(self.suites):
            suite.stop()


@pytest.fixture
def suite_factory(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SuiteFactory]:
    factory = SuiteFactory(
        tmp_path_factory.mktemp("suite"), lambda: request.getfixturevalue("postgres_server")
    )
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="module", params=BACKENDS)
def suite(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Suite]:
    """A running suite for the module, on each database backend in turn."""
    factory = SuiteFactory(
        tmp_path_factory.mktemp("suite"), lambda: request.getfixturevalue("postgres_server")
    )
    try:
        yield factory.start(database=request.param)
    finally:
        factory.close()
