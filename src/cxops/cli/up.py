"""``cxops up``: the whole suite on this machine, in the foreground, until Ctrl-C or SIGTERM.

On first start it also creates a development admin key (tenant ``dev``) and keeps it in
``<var>/dev-api-key``, so that the printed curl works at once and again after a restart.
"""

import inspect
import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from cxops.cli.database import run_blocking
from cxops.cli.processes import ProcessError, StartCancelled
from cxops.cli.supervisor import PROCESSES, Ports, Suite, SuiteConfig, SuiteError
from cxops.common.auth import Role
from cxops.common.components import GATEWAY
from cxops.common.db import Database

DEV_KEY_FILE = "dev-api-key"
DEV_TENANT = "dev"
DEV_KEY_NAME = "development key (cxops up)"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def up_command(*, var_dir: Path, ready_timeout: float, **ports: int) -> None:
    """Run nats-server, the four services and the gateway until Ctrl-C."""
    ports_given = Ports(**{name.removesuffix("_port"): port for name, port in ports.items()})
    suite = Suite(SuiteConfig(var_dir=var_dir, ports=ports_given, ready_timeout=ready_timeout))
    stop = threading.Event()

    def _request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _request_stop) for sig in STOP_SIGNALS}
    try:
        _run(suite, stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _port_option(name: str) -> inspect.Parameter:
    option = typer.Option(f"--{name}-port", help=f"Port of {name}.", min=1, max=65535)
    return inspect.Parameter(
        f"{name}_port",
        inspect.Parameter.KEYWORD_ONLY,
        default=Ports().of(name),
        annotation=Annotated[int, option],
    )


# The options as typer reads them: one ``--<name>-port`` per process, from the one list.
up_command.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [
        inspect.Parameter(
            "var_dir",
            inspect.Parameter.KEYWORD_ONLY,
            default=Path("var"),
            annotation=Annotated[
                Path, typer.Option("--var-dir", help="Where data, logs and the dev key are kept.")
            ],
        ),
        *(_port_option(name) for name in PROCESSES),
        inspect.Parameter(
            "ready_timeout",
            inspect.Parameter.KEYWORD_ONLY,
            default=90.0,
            annotation=Annotated[
                float, typer.Option(help="Seconds to wait for every process to be ready.")
            ],
        ),
    ]
)


def _run(suite: Suite, stop: threading.Event) -> None:
    typer.echo(f"cxops: starting in {suite.var_dir} (logs in {suite.log_dir})")
    try:
        suite.start(cancel=stop)
    except StartCancelled:
        typer.echo("cxops: stopped before it was ready")
        return
    except ProcessError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    failed = False
    try:
        key, created = ensure_dev_key(suite)
        typer.echo(banner(suite, key, created=created))
        crashed = _watch(suite, stop)
        if crashed is not None:
            typer.echo(f"error: {suite.failure_report(crashed)}", err=True)
            failed = True
    except ProcessError as exc:
        typer.echo(f"error: {exc}", err=True)
        failed = True
    finally:
        typer.echo("cxops: stopping")
        suite.stop()
    if failed:
        raise typer.Exit(1)
    typer.echo("cxops: stopped")


def _watch(suite: Suite, stop: threading.Event) -> str | None:
    """Block until a stop is requested (``None``) or a process dies on its own (its name)."""
    while not stop.wait(0.5):
        crashed = suite.exited()
        if crashed:
            return crashed[0]
    return None


def ensure_dev_key(suite: Suite) -> tuple[str, bool]:
    """The development admin key: read from ``<var>/dev-api-key``, or created and saved (0600)
    on first start. Returns the key and whether it was just created."""
    path = suite.var_dir / DEV_KEY_FILE
    try:
        if path.exists():
            key = path.read_text().strip()
            if key and key_is_valid(suite, key):
                return key, False
            typer.echo(f"cxops: the key in {path} is no longer valid; creating a new one")
        key = suite.create_api_key(tenant=DEV_TENANT, role=Role.ADMIN, name=DEV_KEY_NAME)
    except Exception as exc:
        raise SuiteError(f"could not set up the development key: {exc!r}") from exc
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(key + "\n")
    return key, True


def key_is_valid(suite: Suite, key: str) -> bool:
    """Whether the gateway would accept ``key``: a kept key file may outlive the database it
    was created in (``var/gateway.db`` deleted, the key revoked)."""
    from cxops.gateway.keys import KeyRejected, KeyVerifier

    async def _check() -> bool:
        verifier = KeyVerifier(ttl_seconds=0, max_entries=1)
        verifier.db = db = Database(suite.database_url(GATEWAY))
        try:
            await verifier.verify(key)
        except KeyRejected:
            return False
        finally:
            await db.dispose()
        return True

    return run_blocking(_check)


def banner(suite: Suite, key: str, *, created: bool) -> str:
    gateway = suite.gateway_url
    origin = "created" if created else "kept"
    return f"""
cxops is running.

  gateway    {gateway}
  API docs   {gateway}/docs
  data       {suite.var_dir}
  dev key    {key}
             (admin of tenant "{DEV_TENANT}", {origin} in {suite.var_dir / DEV_KEY_FILE})

Try it:
  curl -s -X POST {gateway}/v1/feedback/responses \\
    -H "Authorization: Bearer {key}" -H "Content-Type: application/json" \\
    -d '{{"kind": "nps", "score": 9, "customer_ref": "cust-1", "channel": "email"}}'
  curl -s {gateway}/v1/scorecard/metrics/nps -H "Authorization: Bearer {key}"

Press Ctrl-C to stop.
"""
