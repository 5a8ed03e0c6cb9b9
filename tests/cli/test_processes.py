"""The one process spawner: its own session, a log, readiness, stop then kill, reaping."""

import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cxops.cli.processes import Process, ProcessError, ProcessSpec, free_port


def python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rpartition(")")[2].split()[0] == "Z")


def test_a_server_is_ready_when_its_port_accepts_and_logs_to_its_file(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "logs" / "server.log"
    process = Process(
        ProcessSpec(
            name="server",
            command=python(f"""
                import socket, time
                print("hello from the child", flush=True)
                time.sleep(0.3)
                s = socket.socket(); s.bind(("127.0.0.1", {port})); s.listen()
                time.sleep(60)
            """),
            log_file=log,
            port=port,
        )
    )
    process.start()
    assert not process.is_ready()
    process.wait_ready(30)
    assert os.getpgid(process.pid or 0) == process.pid  # a session and group of its own
    process.stop(grace=5)
    assert process.popen is None and not process.running
    text = log.read_text()
    assert "--- cxops: starting server at" in text and "hello from the child" in text


def test_a_process_ignoring_sigterm_is_killed_after_the_grace_with_its_children(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "grandchild.pid"
    process = Process(
        ProcessSpec(
            name="stubborn",
            command=python(f"""
                import signal, subprocess, sys, time
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                child = subprocess.Popen([sys.executable, "-c",
                    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                    "time.sleep(60)"])
                open({str(pid_file)!r}, "w").write(str(child.pid))
                time.sleep(60)
            """),
            log_file=tmp_path / "stubborn.log",
            ready=pid_file.exists,
        )
    ).start()
    process.wait_ready(30)
    grandchild = int(pid_file.read_text())
    started = time.monotonic()
    process.stop(grace=0.5)
    assert time.monotonic() - started < 10
    assert process.popen is None
    deadline = time.monotonic() + 10
    while alive(grandchild):  # killed with its group; reaped by init
        assert time.monotonic() < deadline, "the grandchild outlived its process group"
        time.sleep(0.05)


def test_the_stop_signal_is_the_specs(tmp_path: Path) -> None:
    marker = tmp_path / "got"
    process = Process(
        ProcessSpec(
            name="fast",
            command=python(f"""
                import signal, sys, time
                def stop(signum, frame):
                    open({str(marker)!r}, "w").write(signal.Signals(signum).name)
                    sys.exit(0)
                signal.signal(signal.SIGINT, stop)
                print("up", flush=True)
                time.sleep(60)
            """),
            log_file=tmp_path / "fast.log",
            ready=lambda: "up" in (tmp_path / "fast.log").read_text(),
            stop_signal=signal.SIGINT,
        )
    ).start()
    process.wait_ready(30)
    process.stop(grace=10)
    assert marker.read_text() == "SIGINT"


def test_an_exit_while_starting_is_reported_with_the_log_tail(tmp_path: Path) -> None:
    process = Process(
        ProcessSpec(
            name="broken",
            command=python("print('cannot start: no config'); raise SystemExit(3)"),
            log_file=tmp_path / "broken.log",
            ready=lambda: False,
        )
    ).start()
    with pytest.raises(ProcessError, match="broken exited while starting \\(exit code 3\\)") as e:
        process.wait_ready(30)
    assert "cannot start: no config" in str(e.value)
    process.reap()
    assert process.popen is None
