"""The embedded runtime: nats-server, the four services and the gateway as separate processes on
one machine, supervised from here.

``cxops up`` runs it in the foreground; tests and benchmarks use the same :class:`Suite` to start
the whole suite on free ports in a temporary directory, to take NATS away and bring it back, and
to SIGKILL and restart one service. Nothing here is global: every path, port, URL and secret
comes from a :class:`SuiteConfig`, so several suites can run side by side.
"""

import errno
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path

import httpx

from cxops.cli.components import (
    COMPONENTS,
    GATEWAY,
    NATS,
    SERVICES,
    app_factory,
    embedded_database_url,
    env_prefix,
)
from cxops.cli.database import display_url, migrate, run_blocking
from cxops.common.embedded import NatsServer, free_port

SIGNING_SECRET_FILE = "signing-secret"
LOG_DIR = "logs"
NATS_STORE_DIR = "nats"


class SuiteError(RuntimeError):
    """The suite could not start, or a process in it failed; the message carries the log tail."""


class StartupCancelled(SuiteError):
    """A stop was requested (Ctrl-C, SIGTERM) while the suite was still starting."""


@dataclass(frozen=True)
class Ports:
    """Where each process listens. The defaults are the embedded runtime's fixed ports."""

    gateway: int = 8000
    feedback: int = 8101
    routing: int = 8102
    scorecard: int = 8103
    journey: int = 8104
    nats: int = 4222

    def of(self, name: str) -> int:
        port: int = getattr(self, name)
        return port

    @classmethod
    def free(cls, host: str = "127.0.0.1") -> "Ports":
        """Distinct free ports for every process, for tests and benchmarks."""
        names = [f.name for f in fields(cls)]
        chosen: set[int] = set()
        while len(chosen) < len(names):
            chosen.add(free_port(host))
        return cls(**dict(zip(names, sorted(chosen), strict=True)))


@dataclass(frozen=True)
class SuiteConfig:
    """Everything a suite needs; only ``var_dir`` has no default.

    ``database_urls`` maps a component (``feedback``…, ``gateway``) to its database; a component
    left out gets its embedded SQLite file ``<var>/<component>.db``. With ``nats_url`` set, the
    suite uses that (externally started) NATS and starts none of its own. ``signing_secret`` left
    unset is generated once into ``<var>/signing-secret``. ``env`` is added to every process's
    environment last, so it can override anything the suite sets (e.g.
    ``CXOPS_SCORECARD_CONSUMER_MAX_DELIVER=2`` or ``CXOPS_GATEWAY_RATE_LIMIT_PER_SECOND`` for a
    test).
    """

    var_dir: Path
    ports: Ports = field(default_factory=Ports)
    database_urls: Mapping[str, str] = field(default_factory=dict)
    nats_url: str | None = None
    signing_secret: str | None = None
    environment: str = "development"
    host: str = "127.0.0.1"
    env: Mapping[str, str] = field(default_factory=dict)
    ready_timeout: float = 60.0
    stop_grace: float = 10.0
    python: str = sys.executable

    def __post_init__(self) -> None:
        unknown = set(self.database_urls) - set(COMPONENTS)
        if unknown:
            raise ValueError(f"database_urls has unknown components: {sorted(unknown)}")


@dataclass(frozen=True)
class ProcessSpec:
    """How to run one process: its command, environment and log, and how to tell it is ready
    (an HTTP ``ready_url`` answering 200, or without one, its port accepting connections)."""

    name: str
    command: Sequence[str]
    env: Mapping[str, str]
    log_file: Path
    host: str
    port: int
    ready_url: str | None = None


