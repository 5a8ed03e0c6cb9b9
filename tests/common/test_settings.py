import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from cxops.common.events.broker import Broker
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


SEED = "/run/secrets/cxops/nats/nkey.seed"
PRODUCTION = {"environment": "production", "signing_secret": "s" * 40}


def test_production_with_real_secret() -> None:
    settings = SampleSettings(**PRODUCTION, nats_nkey_seed_file=SEED)
    assert settings.environment == "production"


def test_nats_credentials_are_required_in_production_only() -> None:
    with pytest.raises(ValidationError, match="NATS credentials are required in production"):
        SampleSettings(**PRODUCTION)
    assert SampleSettings(environment="development").nats_nkey_seed_file is None
    assert str(SampleSettings(**PRODUCTION, nats_nkey_seed_file=SEED).nats_nkey_seed_file) == SEED


def test_one_way_to_authenticate_to_nats() -> None:
    with pytest.raises(ValidationError, match="go together"):
        SampleSettings(environment="development", nats_user="feedback")
    with pytest.raises(ValidationError, match="nats_nkey_seed_file and nats_creds_file"):
        SampleSettings(
            environment="development", nats_nkey_seed_file=SEED, nats_creds_file="/x.creds"
        )
    settings = SampleSettings(**PRODUCTION, nats_user="feedback", nats_password="pw")
    assert "pw" not in repr(settings)  # a SecretStr


def test_the_broker_passes_the_credentials_to_nats_py() -> None:
    def credentials(**values: str) -> dict[str, str]:
        return Broker.from_settings(
            SampleSettings(environment="development", **values), name="cxops-sample"
        ).credentials

    assert credentials() == {}
    assert credentials(nats_nkey_seed_file=SEED) == {"nkeys_seed": SEED}
    assert credentials(nats_nkey_seed="SUABC") == {"nkeys_seed_str": "SUABC"}
    assert credentials(nats_creds_file="/a.creds") == {"user_credentials": "/a.creds"}
    assert credentials(nats_user="u", nats_password="p") == {"user": "u", "password": "p"}
