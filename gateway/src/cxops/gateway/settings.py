"""The gateway's settings: the environment variables prefixed ``CXOPS_GATEWAY_``."""

from typing import Any, Self

from pydantic import Field, create_model, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from cxops.common.components import SERVICES, default_port
from cxops.common.settings import BaseCxopsSettings, NatsSettings

__all__ = ["SERVICES", "GatewaySettings"]

MIB = 1024 * 1024

#: Standard Webhooks' retry schedule: the delays after the first attempt, then the delivery fails.
WEBHOOK_RETRY_SCHEDULE: tuple[float, ...] = (
    5,
    5 * 60,
    30 * 60,
    2 * 3600,
    5 * 3600,
    10 * 3600,
    14 * 3600,
    20 * 3600,
    24 * 3600,
)


#: One setting per service, ``<service>_url`` (``CXOPS_GATEWAY_FEEDBACK_URL``…), defaulting to
#: where the embedded runtime runs it; made from the one list of services.
SERVICE_URL_FIELDS: dict[str, Any] = {
    f"{service}_url": (str, f"http://127.0.0.1:{default_port(service)}") for service in SERVICES
}
_ServiceUrls = create_model(  # type: ignore[call-overload]
    "ServiceUrls", __base__=BaseCxopsSettings, **SERVICE_URL_FIELDS
)


#: The bulk import of survey responses, whose body and time are far larger than any other call's.
IMPORT_PATH = "/v1/feedback/responses/import"
#: An event log uploaded for mining, streamed through to journey: up to gigabytes.
EVENT_LOG_PATH = "/v1/journey/event-logs"
#: The calls that may take the import's time to answer.
LONG_CALLS = frozenset({IMPORT_PATH, EVENT_LOG_PATH})


class GatewaySettings(NatsSettings, _ServiceUrls):  # type: ignore[misc,valid-type]
    """Where the services are, the limits the gateway applies before any of them is called, and
    how it delivers webhooks and streams events (it reads every service's stream from NATS)."""

    model_config = SettingsConfigDict(env_prefix="CXOPS_GATEWAY_", extra="ignore", frozen=True)

    database_url: str = "sqlite+aiosqlite:///./var/gateway.db"

    #: Token bucket per API key: the sustained rate, and how many calls may come at once.
    rate_limit_per_second: float = Field(default=50.0, gt=0)
    rate_limit_burst: int = Field(default=100, ge=1)
    #: Request bodies larger than this are refused with 413, declared or streamed.
    max_body_bytes: int = Field(default=MIB, ge=1)
    #: A bulk import (``POST`` :data:`IMPORT_PATH`, up to 100,000 rows): the limit of its body,
    #: and how long the service may take to answer it.
    import_max_body_bytes: int = Field(default=64 * MIB, ge=1)
    import_timeout_seconds: float = Field(default=300.0, gt=0)
    #: An event log's upload (``POST`` :data:`EVENT_LOG_PATH`, streamed, never held in memory):
    #: the limit of its body; it may take ``import_timeout_seconds`` too.
    event_log_max_body_bytes: int = Field(default=2 * 1024 * MIB, ge=1)

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

    #: Delays between a webhook's attempts (the first is immediate); shortened in tests.
    webhook_retry_schedule_seconds: tuple[float, ...] = Field(
        default=WEBHOOK_RETRY_SCHEDULE, min_length=1
    )
    #: One attempt, from connecting to the status line, ends after this.
    webhook_timeout_seconds: float = Field(default=15.0, gt=0)
    #: A claimed delivery is another worker's to retry after this (its worker died mid-send).
    webhook_lease_seconds: float = Field(default=60.0, gt=0)
    webhook_max_concurrent_deliveries: int = Field(default=32, ge=1)
    #: How often the delivery worker looks for due deliveries when nothing woke it.
    webhook_poll_seconds: float = Field(default=1.0, gt=0)
    #: After a rotation, the previous secret signs too for this long.
    webhook_secret_overlap_seconds: float = Field(default=24 * 3600.0, ge=0)
    #: The key material that encrypts endpoint secrets at rest; unset, the signing secret is
    #: used (see gateway/README.md, "Webhook secrets at rest").
    webhook_secrets_key: str | None = Field(default=None, min_length=32)
    #: An event the webhook consumers fetched but did not commit (the gateway died) comes
    #: back after this.
    webhook_consumer_ack_wait_seconds: float = Field(default=30.0, gt=0)
    #: Finished deliveries, and the webhook consumers' inbox, are purged after this.
    webhook_retention_days: float = Field(default=30.0, gt=0)

    #: A comment line is sent on every event stream this often, so proxies keep it open.
    stream_heartbeat_seconds: float = Field(default=15.0, gt=0)
    #: Concurrent event streams one API key may hold on one gateway process.
    stream_max_per_key: int = Field(default=5, ge=1)
    #: A client that has not taken an event (or heartbeat) for this long is disconnected.
    stream_send_timeout_seconds: float = Field(default=30.0, gt=0)

    @field_validator(*SERVICE_URL_FIELDS)
    @classmethod
    def _http_base_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("a service URL starts with http:// or https://")
        return value

    @model_validator(mode="after")
    def _lease_outlives_an_attempt(self) -> Self:
        if self.webhook_lease_seconds <= self.webhook_timeout_seconds:
            raise ValueError("webhook_lease_seconds must exceed webhook_timeout_seconds")
        return self

    @property
    def webhook_urls_checked(self) -> bool:
        """Outside development, webhook URLs must be https to public addresses (SSRF)."""
        return self.environment != "development"

    @property
    def service_urls(self) -> dict[str, str]:
        """Base URL of each service, by its name."""
        return {service: getattr(self, f"{service}_url") for service in SERVICES}
