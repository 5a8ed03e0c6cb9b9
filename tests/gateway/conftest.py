"""Real servers for the gateway tests.

Upstreams run as processes for the whole session: the routing service (its own migrated SQLite
file and a nats-server), and ``echo_upstream`` standing in for feedback and journey; scorecard
points at a port where nothing listens. Each test starts its own gateway, in this process, under
uvicorn on a free port (a real HTTP server whose state the test can inspect), on a freshly
migrated database.
"""

import asyncio
import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp

from cxops.cli.nats_server import NatsServer
from cxops.cli.processes import Process, ProcessSpec, free_port, http_ok
from cxops.common.auth import Role
from cxops.common.migrations import upgrade
from cxops.gateway.app import MIGRATIONS, create_app
from cxops.gateway.keys import ApiKeyRecord, create_key
from cxops.gateway.settings import GatewaySettings
from cxops.gateway.state import GatewayState
from cxops.routing.app import SPEC as ROUTING

SECRET = "gateway-tests-signing-secret-0123456789abcdef"
REPO = Path(__file__).resolve().parents[2]


def _spawn(args: list[str], *, env: dict[str, str], health_url: str) -> Process:
    """uvicorn serving ``args`` as a child process, ready once ``health_url`` answers 200."""
    name = args[0].split(":")[0]
    spec = ProcessSpec(
        name=name,
        command=[
            sys.executable,
            "-m",
            "uvicorn",
            *args,
            "--host",
            "127.0.0.1",
            "--log-level",
            "warning",
        ],
        log_file=Path(tempfile.mkdtemp(prefix="cxops-gw-")) / f"{name}.log",
        env={**os.environ, **env},
        ready=http_ok(health_url),
        cwd=REPO,
    )
    process = Process(spec).start()
    try:
        process.wait_ready(120)
    except BaseException:
        process.kill()
        raise
    return process


@pytest.fixture(scope="session")
def upstream_nats() -> Iterator[NatsServer]:
    server = NatsServer(Path(tempfile.mkdtemp(prefix="cxops-gw-nats-"))).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def routing_service(upstream_nats: NatsServer) -> Iterator[str]:
    """The real routing service, reached by the gateway (and directly by one test)."""
    database = Path(tempfile.mkdtemp(prefix="cxops-gw-routing-")) / "routing.db"
    url = f"sqlite+aiosqlite:///{database}"
    asyncio.run(upgrade(url, ROUTING.migrations))
    port = free_port()
    process = _spawn(
        ["cxops.routing.app:create_app", "--factory", "--port", str(port)],
        env={
            "CXOPS_ROUTING_DATABASE_URL": url,
            "CXOPS_ROUTING_NATS_URL": upstream_nats.url,
            "CXOPS_ROUTING_SIGNING_SECRET": SECRET,
            "CXOPS_ROUTING_ENVIRONMENT": "test",
            "CXOPS_ROUTING_LOG_JSON": "false",
            "CXOPS_ROUTING_LOG_LEVEL": "WARNING",
        },
        health_url=f"http://127.0.0.1:{port}/readyz",
    )
    yield f"http://127.0.0.1:{port}"
    process.stop()


@pytest.fixture(scope="session")
def echo_upstream() -> Iterator[str]:
    port = free_port()
    process = _spawn(
        ["tests.gateway.echo_upstream:app", "--port", str(port)],
        env={},
        health_url=f"http://127.0.0.1:{port}/openapi.json",
    )
    yield f"http://127.0.0.1:{port}"
    process.stop()


@pytest.fixture(scope="session")
def dead_upstream() -> str:
    """A loopback port where nothing listens: connections are refused at once."""
    return f"http://127.0.0.1:{free_port()}"


class Clock:
    """A monotonic clock the test moves (``clock.now += ttl``) instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Gateway:
    url: str
    app: FastAPI
    settings: GatewaySettings
    client: httpx.AsyncClient

    @property
    def state(self) -> GatewayState:
        state: GatewayState = self.app.state.cxops
        return state

    async def create_key(
        self,
        *,
        tenant: str = "acme",
        role: Role = Role.ADMIN,
        name: str = "test",
        agent_id: uuid.UUID | None = None,
    ) -> tuple[ApiKeyRecord, str]:
        """As ``cxops keys create`` does it: straight into the gateway's database."""
        async with self.state.db.transaction() as session:
            return await create_key(session, tenant=tenant, role=role, name=name, agent_id=agent_id)

    async def key(self, *, tenant: str = "acme", role: Role = Role.ADMIN) -> dict[str, str]:
        """Headers carrying a new key."""
        _, plaintext = await self.create_key(tenant=tenant, role=role)
        return {"Authorization": f"Bearer {plaintext}"}


StartGateway = Callable[..., AbstractAsyncContextManager[Gateway]]


@asynccontextmanager
async def serving(app: ASGIApp, port: int | None = None) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn in this event loop; yields its base URL."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_config=None,
            log_level="warning",
            lifespan="on",
            # The test client is on loopback, which uvicorn trusts by default; a gateway
            # facing the internet directly trusts no one's X-Forwarded-For.
            forwarded_allow_ips="",
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the server stopped during start-up")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def running_gateway(
    tmp_path: Path, database_url: str | None = None, **settings: Any
) -> AsyncIterator[Gateway]:
    """A gateway served on a free port, on a freshly migrated database (a SQLite file in
    ``tmp_path`` unless ``database_url`` is given)."""
    url = database_url or f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    await upgrade(url, MIGRATIONS)
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": url,
        "signing_secret": SECRET,
        # Never the default 4222: a suite someone runs on this machine must not be consumed.
        "nats_url": f"nats://127.0.0.1:{free_port()}",
        "log_json": False,
        "log_level": "WARNING",
    }
    gateway_settings = GatewaySettings(**(values | settings))
    app = create_app(gateway_settings)
    async with serving(app) as base:
        async with httpx.AsyncClient(base_url=base, timeout=15, trust_env=False) as client:
            yield Gateway(url=base, app=app, settings=gateway_settings, client=client)


@pytest.fixture
def start_gateway(
    routing_service: str, echo_upstream: str, dead_upstream: str, tmp_path: Path
) -> StartGateway:
    """``async with start_gateway(database_url=..., **settings) as gateway``."""

    def start(database_url: str | None = None, **overrides: Any) -> Any:
        upstreams = {
            "routing_url": routing_service,
            "feedback_url": echo_upstream,
            "journey_url": echo_upstream,
            "scorecard_url": dead_upstream,
        }
        return running_gateway(tmp_path, database_url, **(upstreams | overrides))

    return start


@pytest.fixture
async def gateway(start_gateway: StartGateway) -> AsyncIterator[Gateway]:
    """A gateway on SQLite with default limits."""
    async with start_gateway() as gateway:
        yield gateway
