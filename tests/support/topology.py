"""The production topology on one machine, for tests: a 3-node NATS JetStream cluster, PostgreSQL
with a database per component, and every component run as its production manifest runs it.

What runs is read from the rendered ``k8s/overlays/production`` manifests: each Deployment's
command and environment, each migration Job's command and environment. Only what names a place
or a secret differs (database URLs, the signing secret, the NATS URL, the gateway's service URLs,
the listening host and port), so a test proves the settings ops deploy, not a test variant.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import nats
import yaml
from nats.js import JetStreamContext
from nats.js.api import StreamInfo
from nats.js.errors import NotFoundError

from cxops.cli.nats_auth import ensure_seeds, public_key_variable, seed_file
from cxops.cli.nats_server import NatsServer
from cxops.cli.processes import ProcessSpec, free_port, http_ok
from cxops.cli.supervisor import Suite, SuiteConfig
from cxops.common.components import COMPONENTS, GATEWAY, SERVICES, env_prefix
from cxops.common.events.broker import DEAD_LETTER_STREAM, client_name, inbox_prefix

HOST = "127.0.0.1"
NATS_VALUES = Path(__file__).resolve().parents[2] / "k8s" / "dependencies" / "nats-values.yaml"
#: Settings whose value names a place or a secret: the only ones a local run sets differently
#: from the manifests (by their name after ``CXOPS_<COMPONENT>_``).
PLACES_AND_SECRETS = (
    {"DATABASE_URL", "SIGNING_SECRET", "NATS_URL", "NATS_NKEY_SEED"}
    | {f"{service.upper()}_URL" for service in SERVICES}
    | {"POD_IP", "INSTANCE_URL", "DATA_DIR"}
)


def chart_authorization(values_file: Path = NATS_VALUES) -> str:
    """The NATS chart values' ``config.merge.authorization`` as nats-server configuration: the
    chart writes ``<< $NAME >>`` unquoted, a variable the server reads from its environment."""
    values = yaml.safe_load(values_file.read_text())
    text = json.dumps(values["config"]["merge"]["authorization"], indent=2)
    return "authorization: " + re.sub(r'"<< (\$\w+) >>"', r"\1", text) + "\n"


class NatsCluster:
    """nats-server processes with routes to each other and JetStream clustered over them (the
    chart's topology), each with its own store, on loopback, and with the chart values'
    authorization: the components' public keys from ``seed_dir`` (made there once), anonymous
    clients refused. The cluster is inspected as the gateway, the reader of every stream."""

    def __init__(self, base_dir: Path, *, seed_dir: Path, size: int = 3) -> None:
        cluster_ports = [free_port(HOST) for _ in range(size)]
        self.seed_dir = seed_dir
        public_keys = ensure_seeds(seed_dir)
        config = base_dir / "authorization.conf"
        base_dir.mkdir(parents=True, exist_ok=True)
        config.write_text(chart_authorization())
        env = {
            **os.environ,
            **{public_key_variable(c): key for c, key in public_keys.items()},
        }
        self.nodes = [
            NatsServer(
                base_dir / f"nats-{i}",
                host=HOST,
                name=f"nats-{i}",
                cluster=(cluster_ports[i], cluster_ports),
                log_file=base_dir / f"nats-{i}.log",
                config_file=config,
                env=env,
            )
            for i in range(size)
        ]

    @property
    def servers(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        """Every node, comma-separated, the way ``CXOPS_<SERVICE>_NATS_URL`` takes a cluster."""
        return ",".join(self.servers)

    def node(self, name: str) -> NatsServer:
        return next(node for node in self.nodes if node.name == name)

    def start(self) -> NatsCluster:
        for node in self.nodes:
            node.start()
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    @asynccontextmanager
    async def jetstream(self) -> AsyncIterator[JetStreamContext]:
        """A JetStream context on a connection to any node, closed afterwards."""
        name = client_name(GATEWAY)
        connection = await nats.connect(
            servers=self.servers,
            connect_timeout=2,
            name=name,
            inbox_prefix=inbox_prefix(name),
            nkeys_seed=str(seed_file(self.seed_dir, GATEWAY)),
        )
        try:
            yield connection.jetstream(timeout=5)
        finally:
            await connection.close()

    async def wait_for_jetstream(self, *, within: float = 60.0) -> None:
        """Wait until the cluster has a JetStream meta leader and answers API requests (a
        stream that does not exist yet is an answer)."""
        deadline = time.monotonic() + within
        async with self.jetstream() as js:
            while True:
                try:
                    await js.stream_info(DEAD_LETTER_STREAM)
                    return
                except NotFoundError:
                    return
                except Exception:  # no meta leader yet: try again
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)

    async def stream_info(self, stream: str) -> StreamInfo:
        async with self.jetstream() as js:
            return await js.stream_info(stream)

    async def streams_info(self, names: Iterable[str]) -> list[StreamInfo]:
        """The named streams' info (listing every stream is no component's right)."""
        async with self.jetstream() as js:
            return [await js.stream_info(name) for name in names]


@dataclass(frozen=True)
class Workload:
    """What a component's manifests run: the command and variables of its Deployment's container
    and of its migration Job's (``None`` for a value taken from a Secret)."""

    server_command: Sequence[str]
    server_env: Mapping[str, str | None]
    migrate_command: Sequence[str]
    migrate_env: Mapping[str, str | None]


