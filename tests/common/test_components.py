"""The one list of components, and what is derived from it."""

from pathlib import Path

import pytest

from cxops.common.components import COMPONENTS, GATEWAY, SERVICES, default_port, env_prefix
from cxops.common.migrate import USAGE
from cxops.gateway.settings import GatewaySettings

REPO = Path(__file__).resolve().parents[2]


def test_the_service_directories_are_the_list() -> None:
    """The Makefile derives its images from the layout; the layout must be the list."""
    directories = {p.name for p in (REPO / "services").iterdir() if (p / "pyproject.toml").exists()}
    assert directories == set(SERVICES)
    assert (REPO / GATEWAY / "pyproject.toml").exists()
    assert COMPONENTS == (*SERVICES, GATEWAY)


def test_ports_and_prefixes_follow_the_list() -> None:
    assert [default_port(c) for c in COMPONENTS] == [8101, 8102, 8103, 8104, 8000]
    assert env_prefix("scorecard") == "CXOPS_SCORECARD_"
    with pytest.raises(ValueError, match="billing"):
        default_port("billing")


def test_the_gateway_has_one_url_setting_per_service(monkeypatch: pytest.MonkeyPatch) -> None:
    for service in SERVICES:
        monkeypatch.setenv(f"CXOPS_GATEWAY_{service.upper()}_URL", f"http://{service}:8000/")
    settings = GatewaySettings(environment="development")
    assert settings.service_urls == {service: f"http://{service}:8000" for service in SERVICES}
    defaults = GatewaySettings.model_fields
    assert {f"{service}_url" for service in SERVICES} <= set(defaults)
    assert defaults["journey_url"].default == "http://127.0.0.1:8104"


def test_the_migration_entry_point_names_every_component() -> None:
    assert USAGE.endswith("|".join(COMPONENTS))
