"""The embedded runtime's supervisor: configuration, secrets, ports and failure reports."""

import os
import socket
import stat
from pathlib import Path

import pytest

from cxops.cli.processes import ProcessError
from cxops.cli.supervisor import (
    PROCESSES,
    Ports,
    Suite,
    SuiteConfig,
    SuiteError,
    ensure_signing_secret,
)
from cxops.common.components import COMPONENTS, SERVICES
from tests.support.suite import SuiteFactory


def test_free_ports_are_distinct() -> None:
    ports = Ports.free()
    assert len({ports.of(name) for name in PROCESSES}) == len(PROCESSES) == len(COMPONENTS) + 1


def test_default_ports_are_the_embedded_runtimes() -> None:
    ports = Ports(routing=9102)
    assert (ports.gateway, ports.nats) == (8000, 4222)
    assert [ports.of(service) for service in SERVICES] == [8101, 9102, 8103, 8104]
    with pytest.raises(ValueError, match="billing"):
        Ports(billing=1)


def test_signing_secret_is_generated_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "signing-secret"
    first = ensure_signing_secret(path)
    assert len(first) >= 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert ensure_signing_secret(path) == first


def test_each_component_gets_its_own_settings(tmp_path: Path) -> None:
    suite = Suite(
        SuiteConfig(
            var_dir=tmp_path,
            database_urls={"feedback": "postgresql+asyncpg://cxops@127.0.0.1:5/feedback"},
        )
    )
    feedback = suite.component_env("feedback")
    assert feedback["CXOPS_FEEDBACK_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert feedback["CXOPS_FEEDBACK_NATS_URL"] == "nats://127.0.0.1:4222"
    assert feedback["CXOPS_FEEDBACK_ENVIRONMENT"] == "development"
    routing = suite.component_env("routing")
    assert routing["CXOPS_ROUTING_DATABASE_URL"] == (
        f"sqlite+aiosqlite:///{tmp_path.resolve() / 'routing.db'}"
    )
    gateway = suite.component_env("gateway")
    assert gateway["CXOPS_GATEWAY_FEEDBACK_URL"] == "http://127.0.0.1:8101"
    assert gateway["CXOPS_GATEWAY_JOURNEY_URL"] == "http://127.0.0.1:8104"
    secrets = {suite.component_env(c)[f"CXOPS_{c.upper()}_SIGNING_SECRET"] for c in COMPONENTS}
    assert secrets == {(tmp_path / "signing-secret").read_text().strip()}


def test_an_external_nats_is_used_and_not_started(tmp_path: Path) -> None:
    suite = Suite(SuiteConfig(var_dir=tmp_path, nats_url="nats://127.0.0.1:4999"))
    assert suite.names() == [*SERVICES, "gateway"]
    assert suite.component_env("journey")["CXOPS_JOURNEY_NATS_URL"] == "nats://127.0.0.1:4999"
    with pytest.raises(SuiteError, match="external NATS"):
        suite.stop_nats()


def test_unknown_components_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown components"):
        SuiteConfig(var_dir=tmp_path, database_urls={"billing": "sqlite+aiosqlite:///x.db"})


def test_a_taken_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    ports = Ports.free()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ports.gateway))
        squatter.listen()
        suite = Suite(SuiteConfig(var_dir=tmp_path, ports=ports))
        with pytest.raises(ProcessError, match=f"port 127.0.0.1:{ports.gateway} for gateway"):
            suite.start()
    assert suite.processes == {}


@pytest.mark.slow
def test_a_process_failing_at_start_is_reported_and_everything_stops(
    suite_factory: SuiteFactory,
) -> None:
    suite = suite_factory.create(env={"CXOPS_ROUTING_OUTBOX_BATCH_SIZE": "0"})
    with pytest.raises(ProcessError) as failure:
        suite.start()
    message = str(failure.value)
    assert "routing exited while starting" in message
    assert "outbox_batch_size" in message  # the tail of routing's log says why
    assert all(process.popen is None for process in suite.processes.values())
