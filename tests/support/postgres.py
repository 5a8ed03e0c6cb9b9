"""A throwaway PostgreSQL server for tests: initdb in a temporary directory, a free port, a unix
socket of its own, and one fresh database per test. The server runs as a child process like
every other (``cxops.cli.processes``), not daemonised by ``pg_ctl``, so it cannot outlive the
test run."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import uuid
from pathlib import Path

from cxops.cli.processes import Process, ProcessSpec, free_port


def _bindir() -> Path:
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
    )
    if versions:
        return Path(versions[-1])
    initdb = shutil.which("initdb")
    if initdb is None:
        raise FileNotFoundError("PostgreSQL is not installed (apt-get install postgresql)")
    return Path(initdb).parent


class PostgresServer:
    """PostgreSQL refuses to run as root, so as root it runs as the ``postgres`` user."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.data_dir = base_dir / "data"
        self.socket_dir = base_dir / "socket"
        self.port = free_port()
        self.bindir = _bindir()
        self.user = "postgres" if os.geteuid() == 0 else None
        self.process: Process | None = None

    def _command(self, program: str, *args: str) -> list[str]:
        cmd = [str(self.bindir / program), *args]
        return ["runuser", "-u", self.user, "--", *cmd] if self.user else cmd

    def _run(self, program: str, *args: str) -> None:
        subprocess.run(
            self._command(program, *args),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def _ready(self) -> bool:
        """Accepting connections, not merely listening (``pg_isready``)."""
        check = [str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        return subprocess.run(check, check=False).returncode == 0

    def start(self) -> PostgresServer:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if self.user:
            entry = pwd.getpwnam(self.user)
            for path in (self.base_dir, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data_dir), "-U", "cxops", "--auth=trust", "-E", "UTF8")
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.socket_dir),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "300",
        }
        options = [f"--{name}={value}" for name, value in settings.items()]
        self.process = Process(
            ProcessSpec(
                name="postgres",
                command=self._command(
                    "postgres", "-D", str(self.data_dir), "-p", str(self.port), *options
                ),
                log_file=self.base_dir / "postgres.log",
                port=self.port,
                ready=self._ready,
                # Immediate shutdown: the data is thrown away with the directory.
                stop_signal=signal.SIGQUIT,
            )
        )
        self.process.start().wait_ready(60)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://cxops@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its asyncpg URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self._run(
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "cxops",
            "-d",
            "postgres",
            "-c",
            f'CREATE DATABASE "{name}"',
        )
        return self.url(name)
