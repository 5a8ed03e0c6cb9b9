"""Forwarding ``/v1/<service>/...`` to the service, streaming both ways.

Request: the path goes unchanged (as the client encoded it), with the query; the client's
credentials (``Authorization``, ``X-API-Key``) never leave the gateway, a short-lived internal
token (tenant, role, key id) takes their place; hop-by-hop headers are dropped; request id,
``traceparent`` and ``X-Forwarded-*`` are set. The body streams from the client to the service
through the size limit, never buffered.

Response: status and headers (less hop-by-hop ones) as the service sent them, the body relayed
chunk by chunk as raw bytes (compressed stays compressed), the upstream response closed when
the client is done or gone.

Failures before the service answered: not reachable (refused, DNS, connect timeout, pool
exhausted) → 503; reached but no answer within ``upstream_timeout_seconds`` → 504. Both are
problem+json and carry ``service``. A failure after the response started cannot change the
status any more: the connection to the client is aborted, so a truncated body is never taken
for a complete one.
"""

import logging
import sys
from collections.abc import Iterable

import anyio
import httpx
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from prometheus_client import Counter
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from cxops.common.auth import INTERNAL_TOKEN_HEADER
from cxops.common.errors import Problem
from cxops.common.telemetry import ROUTE_LABEL, inject_trace_headers
from cxops.gateway.auth import STATE_KEY
from cxops.gateway.keys import VerifiedKey
from cxops.gateway.settings import SERVICES
from cxops.gateway.state import GatewayState

log = logging.getLogger("cxops.gateway.proxy")
tracer = trace.get_tracer("cxops.gateway")

UPSTREAM_FAILURES = Counter(
    "cxops_gateway_upstream_failures_total",
    "Proxied calls that got no response from the service",
    ["service", "kind"],
)

#: RFC 9110 §7.6.1: meaningful for one connection only, never forwarded.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
#: Request headers the gateway replaces or must never pass on.
_REQUEST_DROP = frozenset(
    {
        b"host",
        b"authorization",
        b"x-api-key",
        INTERNAL_TOKEN_HEADER.lower().encode(),
        b"x-request-id",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"forwarded",
        b"traceparent",
        b"tracestate",
    }
)
#: Response headers our own server sets (a second ``Date`` or ``Server`` would be a duplicate).
_RESPONSE_DROP = frozenset({b"date", b"server", b"x-request-id"})

#: Not in the RFCs: nginx's code for "the client closed the connection before the response".
CLIENT_CLOSED_REQUEST = 499

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class ServiceConvertor(Convertor[str]):
    """``{service:cxops_service}`` matches only the services we know, so an unknown first
    segment is a plain 404 and ``/v1/keys/...`` with another method is a 405, not a proxy miss."""

    regex = "|".join(SERVICES)

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("cxops_service", ServiceConvertor())
PROXY_PATHS = ("/v1/{service:cxops_service}", "/v1/{service:cxops_service}/{path:path}")


def strip_hop_by_hop(
    headers: Iterable[tuple[bytes, bytes]], *, drop: frozenset[bytes] = frozenset()
) -> list[tuple[bytes, bytes]]:
    """Headers without the hop-by-hop ones, those ``Connection`` names, ``Proxy-*`` and
    ``drop``; names come out lowercase, as ASGI wants them."""
    lowered = [(name.lower(), value) for name, value in headers]
    named = {
        token.strip().lower()
        for name, value in lowered
        if name == b"connection"
        for token in value.split(b",")
        if token.strip()
    }
    return [
        (name, value)
        for name, value in lowered
        if name not in HOP_BY_HOP
        and name not in named
        and name not in drop
        and not name.startswith(b"proxy-")
    ]


def upstream_url(base: httpx.URL, scope: Scope, service: str) -> httpx.URL:
    """The service URL for this request: the client's path bytes as sent, and the query."""
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
    expected = f"/v1/{service}".encode()
    if not (raw_path == expected or raw_path.startswith(expected + b"/")):
        raise Problem(400, "The path must name the service literally, not percent-encoded.")
    if any(segment in (".", "..") for segment in scope["path"].split("/")):
        raise Problem(400, "The path must not contain '.' or '..' segments.")
    query: bytes = scope.get("query_string", b"")
    target = base.raw_path.rstrip(b"/") + raw_path + (b"?" + query if query else b"")
    return base.copy_with(raw_path=target)


