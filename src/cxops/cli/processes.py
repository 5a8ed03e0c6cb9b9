"""The one way this repository runs a local server as a child process: the embedded runtime's
supervisor, the nats-server launcher, the tests' PostgreSQL and the benchmarks' echo server all
start, watch and stop their children here.

A child runs in a session of its own: a terminal's Ctrl-C does not reach it, so its parent alone
decides the order of shutdown, and signals go to its whole process group, so nothing it spawned
survives it. Its output goes to a log file (appended, with a line marking each start), whose
tail explains a failure. Readiness is a check the caller gives (a port accepting connections by
default). Stopping is the spec's stop signal, then SIGKILL after a grace period, and the exit
status is always collected.
"""

import errno
import http.client
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

#: Whether a started process is ready to be used; called repeatedly until it says so.
Readiness = Callable[[], bool]


class ProcessError(RuntimeError):
    """A process could not start, was not ready in time, or failed; the message carries the
    tail of its log."""


class StartCancelled(ProcessError):
    """A stop was requested (Ctrl-C, SIGTERM) while processes were still starting."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def http_ok(url: str) -> Readiness:
    """Readiness as a plain HTTP GET of ``url`` answering 200 (``/readyz``). ``http.client``
    rather than httpx: it is polled many times a second while a suite starts."""
    parsed = urlsplit(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    path = parsed.path or "/"

    def check() -> bool:
        connection = http.client.HTTPConnection(host, port, timeout=2)
        try:
            connection.request("GET", path)
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    return check


def ensure_port_free(host: str, port: int, *, owner: str) -> None:
    """Refuse to start on a taken port: a stray server there would otherwise answer in our
    process's place (another ``cxops up``, a nats-server started by hand)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ProcessError(
                    f"port {host}:{port} for {owner} is already in use "
                    "(is another `cxops up` running?); choose another port"
                ) from exc
            raise


@dataclass(frozen=True)
class ProcessSpec:
    """How to run one process.

    ``port`` is where it will listen: a taken port is refused before starting, and without a
    ``ready`` check the process is ready once that port accepts connections. ``env`` is its
    whole environment (``None``: this process's). ``stop_signal`` asks it to stop (PostgreSQL's
    fast shutdown is SIGINT, for instance).
    """

    name: str
    command: Sequence[str]
    log_file: Path
    env: Mapping[str, str] | None = None
    host: str = "127.0.0.1"
    port: int | None = None
    ready: Readiness | None = None
    stop_signal: signal.Signals = signal.SIGTERM
    cwd: Path | None = None


class Process:
    """One child process, started from a :class:`ProcessSpec`; it can be started again after
    it ended (an outage and a recovery, a crash and a restart)."""

    def __init__(self, spec: ProcessSpec) -> None:
        self.spec = spec
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def exited(self) -> bool:
        """It was started and has ended without being stopped by us."""
        return self.popen is not None and self.popen.poll() is not None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll() if self.popen is not None else None

    def start(self) -> "Process":
        if self.running:
            raise ProcessError(f"{self.name} is already running (pid {self.pid})")
        self.reap()
        if self.spec.port is not None:
            ensure_port_free(self.spec.host, self.spec.port, owner=self.name)
        self.spec.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.spec.log_file.open("ab") as log:
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            log.write(f"--- cxops: starting {self.name} at {stamp} ---\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                list(self.spec.command),
                env=dict(self.spec.env) if self.spec.env is not None else None,
                cwd=self.spec.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def is_ready(self) -> bool:
        if not self.running:
            return False
        if self.spec.ready is not None:
            return self.spec.ready()
        if self.spec.port is not None:
            return port_accepts(self.spec.host, self.spec.port)
        return True

    def wait_ready(self, timeout: float, *, cancel: threading.Event | None = None) -> "Process":
        wait_ready([self], timeout=timeout, cancel=cancel)
        return self

    def send(self, sig: signal.Signals) -> None:
        """Signal the whole process group (nothing the child spawned is left behind)."""
        if self.popen is None or self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass

    def wait(self, timeout: float) -> bool:
        """Wait for the process to end; True when it has."""
        if self.popen is None:
            return True
        try:
            self.popen.wait(timeout=max(timeout, 0))
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self, grace: float = 10.0) -> None:
        """The stop signal, then SIGKILL if it is still running after ``grace`` seconds."""
        stop_all([self], grace=grace)

    def kill(self) -> None:
        """SIGKILL, as a crash looks: no shutdown code runs."""
        self.send(signal.SIGKILL)
        self.wait(10)
        self.reap()

    def reap(self) -> None:
        """Forget a process that has ended (its exit status was collected)."""
        if self.popen is not None and self.popen.poll() is not None:
            self.popen = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.spec.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def failure(self, what: str) -> str:
        """``<name> <what> (exit code N); last lines of <log>: ...``."""
        code = self.returncode
        status = f" (exit code {code})" if code is not None else ""
        return f"{self.name} {what}{status}; last lines of {self.spec.log_file}:\n{self.log_tail()}"


def wait_ready(
    processes: Iterable[Process], *, timeout: float, cancel: threading.Event | None = None
) -> None:
    """Wait until each process is ready; fail at once if one exits, or at the timeout, with the
    tail of the failing process's log. A set ``cancel`` raises :class:`StartCancelled`."""
    waiting = list(processes)
    deadline = time.monotonic() + timeout
    while waiting:
        if cancel is not None and cancel.is_set():
            raise StartCancelled("stop requested while starting")
        for process in list(waiting):
            if process.is_ready():
                waiting.remove(process)
            elif not process.running:
                raise ProcessError(process.failure("exited while starting"))
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise ProcessError(waiting[0].failure(f"is not ready after {timeout:.0f}s"))
        time.sleep(0.1)


def stop_all(processes: Sequence[Process], *, grace: float) -> None:
    """Ask every process to stop at once, then SIGKILL what is still running when the shared
    grace period is over, and collect every exit status."""
    for process in processes:
        process.send(process.spec.stop_signal)
    deadline = time.monotonic() + grace
    for process in processes:
        if not process.wait(deadline - time.monotonic()):
            process.send(signal.SIGKILL)
            process.wait(10)
        process.reap()