class SupervisedProcess:
    """One child process, in a session of its own.

    Its own session keeps a terminal's Ctrl-C away from it, so the supervisor alone decides the
    order of shutdown; signals go to its whole process group, so nothing it spawned survives it.
    """

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

    def start(self) -> None:
        if self.running:
            raise SuiteError(f"{self.name} is already running (pid {self.pid})")
        self.reap()
        ensure_port_free(self.spec.host, self.spec.port, owner=self.name)
        self.spec.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.spec.log_file.open("ab") as log:
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            log.write(f"--- cxops: starting {self.name} at {stamp} ---\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                list(self.spec.command),
                env=dict(self.spec.env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def send(self, sig: signal.Signals) -> None:
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

    def kill(self) -> None:
        """SIGKILL, as a crash looks: no shutdown code runs."""
        self.send(signal.SIGKILL)
        self.wait(10)
        self.reap()

    def reap(self) -> None:
        """Forget a process that has ended (its exit status was collected)."""
        if self.popen is not None and self.popen.poll() is not None:
            self.popen = None

    def is_ready(self, client: httpx.Client) -> bool:
        if not self.running:
            return False
        if self.spec.ready_url is None:
            return port_accepts(self.spec.host, self.spec.port)
        try:
            return client.get(self.spec.ready_url).status_code == 200
        except httpx.HTTPError:
            return False

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.spec.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def ensure_port_free(host: str, port: int, *, owner: str) -> None:
    """Refuse to start on a taken port: a stray server there would otherwise answer in our
    process's place (another ``cxops up``, a nats-server started by hand)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise SuiteError(
                    f"port {host}:{port} for {owner} is already in use "
                    "(is another `cxops up` running?); choose another port"
                ) from exc
            raise


def ensure_signing_secret(path: Path) -> str:
    """The embedded suite's signing secret: generated on first start, then kept (0600), so
    internal tokens minted before a restart stay valid and nothing is configured by hand."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_text().strip()
        if len(secret) < 32:
            raise SuiteError(f"{path} holds no usable secret; delete it to generate one") from None
        return secret
    secret = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(secret + "\n")
    return secret


class Suite:
    """nats-server, the services and the gateway, started, watched and stopped together.

    ``start`` runs NATS, then every migration, then the processes, and returns once each
    ``/readyz`` answers 200. ``stop`` ends the gateway first, then the services, then NATS:
    SIGTERM, and SIGKILL for what is still running after the grace period.
    """

    def __init__(self, config: SuiteConfig) -> None:
        self.config = config
        self.var_dir = config.var_dir.resolve()
        self.log_dir = self.var_dir / LOG_DIR
        self._signing_secret = config.signing_secret
        self.processes: dict[str, SupervisedProcess] = {}

    # -- where things are -------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self.config.host

    @property
    def ports(self) -> Ports:
        return self.config.ports

    @property
    def embedded_nats(self) -> bool:
        return self.config.nats_url is None

    @property
    def nats_url(self) -> str:
        return self.config.nats_url or f"nats://{self.host}:{self.ports.nats}"

    @property
    def gateway_url(self) -> str:
        return self.url(GATEWAY)

    @property
    def signing_secret(self) -> str:
        if self._signing_secret is None:
            self.make_var_dir()
            self._signing_secret = ensure_signing_secret(self.var_dir / SIGNING_SECRET_FILE)
        return self._signing_secret

    def make_var_dir(self) -> None:
        """Create the data directory readable by its owner only: it holds the signing secret,
        the development key and the databases."""
        self.var_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    def url(self, name: str) -> str:
        """The base URL of the gateway or a service, e.g. ``http://127.0.0.1:8101``."""
        return f"http://{self.host}:{self.ports.of(name)}"

    def database_url(self, component: str) -> str:
        return self.config.database_urls.get(component) or embedded_database_url(
            self.var_dir, component
        )

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def process(self, name: str) -> SupervisedProcess:
        if name not in self.processes:
            self.processes[name] = SupervisedProcess(self.spec(name))
        return self.processes[name]

    # -- what each process is ---------------------------------------------------------------

    def names(self) -> list[str]:
        """Every process in start order."""
        return ([NATS] if self.embedded_nats else []) + [*SERVICES, GATEWAY]

    def spec(self, name: str) -> ProcessSpec:
        if name == NATS:
            if not self.embedded_nats:
                raise SuiteError("this suite uses an external NATS; it does not run one")
            nats = NatsServer(self.var_dir / NATS_STORE_DIR, port=self.ports.nats, host=self.host)
            return ProcessSpec(
                name=NATS,
                command=nats.command(),
                env={**self._base_env(), **self.config.env},
                log_file=self.log_file(NATS),
                host=self.host,
                port=self.ports.nats,
            )
        if name not in COMPONENTS:
            raise ValueError(f"unknown process {name!r}; expected one of {self.names()}")
        port = self.ports.of(name)
        return ProcessSpec(
            name=name,
            command=[
                self.config.python,
                "-m",
                "uvicorn",
                app_factory(name),
                "--factory",
                "--host",
                self.host,
                "--port",
                str(port),
                "--lifespan",
                "on",
                "--no-access-log",
                "--timeout-graceful-shutdown",
                str(max(int(self.config.stop_grace / 2), 1)),
            ],
            env={**self._base_env(), **self.component_env(name), **self.config.env},
            log_file=self.log_file(name),
            host=self.host,
            port=port,
            ready_url=f"{self.url(name)}/readyz",
        )

    def component_env(self, component: str) -> dict[str, str]:
        """The settings a component reads (its ``CXOPS_<NAME>_`` variables)."""
        prefix = env_prefix(component)
        env = {
            f"{prefix}ENVIRONMENT": self.config.environment,
            f"{prefix}DATABASE_URL": self.database_url(component),
            f"{prefix}SIGNING_SECRET": self.signing_secret,
            f"{prefix}NATS_URL": self.nats_url,
        }
        if component not in SERVICES:
            env.update(
                {f"{prefix}{service.upper()}_URL": self.url(service) for service in SERVICES}
            )
        return env

    def _base_env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONUNBUFFERED": "1"}

    # -- lifecycle --------------------------------------------------------------------------

    def migrate(self) -> None:
        """Bring every component's database to the latest revision (a step, never a side
        effect of serving: the services refuse an unmigrated database)."""
        for component in COMPONENTS:
            url = self.database_url(component)
            try:
                migrate(component, url)
            except Exception as exc:
                raise SuiteError(
                    f"migrating {component} at {display_url(url)} failed: {exc!r}"
                ) from exc

    def start(self, *, cancel: threading.Event | None = None) -> "Suite":
        """Start everything and wait until it is ready; on any failure stop what started."""
        try:
            self.make_var_dir()
            self.log_dir.mkdir(parents=True, exist_ok=True)
            for name in self.names():
                ensure_port_free(self.host, self.ports.of(name), owner=name)
            if self.embedded_nats:
                self.start_process(NATS, cancel=cancel)
            self.migrate()
            _raise_if_cancelled(cancel)
            for name in [*SERVICES, GATEWAY]:
                self.process(name).start()
            self.wait_ready([*SERVICES, GATEWAY], cancel=cancel)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(
        self,
        names: Iterable[str] | None = None,
        *,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        """Wait until each named process is ready; fail at once if one exits, or at the
        timeout, with the tail of the failing process's log."""
        waiting = list(names) if names is not None else self.names()
        deadline = time.monotonic() + (timeout or self.config.ready_timeout)
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while waiting:
                _raise_if_cancelled(cancel)
                for name in list(waiting):
                    process = self.process(name)
                    if process.is_ready(client):
                        waiting.remove(name)
                    elif not process.running:
                        raise SuiteError(self._failure(name, "exited while starting"))
                if not waiting:
                    return
                if time.monotonic() > deadline:
                    raise SuiteError(
                        self._failure(
                            waiting[0],
                            f"is not ready after {timeout or self.config.ready_timeout:.0f}s",
                        )
                    )
                time.sleep(0.1)

    def stop(self) -> None:
        """Stop everything: gateway, then the services, then NATS. Safe to call twice."""
        for tier in ([GATEWAY], list(reversed(SERVICES)), [NATS]):
            self._stop_all([self.processes[name] for name in tier if name in self.processes])

    def _stop_all(self, group: Sequence[SupervisedProcess]) -> None:
        for process in group:
            process.send(signal.SIGTERM)
        deadline = time.monotonic() + self.config.stop_grace
        for process in group:
            if not process.wait(deadline - time.monotonic()):
                process.send(signal.SIGKILL)
                process.wait(10)
            process.reap()

    def __enter__(self) -> "Suite":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- for tests: outages, crashes, restarts ----------------------------------------------

    def start_process(
        self, name: str, *, wait: bool = True, cancel: threading.Event | None = None
    ) -> None:
        """Start one process (again) and, unless ``wait=False``, wait until it is ready."""
        if name == NATS:
            (self.var_dir / NATS_STORE_DIR).mkdir(parents=True, exist_ok=True)
        self.process(name).start()
        if wait:
            self.wait_ready([name], cancel=cancel)

    def stop_process(self, name: str, *, kill: bool = False) -> None:
        """SIGTERM (or SIGKILL with ``kill=True``) one process and wait until it has ended."""
        process = self.process(name)
        if kill:
            process.kill()
        else:
            self._stop_all([process])

    def kill(self, name: str) -> None:
        """SIGKILL one process: a crash, with no shutdown code run."""
        self.stop_process(name, kill=True)

    def restart(self, name: str, *, kill: bool = False, wait: bool = True) -> None:
        self.stop_process(name, kill=kill)
        self.start_process(name, wait=wait)

    def stop_nats(self, *, kill: bool = False) -> None:
        """Take the embedded broker away (an outage); its store is kept."""
        self._require_embedded_nats()
        self.stop_process(NATS, kill=kill)

    def start_nats(self) -> None:
        """Bring the embedded broker back on the same port and store."""
        self._require_embedded_nats()
        self.start_process(NATS)

    def _require_embedded_nats(self) -> None:
        if not self.embedded_nats:
            raise SuiteError("this suite uses an external NATS; stop and start it yourself")

    def exited(self) -> list[str]:
        """The processes that ended without being asked to (crashed)."""
        return [name for name, process in self.processes.items() if process.exited]

    def failure_report(self, name: str) -> str:
        return self._failure(name, "has stopped")

    def _failure(self, name: str, what: str) -> str:
        process = self.process(name)
        code = process.popen.poll() if process.popen is not None else None
        status = f" (exit code {code})" if code is not None else ""
        return (
            f"{name} {what}{status}; last lines of {process.spec.log_file}:\n{process.log_tail()}"
        )

    # -- keys -------------------------------------------------------------------------------

    def create_api_key(self, *, tenant: str, role: str, name: str) -> str:
        """A new API key in the gateway's database; returns the plaintext (shown only once)."""
        from cxops.cli.database import migrated_transaction
        from cxops.common.auth import Role
        from cxops.gateway.keys import create_key

        async def _create() -> str:
            async with migrated_transaction(GATEWAY, self.database_url(GATEWAY)) as session:
                _record, plaintext = await create_key(
                    session, tenant=tenant, role=Role(role), name=name
                )
            return plaintext

        return run_blocking(_create)


def _raise_if_cancelled(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise StartupCancelled("stop requested while starting")