def forwarded_headers(scope: Scope, *, token: str) -> list[tuple[bytes, bytes]]:
    """What the service receives. ``X-Forwarded-For`` and ``-Proto`` are the client address and
    scheme as the server resolved them: uvicorn believes a client's own ``X-Forwarded-*`` only
    from the addresses in ``--forwarded-allow-ips`` (the load balancer), so that is the one
    place trust is configured."""
    headers = strip_hop_by_hop(scope["headers"], drop=_REQUEST_DROP)
    original = dict(scope["headers"])
    client = scope.get("client")
    headers.append((b"x-forwarded-for", (client[0] if client else "unknown").encode()))
    headers.append((b"x-forwarded-proto", scope.get("scheme", "http").encode()))
    if host := original.get(b"host"):
        headers.append((b"x-forwarded-host", host))
    if b"accept-encoding" not in original:
        # httpx would add its own; the client must get the encoding it asked for (none).
        headers.append((b"accept-encoding", b"identity"))
    request_id = scope.get("state", {}).get("request_id")
    if request_id:
        headers.append((b"x-request-id", request_id.encode("latin-1")))
    headers.append((INTERNAL_TOKEN_HEADER.lower().encode(), token.encode("ascii")))
    trace_headers: dict[str, str] = {}
    inject_trace_headers(trace_headers)
    headers.extend(
        (name.encode(), value.encode("latin-1")) for name, value in trace_headers.items()
    )
    return headers


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding":
            return True
        if name == b"content-length":
            return bool(value.strip() != b"0")
    return False


#: Responses up to this size with a declared length are relayed in one piece: the client gets
#: the same bytes, and the gateway skips the disconnect watcher that streaming needs.
SMALL_RESPONSE_BYTES = 64 * 1024


class UpstreamResponse(StreamingResponse):
    """Relays the service's response; the upstream connection is released whatever happens
    (finished, client gone, cancelled)."""

    def __init__(self, upstream: httpx.Response) -> None:
        super().__init__(upstream.aiter_raw(), status_code=upstream.status_code)
        self.raw_headers = strip_hop_by_hop(upstream.headers.raw, drop=_RESPONSE_DROP)
        self.upstream = upstream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            if _declared_length(self.upstream) <= SMALL_RESPONSE_BYTES:
                body = b"".join([chunk async for chunk in self.upstream.aiter_raw()])
                await send(
                    {
                        "type": "http.response.start",
                        "status": self.status_code,
                        "headers": self.raw_headers,
                    }
                )
                await send({"type": "http.response.body", "body": body, "more_body": False})
            else:  # large or open-ended (a download, an event stream): chunk by chunk
                await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.upstream.aclose()


def _declared_length(response: httpx.Response) -> int:
    """The upstream's Content-Length; unbounded when absent, chunked or encoded."""
    value = response.headers.get("content-length")
    if value is None or not value.isdigit() or "transfer-encoding" in response.headers:
        return sys.maxsize
    return int(value)


async def forward(request: Request) -> Response:
    """The proxy endpoint for every method under ``/v1/<service>``."""
    runtime: GatewayState = request.app.state.cxops
    service: str = request.path_params["service"]
    key: VerifiedKey = request.scope["state"][STATE_KEY]
    request.scope[ROUTE_LABEL] = runtime.suite_openapi.route(
        service, request.scope["path"], http=runtime.http
    )
    url = upstream_url(runtime.upstreams[service], request.scope, service)
    token = runtime.internal_token(key)
    with tracer.start_as_current_span(
        f"{request.method} {service}",
        kind=SpanKind.CLIENT,
        attributes={"http.request.method": request.method, "cxops.service": service},
    ):
        upstream_request = httpx.Request(
            request.method,
            url,
            headers=forwarded_headers(request.scope, token=token),
            content=request.stream() if _has_body(request.scope) else None,
            extensions={"timeout": runtime.upstream_timeouts},
        )
        try:
            upstream = await runtime.http.send(upstream_request, stream=True)
        except ClientDisconnect:
            # The client hung up while sending its body: the service saw an aborted request.
            # Nobody will read this response; 499 (as nginx logs it) is for the audit log.
            log.info("client disconnected during its request body to %s", service)
            return Response(status_code=CLIENT_CLOSED_REQUEST)
        except (httpx.ReadTimeout, httpx.WriteTimeout) as exc:
            raise _upstream_failure(service, "timeout", exc, status=504) from exc
        except httpx.TransportError as exc:
            raise _upstream_failure(service, "unavailable", exc, status=503) from exc
    return UpstreamResponse(upstream)


def _upstream_failure(service: str, kind: str, exc: Exception, *, status: int) -> Problem:
    UPSTREAM_FAILURES.labels(service, kind).inc()
    log.warning("%s: %s (%s)", service, kind, exc.__class__.__name__)
    if status == 504:
        detail = f"The {service} service did not answer in time."
    else:
        detail = f"The {service} service is unavailable; retry shortly."
    return Problem(
        status,
        detail,
        slug="upstream-timeout" if status == 504 else "service-unavailable",
        headers={"Retry-After": "1"} if status == 503 else None,
        service=service,
    )
