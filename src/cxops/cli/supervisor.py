"""The embedded runtime: nats-server, the four services and the gateway as separate processes on
one machine, supervised from here.

``cxops up`` runs it in the foreground; tests and benchmarks use the same :class:`Suite` to start
the whole suite on free ports in a temporary directory, to take NATS away and bring it back, and
to SIGKILL and restart one service. Nothing here is global: every path, port, URL and secret
comes from a :class:`SuiteConfig`, so several suites can run side by side.
"""

import os
import secrets
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cxops.cli.components import NATS, app_factory, embedded_database_url
from cxops.cli.database import display_url, migrate, run_blocking
from cxops.cli.nats_auth import SEED_DIR, CredentialsError, ensure_seeds, seed_file, server_config
from cxops.cli.nats_server import NatsServer
from cxops.cli.processes import (
    Process,
    ProcessError,
    ProcessSpec,
    StartCancelled,
    ensure_port_free,
    free_port,
    http_ok,
    stop_all,
    wait_ready,
)
from cxops.common.components import COMPONENTS, GATEWAY, SERVICES, default_port, env_prefix
from cxops.common.events.broker import client_name, inbox_prefix

#: The service that keeps files besides its database (uploaded event logs, job inputs).
FILES_KEEPER = "journey"

SIGNING_SECRET_FILE = "signing-secret"
LOG_DIR = "logs"
NATS_STORE_DIR = "nats"
NATS_CONFIG_FILE = "nats.conf"


class SuiteError(ProcessError):
    """The suite could not start or was asked for something it cannot do."""


NATS_PORT = 4222
#: Every process the embedded runtime runs, in start order.
PROCESSES: tuple[str, ...] = (NATS, *COMPONENTS)


class Ports:
    """Where each process listens: ``Ports(gateway=9000)`` moves the gateway and keeps every
    other default (the gateway on 8000, the services from 8101, NATS on 4222)."""

    def __init__(self, **ports: int) -> None:
        unknown = set(ports) - set(PROCESSES)
        if unknown:
            raise ValueError(f"no process named {sorted(unknown)}; expected some of {PROCESSES}")
        self._ports = {name: ports.get(name, _default_port(name)) for name in PROCESSES}

    def of(self, name: str) -> int:
        return self._ports[name]

    @property
    def gateway(self) -> int:
        return self._ports[GATEWAY]

    @property
    def nats(self) -> int:
        return self._ports[NATS]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ports) and other._ports == self._ports

    def __hash__(self) -> int:
        return hash(tuple(self._ports.items()))

    def __repr__(self) -> str:
        return f"Ports({', '.join(f'{k}={v}' for k, v in self._ports.items())})"

    @classmethod
    def free(cls, host: str = "127.0.0.1") -> "Ports":
        """Distinct free ports for every process, for tests and benchmarks."""
        chosen: set[int] = set()
        while len(chosen) < len(PROCESSES):
            chosen.add(free_port(host))
        return cls(**dict(zip(PROCESSES, sorted(chosen), strict=True)))


def _default_port(name: str) -> int:
    return NATS_PORT if name == NATS else default_port(name)


