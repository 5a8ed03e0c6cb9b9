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
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import TypeVar

import aiohttp
import yarl
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from prometheus_client import Counter
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from cxops.common.auth import INTERNAL_TOKEN_HEADER
from cxops.common.errors import Problem
from cxops.common.telemetry import ROUTE_LABEL, outgoing_trace_headers
from cxops.gateway.auth import STATE_KEY
from cxops.gateway.bodylimit import BodyTooLarge
from cxops.gateway.keys import VerifiedKey
from cxops.gateway.settings import LONG_CALLS, SERVICES, GatewaySettings
from cxops.gateway.state import GatewayState

log = logging.getLogger("cxops.gateway.proxy")
E = TypeVar("E", bound=BaseException)
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


def upstream_url(base: str, scope: Scope, service: str) -> yarl.URL:
    """The service URL for this request: the client's path bytes as sent, and the query."""
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
    expected = f"/v1/{service}".encode()
    if not (raw_path == expected or raw_path.startswith(expected + b"/")):
        raise Problem(400, "The path must name the service literally, not percent-encoded.")
    if any(segment in (".", "..") for segment in scope["path"].split("/")):
        raise Problem(400, "The path must not contain '.' or '..' segments.")
    query: bytes = scope.get("query_string", b"")
    target = raw_path + (b"?" + query if query else b"")
    # encoded=True: the bytes go out as the client sent them, never re-quoted.
    return yarl.URL(base + target.decode("latin-1"), encoded=True)


def proxy_session(settings: GatewaySettings) -> aiohttp.ClientSession:
    """The HTTP client of the proxy hop: one pool, keep-alive to every service.

    aiohttp rather than httpx on this path: httpx's pool re-checks every pooled connection on
    each request, which was 40% of the gateway's CPU under load (see docs/architecture.md).
    Idle connections are dropped before uvicorn's own 5 s keep-alive would close them under a
    request. No proxy variables (``trust_env`` off), no cookies, no decompression (compressed
    stays compressed), no headers of its own: the service sees what the client sent.
    """
    connector = aiohttp.TCPConnector(
        limit=settings.upstream_max_connections,
        limit_per_host=0,
        keepalive_timeout=UPSTREAM_KEEPALIVE_SECONDS,
        use_dns_cache=True,
    )
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        trust_env=False,
        skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
        timeout=aiohttp.ClientTimeout(
            total=None,
            connect=settings.upstream_connect_timeout_seconds,  # pool wait and connecting
            sock_read=settings.upstream_timeout_seconds,
        ),
    )


def forwarded_headers(scope: Scope, *, token: str) -> list[tuple[str, str]]:
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
        # The client must get the encoding it asked for (none), whatever the service prefers.
        headers.append((b"accept-encoding", b"identity"))
    request_id = scope.get("state", {}).get("request_id")
    if request_id:
        headers.append((b"x-request-id", request_id.encode("latin-1")))
    headers.append((INTERNAL_TOKEN_HEADER.lower().encode(), token.encode("ascii")))
    headers.extend(
        (name.encode(), value.encode("latin-1")) for name, value in outgoing_trace_headers().items()
    )
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]


def _declared_body_length(scope: Scope) -> int | None:
    """The request's Content-Length; None when it streams (chunked) or has no body."""
    for name, value in scope["headers"]:
        if name == b"transfer-encoding":
            return None
        if name == b"content-length":
            return int(value) if value.strip().isdigit() else None
    return 0


#: Bodies up to this size with a declared length travel in one piece, both ways: the client
#: gets the same bytes, and the gateway skips the streaming machinery. Larger or open-ended ones
#: (uploads, downloads, event streams) stream chunk by chunk and are never held whole.
SMALL_BODY_BYTES = 64 * 1024
UPSTREAM_KEEPALIVE_SECONDS = 4.0


