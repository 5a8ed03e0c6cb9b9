"""What one gateway process holds while it runs, shared by the middlewares and the endpoints.

The pieces without I/O (limiter, key cache, OpenAPI cache) exist from ``create_app`` on, so the
middlewares can hold them; the database and the HTTP client are attached by the lifespan.
"""

from dataclasses import dataclass, field
from typing import Any

import httpx
from cxops.common.db import Database
from cxops.gateway.keys import KeyVerifier
from cxops.gateway.openapi import SuiteOpenAPI
from cxops.gateway.ratelimit import TokenBucketLimiter
from cxops.gateway.settings import GatewaySettings


@dataclass
class GatewayRuntime:
    settings: GatewaySettings
    keys: KeyVerifier
    limiter: TokenBucketLimiter
    suite_openapi: SuiteOpenAPI
    upstreams: dict[str, httpx.URL] = field(default_factory=dict)
    #: httpx's per-request timeout extension: reads bounded, connecting and pooling short.
    upstream_timeouts: dict[str, Any] = field(default_factory=dict)
    _db: Database | None = None
    _http: httpx.AsyncClient | None = None

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> "GatewayRuntime":
        return cls(
            settings=settings,
            keys=KeyVerifier(
                ttl_seconds=settings.key_cache_ttl_seconds,
                max_entries=settings.key_cache_max_entries,
            ),
            limiter=TokenBucketLimiter(
                rate=settings.rate_limit_per_second, burst=settings.rate_limit_burst
            ),
            suite_openapi=SuiteOpenAPI(
                services=settings.service_urls,
                cache_seconds=settings.openapi_cache_seconds,
                fetch_timeout_seconds=settings.openapi_fetch_timeout_seconds,
            ),
            upstreams={name: httpx.URL(url) for name, url in settings.service_urls.items()},
            upstream_timeouts=httpx.Timeout(
                settings.upstream_timeout_seconds,
                connect=settings.upstream_connect_timeout_seconds,
                pool=settings.upstream_connect_timeout_seconds,
            ).as_dict(),
        )

    def attach(self, *, db: Database, http: httpx.AsyncClient) -> None:
        self._db = db
        self._http = http
        self.keys.db = db

    def detach(self) -> None:
        self._db = None
        self._http = None
        self.keys.db = None
        self.keys.invalidate()

    @property
    def db(self) -> Database:
        if self._db is None:
            raise RuntimeError("the gateway is not started: no database")
        return self._db

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            raise RuntimeError("the gateway is not started: no HTTP client")
        return self._http
