"""Settings shared by every service, read from the environment with one prefix per service.

Each service subclasses :class:`ServiceSettings` and sets ``env_prefix`` (``CXOPS_FEEDBACK_``…),
so one process never reads another's variables by accident.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The secret used when none is configured. Good enough on a laptop, refused anywhere else.
DEVELOPMENT_SIGNING_SECRET = "cxops-development-signing-secret-do-not-use"

Environment = Literal["development", "test", "production"]


class BaseCxopsSettings(BaseSettings):
    """What the gateway and the services all need: where they run and how they trust each other."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    environment: Environment = "production"
    database_url: str = "sqlite+aiosqlite:///./var/cxops.db"
    signing_secret: str = DEVELOPMENT_SIGNING_SECRET
    internal_token_ttl_seconds: int = Field(default=60, ge=5, le=3600)
    log_level: str = "INFO"
    log_json: bool = True
    otlp_endpoint: str | None = None

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> BaseCxopsSettings:
        if self.environment != "development" and self.signing_secret == DEVELOPMENT_SIGNING_SECRET:
            raise ValueError(
                f"signing_secret is the development default; set a real secret "
                f"(environment is {self.environment!r})"
            )
        if self.environment == "production" and len(self.signing_secret) < 32:
            raise ValueError("signing_secret must be at least 32 characters in production")
        return self


class NatsSettings(BaseSettings):
    """How a component reaches NATS. Services and the gateway (which reads every stream for
    webhooks and the live event stream) both mix it in, so they connect the same way.

    NATS is not open: a component authenticates with one of an NKey seed, as a file or as the
    value itself (the recommended way, and the embedded runtime's: the server holds only public
    keys and no secret crosses the wire), a ``.creds`` file (a user JWT and its seed, for NATS
    accounts in operator mode), or a user and password. In production one of them is required.
    """

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    nats_url: str = "nats://127.0.0.1:4222"
    nats_nkey_seed_file: Path | None = None
    nats_nkey_seed: SecretStr | None = None
    nats_creds_file: Path | None = None
    nats_user: str | None = None
    nats_password: SecretStr | None = None

    @property
    def nats_servers(self) -> list[str]:
        """``nats_url`` may list several servers, comma-separated, for a cluster."""
        return [url.strip() for url in self.nats_url.split(",") if url.strip()]

    @model_validator(mode="after")
    def _one_way_to_authenticate(self) -> NatsSettings:
        if (self.nats_user is None) != (self.nats_password is None):
            raise ValueError("nats_user and nats_password go together; set both or neither")
        ways = [
            name
            for name, value in (
                ("nats_nkey_seed_file", self.nats_nkey_seed_file),
                ("nats_nkey_seed", self.nats_nkey_seed),
                ("nats_creds_file", self.nats_creds_file),
                ("nats_user", self.nats_user),
            )
            if value is not None
        ]
        if len(ways) > 1:
            raise ValueError(f"choose one way to authenticate to NATS, not {' and '.join(ways)}")
        # Mixed into a component's settings beside BaseCxopsSettings, which has the environment.
        environment = getattr(self, "environment", "production")
        if not ways and environment == "production":
            raise ValueError(
                "NATS credentials are required in production (the server refuses anonymous "
                "clients): set nats_nkey_seed, nats_nkey_seed_file, nats_creds_file or "
                "nats_user and nats_password"
            )
        return self


class ServiceSettings(NatsSettings, BaseCxopsSettings):
    """A service: its database, its broker and how it publishes and consumes events."""

    stream_replicas: int = Field(default=1, ge=1, le=5)
    stream_max_age_days: float = Field(default=7.0, gt=0)
    outbox_batch_size: int = Field(default=200, ge=1, le=5000)
    outbox_poll_seconds: float = Field(default=0.5, gt=0)
    consumer_max_deliver: int = Field(default=5, ge=1)
    consumer_ack_wait_seconds: float = Field(default=30.0, gt=0)
    consumer_batch_size: int = Field(default=100, ge=1)
    retry_backoff_seconds: tuple[float, ...] = (0.5, 2.0, 5.0, 15.0)
    #: Where the service's other replicas reach this one (``http://<pod ip>:<port>``), for a
    #: service that hands calls to the replica that owns them (routing's tenants).
    instance_url: str | None = None