@dataclass(frozen=True)
class SuiteConfig:
    """Everything a suite needs; only ``var_dir`` has no default.

    ``database_urls`` maps a component (``feedback``…, ``gateway``) to its database; a component
    left out gets its embedded SQLite file ``<var>/<component>.db``. With ``nats_url`` set, the
    suite uses that (externally started) NATS and starts none of its own, and
    ``nats_credentials`` is the directory of the components' NKey seeds (``<component>.nk``) if
    that NATS wants them; the embedded NATS always requires them, from ``<var>/nats-credentials``
    (generated once). ``signing_secret`` left
    unset is generated once into ``<var>/signing-secret``. ``env`` is added to every process's
    environment last, so it can override anything the suite sets (e.g.
    ``CXOPS_SCORECARD_CONSUMER_MAX_DELIVER=2`` or ``CXOPS_GATEWAY_RATE_LIMIT_PER_SECOND`` for a
    test).
    """

    var_dir: Path
    ports: Ports = field(default_factory=Ports)
    database_urls: Mapping[str, str] = field(default_factory=dict)
    nats_url: str | None = None
    nats_credentials: Path | None = None
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
        self.processes: dict[str, Process] = {}

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

    def process(self, name: str) -> Process:
        if name not in self.processes:
            self.processes[name] = Process(self.spec(name))
        return self.processes[name]

    # -- what each process is ---------------------------------------------------------------

    def names(self) -> list[str]:
        """Every process in start order."""
        return ([NATS] if self.embedded_nats else []) + [*SERVICES, GATEWAY]

    def spec(self, name: str) -> ProcessSpec:
        if name == NATS:
            if not self.embedded_nats:
                raise SuiteError("this suite uses an external NATS; it does not run one")
            nats = NatsServer(
                self.var_dir / NATS_STORE_DIR,
                port=self.ports.nats,
                host=self.host,
                log_file=self.log_file(NATS),
                config_file=self.var_dir / NATS_CONFIG_FILE,
            )
            return nats.spec(name=NATS, env={**self._base_env(), **self.config.env})
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
            ready=http_ok(f"{self.url(name)}/readyz"),
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
        if self.nats_seed_dir is not None:
            env[f"{prefix}NATS_NKEY_SEED_FILE"] = str(seed_file(self.nats_seed_dir, component))
        if component in SERVICES:  # where its other replicas reach it
            env[f"{prefix}INSTANCE_URL"] = self.url(component)
        if component == GATEWAY:
            env.update(
                {f"{prefix}{service.upper()}_URL": self.url(service) for service in SERVICES}
            )
        if component == FILES_KEEPER:  # uploaded event logs and job inputs, for every replica
            env[f"{prefix}DATA_DIR"] = str(self.var_dir / FILES_KEEPER)
        return env

    @property
    def nats_seed_dir(self) -> Path | None:
        """Where the components' NKey seeds are, if NATS requires them."""
        if self.embedded_nats:
            return self.var_dir / SEED_DIR
        return self.config.nats_credentials

    def nats_options(self, component: str) -> dict[str, Any]:
        """``nats.connect`` arguments to connect as ``component`` does (its name, reply inbox
        and seed), for tests that publish or read by hand."""
        name = client_name(component)
        options: dict[str, Any] = {
            "servers": [self.nats_url],
            "name": name,
            "inbox_prefix": inbox_prefix(name),
            "connect_timeout": 2,
            "allow_reconnect": False,
        }
        if self.nats_seed_dir is not None:
            options["nkeys_seed"] = str(seed_file(self.nats_seed_dir, component))
        return options

    def write_nats_config(self) -> None:
        """The embedded nats-server's authorization: every component's seed (made on first
        start, kept afterwards) and its public key with the permissions the code derives."""
        assert self.nats_seed_dir is not None
        try:
            public_keys = ensure_seeds(self.nats_seed_dir)
        except CredentialsError as exc:
            raise SuiteError(str(exc)) from exc
        path = self.var_dir / NATS_CONFIG_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(server_config(public_keys))

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
            if cancel is not None and cancel.is_set():
                raise StartCancelled("stop requested while starting")
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
        wait_ready(
            [self.process(name) for name in (names if names is not None else self.names())],
            timeout=timeout or self.config.ready_timeout,
            cancel=cancel,
        )

    def stop(self) -> None:
        """Stop everything: gateway, then the services, then NATS. Safe to call twice."""
        for tier in ([GATEWAY], list(reversed(SERVICES)), [NATS]):
            self._stop_all([self.processes[name] for name in tier if name in self.processes])

    def _stop_all(self, group: Sequence[Process]) -> None:
        stop_all(group, grace=self.config.stop_grace)

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
            self.write_nats_config()
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
        return self.process(name).failure("has stopped")

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