def local_command(command: Sequence[str], *, port: int | None = None) -> list[str]:
    """A container's command as it runs from this checkout: ``python`` is this interpreter, an
    installed script (``uvicorn``) is this environment's, and it listens on loopback ``port``."""
    program, *args = command
    bindir = Path(sys.executable).parent
    local = [sys.executable if program == "python" else str(bindir / program)]
    for arg in args:
        if arg.startswith("--host="):
            arg = f"--host={HOST}"
        elif arg.startswith("--port="):
            assert port is not None, f"{command} listens, but no port was given"
            arg = f"--port={port}"
        local.append(arg)
    return local


class ProductionTopology(Suite):
    """The suite's process supervision (start, readiness, kill, restart, stop) running each
    component's manifest workload instead of the embedded runtime's command."""

    def __init__(self, config: SuiteConfig, workloads: Mapping[str, Workload]) -> None:
        assert config.nats_url, "the production topology runs against an external NATS cluster"
        super().__init__(config)
        self.workloads = workloads

    def component_env(self, component: str) -> dict[str, str]:
        """This machine's places and secrets; the NKey seed as the manifests give it, the value
        itself (from a Secret), not a file."""
        env = super().component_env(component)
        seed = env.pop(f"{env_prefix(component)}NATS_NKEY_SEED_FILE")
        env[f"{env_prefix(component)}NATS_NKEY_SEED"] = Path(seed).read_text().strip()
        env[f"{env_prefix(component)}POD_IP"] = self.host  # the pod's address, for routing
        return env

    def _localised(self, component: str, manifest: Mapping[str, str | None]) -> dict[str, str]:
        """The manifest's variables, with this machine's places and secrets."""
        prefix = env_prefix(component)
        here = self.component_env(component)
        env: dict[str, str] = {}
        for name, value in manifest.items():
            if name.removeprefix(prefix) in PLACES_AND_SECRETS:
                env[name] = here[name]
            else:
                assert value is not None, f"{name} comes from a Secret but is no known secret"
                env[name] = value
        return env

    def _env(self, component: str, manifest: Mapping[str, str | None]) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("CXOPS_")}
        return {**inherited, "PYTHONUNBUFFERED": "1", **self._localised(component, manifest)}

    def spec(self, name: str) -> ProcessSpec:
        workload = self.workloads[name]
        port = self.ports.of(name)
        return ProcessSpec(
            name=name,
            command=local_command(workload.server_command, port=port),
            env=self._env(name, workload.server_env),
            log_file=self.log_file(name),
            host=self.host,
            port=port,
            ready=http_ok(f"{self.url(name)}/readyz"),
        )

    def migrate(self) -> None:
        """Each component's migration Job, as a process of its own, before any server starts."""
        for component in COMPONENTS:
            workload = self.workloads[component]
            result = subprocess.run(
                local_command(workload.migrate_command),
                env=self._env(component, workload.migrate_env),
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert result.returncode == 0, f"migrating {component}:\n{result.stderr}"

    def create_api_key(self, *, tenant: str, role: str, name: str) -> str:
        """A key made the way docs/deploy.md makes the first one, inside the gateway's image."""
        command = ["python", "-m", "cxops.gateway.create_key", "--tenant", tenant, "--role", role]
        result = subprocess.run(
            [*local_command(command), "--name", name],
            env=self._env(GATEWAY, self.workloads[GATEWAY].migrate_env),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()
