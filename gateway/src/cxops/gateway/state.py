"""What one gateway process holds while it runs, shared by the middlewares and the endpoints.

The pieces without I/O (limiter, key cache, OpenAPI cache, stream slots, the secret sealer)
exist from ``create_app`` on, so the middlewares can hold them; the database, the HTTP client,
the audit writer, the broker and the webhook worker are attached by the lifespan and detached
when it ends.
"""

import time
import uuid
from dataclasses import dataclass, field

import aiohttp
import httpx

from cxops.common.auth import mint_internal_token
from cxops.common.db import Database
from cxops.common.events import Broker
from cxops.gateway.audit import AuditWriter
from cxops.gateway.keys import KeyVerifier, VerifiedKey
from cxops.gateway.openapi import SuiteOpenAPI
from cxops.gateway.ratelimit import TokenBucketLimiter
from cxops.gateway.settings import GatewaySettings
from cxops.gateway.stream.slots import StreamSlots
from cxops.gateway.webhooks.delivery import DeliveryWorker
from cxops.gateway.webhooks.sealing import SecretSealer


@dataclass
class GatewayState:
    """The gateway's state; ``app.state.cxops``."""

    settings: GatewaySettings
    keys: KeyVerifier
    limiter: TokenBucketLimiter
    #: Failed authentications per client address.
    auth_failures: TokenBucketLimiter
    suite_openapi: SuiteOpenAPI
    #: Seals webhook endpoint secrets at rest, and opens them to sign.
    sealer: SecretSealer
    #: Each service's base URL, by name, without a trailing slash.
    upstreams: dict[str, str] = field(default_factory=dict)
    _db: Database | None = None
    _http: httpx.AsyncClient | None = None
    _proxy: aiohttp.ClientSession | None = None
    _audit: AuditWriter | None = None
    _tokens: dict[uuid.UUID, tuple[str, float]] = field(default_factory=dict)
    stream_slots: StreamSlots = field(default_factory=lambda: StreamSlots(max_per_key=5))
    _broker: Broker | None = None
    _webhooks: DeliveryWorker | None = None

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> "GatewayState":
        return cls(
            settings=settings,
            keys=KeyVerifier(
                ttl_seconds=settings.key_cache_ttl_seconds,
                max_entries=settings.key_cache_max_entries,
                negative_ttl_seconds=settings.key_negative_cache_ttl_seconds,
            ),
            limiter=TokenBucketLimiter(
                rate=settings.rate_limit_per_second, burst=settings.rate_limit_burst
            ),
            auth_failures=TokenBucketLimiter(
                rate=settings.auth_failure_rate_per_second, burst=settings.auth_failure_burst
            ),
            suite_openapi=SuiteOpenAPI(
                services=settings.service_urls,
                cache_seconds=settings.openapi_cache_seconds,
                fetch_timeout_seconds=settings.openapi_fetch_timeout_seconds,
            ),
            upstreams={name: url.rstrip("/") for name, url in settings.service_urls.items()},
            stream_slots=StreamSlots(max_per_key=settings.stream_max_per_key),
            sealer=SecretSealer(settings.webhook_secrets_key or settings.signing_secret),
        )

    def attach(
        self,
        *,
        db: Database,
        http: httpx.AsyncClient,
        proxy: aiohttp.ClientSession,
        audit: AuditWriter,
    ) -> None:
        self._db = db
        self._http = http
        self._proxy = proxy
        self._audit = audit
        self.keys.db = db

    def attach_events(self, *, broker: Broker, webhooks: DeliveryWorker) -> None:
        self._broker = broker
        self._webhooks = webhooks

    def detach(self) -> None:
        self._broker = None
        self._webhooks = None
        self._db = None
        self._http = None
        self._proxy = None
        self._audit = None
        self.keys.db = None
        self.keys.invalidate()
        self._tokens.clear()

    def internal_token(self, key: VerifiedKey) -> str:
        """The signed token the services trust, reused while more than half its lifetime is left.

        Minting costs more than the whole key check (HMAC and JSON, ~20-60 µs); reuse is safe
        because the key itself is verified on every request before its token is handed out, and
        the services see a token at least ``ttl/2`` seconds away from expiring. Tokens are kept
        per key id: what a token says (tenant, role, the bound agent) is fixed when the key is
        created, so a key's token is the same whenever it is minted.
        """
        now = time.monotonic()
        cached = self._tokens.get(key.id)
        if cached is not None and cached[1] > now:
            return cached[0]
        ttl = self.settings.internal_token_ttl_seconds
        token = mint_internal_token(
            key.caller(), secret=self.settings.signing_secret, ttl_seconds=ttl
        )
        if len(self._tokens) >= self.settings.key_cache_max_entries:
            self._tokens.pop(next(iter(self._tokens)))
        self._tokens[key.id] = (token, now + ttl / 2)
        return token

    @property
    def db(self) -> Database:
        if self._db is None:
            raise RuntimeError("the gateway is not started: no database")
        return self._db

    @property
    def audit(self) -> AuditWriter:
        if self._audit is None:
            raise RuntimeError("the gateway is not started: no audit writer")
        return self._audit

    @property
    def http(self) -> httpx.AsyncClient:
        """For the services' OpenAPI documents (the proxy hop has its own client)."""
        if self._http is None:
            raise RuntimeError("the gateway is not started: no HTTP client")
        return self._http

    @property
    def proxy(self) -> aiohttp.ClientSession:
        """The proxy hop's HTTP client."""
        if self._proxy is None:
            raise RuntimeError("the gateway is not started: no proxy client")
        return self._proxy

    @property
    def broker(self) -> Broker:
        if self._broker is None:
            raise RuntimeError("the gateway is not started: no broker")
        return self._broker

    @property
    def webhooks(self) -> DeliveryWorker:
        if self._webhooks is None:
            raise RuntimeError("the gateway is not started: no webhook worker")
        return self._webhooks
