import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from cxops.common.settings import DEVELOPMENT_SIGNING_SECRET, ServiceSettings


class SampleSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CXOPS_SAMPLE_", extra="ignore", frozen=True)


def test_reads_only_its_own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXOPS_SAMPLE_ENVIRONMENT", "development")
    monkeypatch.setenv("CXOPS_SAMPLE_DATABASE_URL", "sqlite+aiosqlite:///sample.db")
    monkeypatch.setenv("CXOPS_OTHER_DATABASE_URL", "postgresql+asyncpg://x/y")
    monkeypatch.setenv("CXOPS_SAMPLE_NATS_URL", "nats://a:4222, nats://b:4222")
    settings = SampleSettings()
    assert settings.database_url == "sqlite+aiosqlite:///sample.db"
    assert settings.nats_servers == ["nats://a:4222", "nats://b:4222"]


def test_default_secret_refused_outside_development(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXOPS_SAMPLE_ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="development default"):
        SampleSettings()


def test_short_secret_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="at least 32"):
        SampleSettings(environment="production", signing_secret="too-short")


def test_default_secret_refused_in_test_environment_too() -> None:
    with pytest.raises(ValidationError, match="development default"):
        SampleSettings(environment="test")


def test_default_secret_allowed_in_development() -> None:
    settings = SampleSettings(environment="development")
    assert settings.signing_secret == DEVELOPMENT_SIGNING_SECRET


def test_production_with_real_secret() -> None:
    settings = SampleSettings(environment="production", signing_secret="s" * 40)
    assert settings.environment == "production"
