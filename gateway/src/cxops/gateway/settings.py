"""The gateway's settings: the environment variables prefixed ``CXOPS_GATEWAY_``."""

from typing import Any

from pydantic import Field, create_model, field_validator
from pydantic_settings import SettingsConfigDict

from cxops.common.components import SERVICES, default_port
from cxops.common.settings import BaseCxopsSettings, NatsSettings

__all__ = ["SERVICES", "GatewaySettings"]

MIB = 1024 * 1024

#: One setting per service, ``<service>_url`` (``CXOPS_GATEWAY_FEEDBACK_URL``…), defaulting to
#: where the embedded runtime runs it; made from the one list of services.
SERVICE_URL_FIELDS: dict[str, Any] = {
    f"{service}_url": (str, f"http://127.0.0.1:{default_port(service)}") for service in SERVICES
}
_ServiceUrls = create_model(  # type: ignore[call-overload]
    "ServiceUrls", __base__=BaseCxopsSettings, **SERVICE_URL_FIELDS
)


class GatewaySettings(NatsSettings, _ServiceUrls):  # type: ignore[misc,valid-type]
    """Where the services are, how it reaches NATS (it reads every stream), and the limits the
    gateway applies before any service is called."""

    model_config = SettingsConfigDict(env_prefix="CXOPS_GATEWAY_", extra="ignore", frozen=True)

    database_url: str = "sqlite+aiosqlite:///./var/gateway.db"

    #: Token bucket per API key: the sustained rate, and how many calls may come at once.
    rate_limit_per_second: float = Field(default=50.0, gt=0)
    rate_limit_burst: int = Field(default=100, ge=1)
    #: Request bodies larger than this are refused with 413, declared or streamed.
    max_body_bytes: int = Field(default=MIB, ge=1)

    #: How long one upstream call may take (each read of the response, in httpx terms).
    upstream_timeout_seconds: float = Field(default=30.0, gt=0)
    #: How long to wait for a TCP connection to a service: a down service is reported quickly.
    upstream_connect_timeout_seconds: float = Field(default=3.0, gt=0)
    upstream_max_connections: int = Field(default=256, ge=1)
    upstream_max_keepalive_connections: int = Field(default=64, ge=0)

    #: How long a verified key is trusted without asking the database again. A revocation made
    #: through this gateway process is immediate; one made elsewhere (another replica, the CLI)
    #: takes effect within this bound. 0 turns the cache off.
    key_cache_ttl_seconds: float = Field(default=5.0, ge=0, le=300)
    key_cache_max_entries: int = Field(default=10_000, ge=1)
    #: How long a prefix the database does not know is refused without asking again. A key
    #: created through this gateway works at once; one created elsewhere whose prefix was tried
    #: just before (prefixes are random, so by chance only) works within this bound. 0: off.
    key_negative_cache_ttl_seconds: float = Field(default=2.0, ge=0, le=60)

    #: Failed authentications (401) allowed per client address: a token bucket, as for keys.
    #: Past it, every request from the address is 429 before its key is looked at, so a flood
    #: of made-up keys cannot reach the database. The address is the one uvicorn resolved
    #: (behind a load balancer, set ``--forwarded-allow-ips`` or all clients share one).
    auth_failure_rate_per_second: float = Field(default=1.0, gt=0)
    auth_failure_burst: int = Field(default=20, ge=1)

    #: How long a service's ``/openapi.json`` is reused in the suite's merged document.
    openapi_cache_seconds: float = Field(default=60.0, ge=0)
    openapi_fetch_timeout_seconds: float = Field(default=2.0, gt=0)

    @field_validator(*SERVICE_URL_FIELDS)
    @classmethod
    def _http_base_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("a service URL starts with http:// or https://")
        return value

    @property
    def service_urls(self) -> dict[str, str]:
        """Base URL of each service, by its name."""
        return {service: getattr(self, f"{service}_url") for service in SERVICES}