class UpstreamResponse(Response):
    """Relays the service's response; the upstream connection is released whatever happens
    (finished, client gone, cancelled)."""

    def __init__(self, upstream: aiohttp.ClientResponse) -> None:
        self.status_code = upstream.status
        self.raw_headers = strip_hop_by_hop(upstream.raw_headers, drop=_RESPONSE_DROP)
        self.background = None
        self.upstream = upstream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            length = self.upstream.content_length
            if length is not None and length <= SMALL_BODY_BYTES:
                body = await self.upstream.read()
                await send(
                    {
                        "type": "http.response.start",
                        "status": self.status_code,
                        "headers": self.raw_headers,
                    }
                )
                await send({"type": "http.response.body", "body": body, "more_body": False})
            else:
                streaming = StreamingResponse(
                    self.upstream.content.iter_any(), status_code=self.status_code
                )
                streaming.raw_headers = self.raw_headers
                await streaming(scope, receive, send)
        finally:
            # Back to the pool when it was read to the end; closed when the client left early.
            self.upstream.release()


async def forward(request: Request) -> Response:
    """The proxy endpoint for every method under ``/v1/<service>``."""
    state: GatewayState = request.app.state.cxops
    service: str = request.path_params["service"]
    key: VerifiedKey = request.scope["state"][STATE_KEY]
    request.scope[ROUTE_LABEL] = state.suite_openapi.route(
        service, request.scope["path"], http=state.http
    )
    url = upstream_url(state.upstreams[service], request.scope, service)
    token = state.internal_token(key)
    with _client_span(state, request.method, service):
        length = _declared_body_length(request.scope)
        try:
            body: bytes | AsyncIterator[bytes] | None
            if length == 0:
                body = None
            elif length is not None and length <= SMALL_BODY_BYTES:
                body = await request.body()
            else:
                body = request.stream()
            upstream = await state.proxy.request(
                request.method,
                url,
                headers=forwarded_headers(request.scope, token=token),
                data=body,
                allow_redirects=False,
                compress=None,
                **_longer_timeout(state, request.scope["path"]),
            )
        except ClientDisconnect:
            # The client hung up while sending its body: the service saw an aborted request.
            # Nobody will read this response; 499 (as nginx logs it) is for the audit log.
            log.info("client disconnected during its request body to %s", service)
            return Response(status_code=CLIENT_CLOSED_REQUEST)
        except aiohttp.SocketTimeoutError as exc:
            raise _upstream_failure(service, "timeout", exc, status=504) from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            # Reading the client's body failed while it streamed to the service: aiohttp
            # reports that as a connection error, with the reason underneath.
            if (too_large := _underlying(exc, BodyTooLarge)) is not None:
                raise too_large from None
            if _underlying(exc, ClientDisconnect) is not None:
                log.info("client disconnected during its request body to %s", service)
                return Response(status_code=CLIENT_CLOSED_REQUEST)
            raise _upstream_failure(service, "unavailable", exc, status=503) from exc
    return UpstreamResponse(upstream)


def _longer_timeout(state: GatewayState, path: str) -> dict[str, aiohttp.ClientTimeout]:
    """A bulk import or an event log's upload may take minutes to answer; every other call has
    the session's timeout."""
    if path not in LONG_CALLS:
        return {}
    settings = state.settings
    return {
        "timeout": aiohttp.ClientTimeout(
            total=None,
            connect=settings.upstream_connect_timeout_seconds,
            sock_read=settings.import_timeout_seconds,
        )
    }


def _client_span(state: GatewayState, method: str, service: str) -> AbstractContextManager[object]:
    """A client span for the call, when spans are exported; otherwise the caller's trace
    context (if any) goes on as it came, for none of a span's cost."""
    if not state.settings.otlp_endpoint:
        return nullcontext()
    return tracer.start_as_current_span(
        f"{method} {service}",
        kind=SpanKind.CLIENT,
        attributes={"http.request.method": method, "cxops.service": service},
    )


def _underlying(exc: BaseException, kind: type[E]) -> E | None:
    """The exception of type ``kind`` that caused ``exc``, if any."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


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
