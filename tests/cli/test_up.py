"""``cxops up`` as a user runs it: a real process on free ports, stopped with SIGTERM, started
again on the same directory (the key and the data are kept), then stopped with Ctrl-C."""

import json
import os
import signal
import socket
import stat
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from cxops.cli.database import migrate
from cxops.cli.main import app
from cxops.cli.processes import Process, ProcessError, ProcessSpec
from cxops.cli.supervisor import PROCESSES, Ports, Suite, SuiteConfig
from cxops.cli.up import ensure_dev_key

READY_BANNER = "cxops is running."


class UpProcess:
    """``python -m cxops.cli up`` with every port given, its output in a file, run as any
    server is (``cxops.cli.processes``): ready once it prints its banner."""

    def __init__(self, var_dir: Path, ports: Ports, output: Path) -> None:
        self.output = output
        command = [sys.executable, "-m", "cxops.cli", "up", "--var-dir", str(var_dir)]
        for name in PROCESSES:
            command += [f"--{name}-port", str(ports.of(name))]
        self.process = Process(
            ProcessSpec(
                name="cxops up",
                command=command,
                log_file=output,
                ready=lambda: READY_BANNER in self.text(),
            )
        ).start()
        assert self.process.popen is not None
        self.popen = self.process.popen

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def wait_ready(self, timeout: float = 180.0) -> str:
        try:
            self.process.wait_ready(timeout)
        except ProcessError as exc:
            self.process.kill()
            pytest.fail(f"cxops up was not ready:\n{exc}\n{self.text()}")
        return self.text()

    def stop(self, sig: signal.Signals) -> int:
        self.process.send(sig)
        if not self.process.wait(60):
            self.process.kill()
            pytest.fail(f"cxops up did not stop after {sig.name}:\n{self.text()}")
        return self.popen.returncode


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat_line = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat_line.rpartition(")")[2].split()[1])
        if ppid == pid:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def nps(client: httpx.Client, key: str) -> dict[str, object]:
    answer = client.get("/v1/scorecard/metrics/nps", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def test_the_dev_key_is_kept_and_replaced_once_it_no_longer_works(tmp_path: Path) -> None:
    suite = Suite(SuiteConfig(var_dir=tmp_path / "var"))
    migrate("gateway", suite.database_url("gateway"))
    key, created = ensure_dev_key(suite)
    assert created
    assert ensure_dev_key(suite) == (key, False)
    url = ["--database-url", suite.database_url("gateway")]
    listed = CliRunner().invoke(app, ["keys", "list", "--tenant", "dev", "--json", *url])
    [record] = json.loads(listed.stdout)
    assert record["role"] == "admin"
    assert CliRunner().invoke(app, ["keys", "revoke", record["id"], *url]).exit_code == 0
    replaced, created = ensure_dev_key(suite)
    assert created and replaced != key
    assert (tmp_path / "var" / "dev-api-key").read_text().strip() == replaced


@pytest.mark.slow
def test_up_serves_stops_cleanly_and_keeps_its_data(tmp_path: Path) -> None:
    var = tmp_path / "var"
    ports = Ports.free()
    all_ports = [ports.of(name) for name in PROCESSES]
    gateway = f"http://127.0.0.1:{ports.gateway}"

    first = UpProcess(var, ports, tmp_path / "first.out")
    banner = first.wait_ready()
    key_file = var / "dev-api-key"
    key = key_file.read_text().strip()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key in banner
    assert f"{gateway}/docs" in banner
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=gateway, timeout=10, trust_env=False) as client:
        assert client.get("/readyz").status_code == 200
        assert client.get("/v1/routing/ops/dead-letters", headers=auth).status_code == 200
        posted = client.post(
            "/v1/feedback/responses",
            headers=auth,
            json={"kind": "nps", "score": 10, "customer_ref": "cust-1", "channel": "email"},
        )
        assert posted.status_code == 201, posted.text
        deadline = time.monotonic() + 10
        while nps(client, key)["responses"] != 1:
            assert time.monotonic() < deadline, "the scorecard never counted the response"
            time.sleep(0.1)

    processes = children(first.popen.pid)
    assert len(processes) == 6  # nats-server, four services, the gateway
    assert first.stop(signal.SIGTERM) == 0, first.text()
    assert "cxops: stopped" in first.text()
    assert [pid for pid in processes if alive(pid)] == []
    assert all(port_is_free(port) for port in all_ports)

    second = UpProcess(var, ports, tmp_path / "second.out")
    banner = second.wait_ready()
    assert key_file.read_text().strip() == key
    assert key in banner and "kept in" in banner
    with httpx.Client(base_url=gateway, timeout=10, trust_env=False) as client:
        assert nps(client, key) == {"metric": "nps", "value": 100.0, "responses": 1}
    assert second.stop(signal.SIGINT) == 0, second.text()  # Ctrl-C
    assert all(port_is_free(port) for port in all_ports)
