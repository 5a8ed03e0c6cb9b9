"""The service kit: health, readiness through a broker outage, metrics, request ids, JSON logs."""

import asyncio
import json
import logging
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter

from cxops.cli.nats_server import NatsServer
from cxops.common.auth import (
    INTERNAL_TOKEN_HEADER,
    Caller,
    CallerContext,
    Role,
    mint_internal_token,
)
from cxops.common.db import DatabaseNotMigrated
from cxops.common.migrations import upgrade
from cxops.common.service import ServiceSpec, create_service_app
from cxops.common.settings import ServiceSettings
from tests.common.conftest import SAMPLE_MIGRATIONS

router = APIRouter()
log = logging.getLogger("cxops.sample")


@router.get("/hello")
async def hello(caller: Caller) -> dict[str, str]:
    log.info("hello called")
    return {"tenant": caller.tenant}


SPEC = ServiceSpec(
    name="sample", description="a sample", migrations=SAMPLE_MIGRATIONS, routers=[router]
)


def settings(database_url: str, nats_url: str) -> ServiceSettings:
    return ServiceSettings(
        environment="development", database_url=database_url, nats_url=nats_url, log_json=True
    )


async def test_refuses_to_start_unmigrated(tmp_path: Path, nats_server: NatsServer) -> None:
    app = create_service_app(
        SPEC, settings(f"sqlite+aiosqlite:///{tmp_path}/u.db", nats_server.url)
    )
    with pytest.raises(DatabaseNotMigrated):
        async with LifespanManager(app):
            pass


async def test_ready_only_with_database_and_broker(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/s.db"
    await upgrade(url, SAMPLE_MIGRATIONS)
    nats = NatsServer(tmp_path / "nats")  # not started yet: the service must start anyway
    app = create_service_app(SPEC, settings(url, nats.url))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            assert (await client.get("/healthz")).status_code == 200
            not_ready = await client.get("/readyz")
            assert not_ready.status_code == 503
            assert not_ready.json()["checks"] == {"database": "ok", "broker": "unavailable"}
            nats.start()
            try:
                for _ in range(100):
                    if (await client.get("/readyz")).status_code == 200:
                        break
                    await asyncio.sleep(0.1)
                assert (await client.get("/readyz")).json()["checks"]["broker"] == "ok"
                streams = await app.state.cxops.broker.js.streams_info()
                assert {"CX_SAMPLE", "CX_DEADLETTER"} <= {s.config.name for s in streams}
            finally:
                nats.stop()


async def test_request_id_metrics_and_json_logs(
    tmp_path: Path, nats_server: NatsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/s.db"
    await upgrade(url, SAMPLE_MIGRATIONS)
    cfg = settings(url, nats_server.url)
    app = create_service_app(SPEC, cfg)
    token = mint_internal_token(CallerContext("acme", Role.VIEWER, "k1"), secret=cfg.signing_secret)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            response = await client.get(
                "/v1/sample/hello",
                headers={INTERNAL_TOKEN_HEADER: token, "X-Request-Id": "req-123"},
            )
            generated = await client.get("/healthz")
            metrics = (await client.get("/metrics")).text
    assert response.json() == {"tenant": "acme"}
    assert response.headers["x-request-id"] == "req-123"
    assert len(generated.headers["x-request-id"]) == 32
    assert 'cxops_http_requests_total{method="GET",route="/hello",status="200"}' in metrics
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    logged = next(line for line in lines if line["message"] == "hello called")
    assert logged["service"] == "sample" and logged["message"] == "hello called"
    assert logged["request_id"] == "req-123"
    assert logged["tenant"] == "acme"
