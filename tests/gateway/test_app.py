"""The gateway process: settings, start-up refusal, probes and metrics."""

from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager
from pydantic import ValidationError

from cxops.common.db import DatabaseNotMigrated
from cxops.gateway.app import create_app
from cxops.gateway.settings import GatewaySettings
from tests.gateway.conftest import Gateway


def test_settings_come_from_the_gateway_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXOPS_GATEWAY_ENVIRONMENT", "development")
    monkeypatch.setenv("CXOPS_GATEWAY_RATE_LIMIT_PER_SECOND", "7.5")
    monkeypatch.setenv("CXOPS_GATEWAY_MAX_BODY_BYTES", "2048")
    monkeypatch.setenv("CXOPS_GATEWAY_ROUTING_URL", "http://10.0.0.7:9000/")
    monkeypatch.setenv("CXOPS_ROUTING_MAX_BODY_BYTES", "1")  # another process's variable
    settings = GatewaySettings()
    assert settings.rate_limit_per_second == 7.5
    assert settings.max_body_bytes == 2048
    assert settings.service_urls["routing"] == "http://10.0.0.7:9000"
    assert settings.service_urls["feedback"] == "http://127.0.0.1:8101"
    assert settings.service_urls["journey"] == "http://127.0.0.1:8104"


def test_settings_refuse_what_cannot_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CXOPS_GATEWAY_SIGNING_SECRET", raising=False)
    with pytest.raises(ValidationError, match="signing_secret"):
        GatewaySettings(environment="production")
    with pytest.raises(ValidationError):
        GatewaySettings(environment="test", feedback_url="127.0.0.1:8101")
    with pytest.raises(ValidationError):
        GatewaySettings(environment="test", rate_limit_burst=0)


async def test_an_unmigrated_database_is_refused(tmp_path: Path) -> None:
    settings = GatewaySettings(
        environment="development",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}",
        log_json=False,
    )
    with pytest.raises(DatabaseNotMigrated, match="cxops migrate"):
        async with LifespanManager(create_app(settings)):
            pass


async def test_probes_and_metrics_need_no_key(gateway: Gateway) -> None:
    assert (await gateway.client.get("/healthz")).json() == {"status": "ok"}
    ready = await gateway.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok"}
    await gateway.client.get("/v1/keys")  # a 401, counted
    metrics = await gateway.client.get("/metrics")
    assert metrics.status_code == 200
    assert 'cxops_gateway_auth_rejections_total{reason="missing"}' in metrics.text
    assert "cxops_http_requests_total" in metrics.text
