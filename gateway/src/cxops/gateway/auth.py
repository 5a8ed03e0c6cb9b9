"""Who is calling: the API key check and the per-key rate limit, as one pure ASGI middleware,
and the dependencies the gateway's own endpoints use to read the result.

Authentication is a middleware rather than a FastAPI dependency because it guards everything,
proxied routes and unknown paths alike, and because the audit and the body limit need to know
the caller before any route runs (a 413 or a 429 is audited with its key).
"""

import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Receive, Scope, Send

from cxops.common.auth import CallerContext, Role, require_role
from cxops.common.errors import Problem, problem_response
from cxops.common.telemetry import bind_tenant
from cxops.gateway.keys import KeyRejected, VerifiedKey

if TYPE_CHECKING:
    from cxops.gateway.state import GatewayState

log = logging.getLogger("cxops.gateway.auth")

#: Reachable without a key: probes, metrics and the documentation.
PUBLIC_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect"}
)
API_KEY_HEADER = "X-API-Key"
#: Where the verified key is left in ``scope["state"]`` for the audit, the proxy and endpoints.
STATE_KEY = "api_key"

AUTH_REJECTIONS = Counter(
    "cxops_gateway_auth_rejections_total", "Requests refused before routing", ["reason"]
)

_CHALLENGE = 'Bearer realm="cxops"'
_INVALID_CHALLENGE = 'Bearer realm="cxops", error="invalid_token"'


def presented_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The key from ``Authorization: Bearer`` or ``X-API-Key``.

    Raises :class:`KeyRejected` when both are given and differ: a proxy that adds one header
    must not make us pick a key the caller did not mean.
    """
    bearer: str | None = None
    header_key: str | None = None
    for name, value in headers:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                bearer = credentials.strip()
        elif name == b"x-api-key":
            header_key = value.decode("latin-1").strip() or None
    if bearer and header_key and bearer != header_key:
        raise KeyRejected("Two different API keys were presented.")
    return bearer or header_key


def client_address(scope: Scope) -> str:
    """The client's address as the server resolved it (uvicorn believes ``X-Forwarded-For``
    only from ``--forwarded-allow-ips``)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class ApiKeyMiddleware:
    """401 without a valid key, 429 over the key's rate or after too many failed
    authentications from the client's address; otherwise the caller goes into the scope state
    and the tenant into the log context."""

    def __init__(self, app: ASGIApp, *, runtime: "GatewayState") -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        address = client_address(scope)
        # Before the key is even parsed: past its budget, an address costs no lookup at all.
        wait = self.runtime.auth_failures.delay(address)
        if wait > 0:
            AUTH_REJECTIONS.labels("too_many_failures").inc()
            retry_after = self.runtime.auth_failures.retry_after(wait)
            response = problem_response(
                429,
                "Too many failed authentications from this address; "
                f"retry in {retry_after} s with a valid API key.",
                instance=path,
                slug="too-many-failed-authentications",
                headers={"Retry-After": str(retry_after)},
                retry_after=retry_after,
            )
            await response(scope, receive, send)
            return
        try:
            key = presented_key(scope["headers"])
            if key is None:
                AUTH_REJECTIONS.labels("missing").inc()
                self.runtime.auth_failures.acquire(address)
                await _unauthenticated(
                    "An API key is required: 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.",
                    path,
                    _CHALLENGE,
                )(scope, receive, send)
                return
            verified = await self.runtime.keys.verify(key)
        except KeyRejected as rejected:
            AUTH_REJECTIONS.labels("invalid").inc()
            self.runtime.auth_failures.acquire(address)
            await _unauthenticated(rejected.reason, path, _INVALID_CHALLENGE)(scope, receive, send)
            return
        except (SQLAlchemyError, OSError):
            log.exception("cannot verify an API key: the gateway database is unavailable")
            AUTH_REJECTIONS.labels("unavailable").inc()
            response = problem_response(
                503,
                "The API key cannot be verified right now; retry shortly.",
                instance=path,
                slug="unavailable",
                headers={"Retry-After": "1"},
            )
            await response(scope, receive, send)
            return

        scope.setdefault("state", {})[STATE_KEY] = verified
        bind_tenant(verified.tenant)
        wait = self.runtime.limiter.acquire(verified.id)
        if wait > 0:
            AUTH_REJECTIONS.labels("rate_limited").inc()
            retry_after = self.runtime.limiter.retry_after(wait)
            response = problem_response(
                429,
                f"Rate limit of {self.runtime.settings.rate_limit_per_second:g} requests per "
                f"second (burst {self.runtime.settings.rate_limit_burst}) exceeded for this key.",
                instance=path,
                slug="rate-limited",
                headers={"Retry-After": str(retry_after)},
                retry_after=retry_after,
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _unauthenticated(detail: str, path: str, challenge: str) -> JSONResponse:
    return problem_response(
        401,
        detail,
        instance=path,
        slug="unauthenticated",
        headers={"WWW-Authenticate": challenge},
    )


def verified_key(request: Request) -> VerifiedKey:
    """FastAPI dependency: the key the middleware verified."""
    key: VerifiedKey | None = request.scope.get("state", {}).get(STATE_KEY)
    if key is None:  # only if a public path declared this dependency by mistake
        raise Problem(401, "An API key is required.", slug="unauthenticated")
    return key


async def verified_caller(key: Annotated[VerifiedKey, Depends(verified_key)]) -> CallerContext:
    """FastAPI dependency: the caller the verified key stands for."""
    return key.caller()


def require_gateway_role(*roles: Role) -> Callable[..., Coroutine[Any, Any, CallerContext]]:
    """Admin and the given roles pass; others get 403 (the same rule the services apply)."""
    return require_role(*roles, caller_from=verified_caller)


Admin = Annotated[CallerContext, Depends(require_gateway_role())]
