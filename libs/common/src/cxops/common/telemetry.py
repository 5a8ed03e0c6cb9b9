"""Logs, traces and metrics: JSON logs with request id and tenant, OpenTelemetry traces that
cross HTTP and NATS, and Prometheus metrics on ``/metrics``.

Middlewares here are pure ASGI: Starlette's ``BaseHTTPMiddleware`` breaks context variables.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import sys
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cxops.common.errors import problem_response

REQUEST_ID_HEADER = "X-Request-Id"

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "cxops_request_id", default=None
)
tenant_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "cxops_tenant", default=None
)

HTTP_REQUESTS = Counter(
    "cxops_http_requests_total", "HTTP requests handled", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "cxops_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


def bind_tenant(tenant: str | None) -> None:
    tenant_var.set(tenant)


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line, with the request id and tenant of the code that logged."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (request_id := request_id_var.get()) is not None:
            entry["request_id"] = request_id
        if (tenant := tenant_var.get()) is not None:
            entry["tenant"] = tenant
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(service: str, *, level: str = "INFO", as_json: bool = True) -> None:
    """Send the process's logs to stderr, one JSON object a line; replaces only our own handler,
    so handlers installed by others (a test runner's, say) keep working."""
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name("cxops")
    if as_json:
        handler.setFormatter(JsonLogFormatter(service))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if h.get_name() != "cxops"] + [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "nats", "httpx", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


_tracing_configured = False


def configure_tracing(service: str, *, otlp_endpoint: str | None = None) -> None:
    """Install an SDK tracer provider once per process; export over OTLP when configured.

    Without an exporter nothing would ever read a span, so none is recorded (``ALWAYS_OFF``):
    spans still carry the trace context, so ``traceparent`` travels on through HTTP and NATS and
    the logs keep their trace ids, for the cost of a context rather than a recorded span.
    """
    global _tracing_configured
    if _tracing_configured:
        return
    provider = TracerProvider(
        resource=Resource.create({"service.name": f"cxops-{service}"}),
        sampler=ParentBased(ALWAYS_ON) if otlp_endpoint else ALWAYS_OFF,
    )
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    trace.set_tracer_provider(provider)
    _tracing_configured = True


def add_tracing(app: Any, *, otlp_endpoint: str | None) -> None:
    """Trace the app's requests: server spans from OpenTelemetry's ASGI middleware when traces
    are exported; otherwise only the caller's trace context carried through the request (see
    :class:`TraceContextMiddleware`), since a recorded span nobody exports is pure cost."""
    if otlp_endpoint:
        app.add_middleware(
            OpenTelemetryMiddleware,
            excluded_urls="healthz,readyz,metrics",
            exclude_spans=["receive", "send"],
        )
    else:
        app.add_middleware(TraceContextMiddleware)


class TraceContextMiddleware:
    """The caller's ``traceparent`` (and ``tracestate``) made the current context for the
    request, without a span of its own: the events it queues and the calls it makes continue
    the caller's trace, and its logs carry the trace id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope.get("headers", ())
            if name in (b"traceparent", b"tracestate")
        }
        if scope["type"] != "http" or not carrier:
            await self.app(scope, receive, send)
            return
        token = otel_context.attach(propagate.extract(carrier))
        try:
            await self.app(scope, receive, send)
        finally:
            otel_context.detach(token)


def new_traceparent() -> str:
    """A W3C ``traceparent`` starting a new trace, not sampled: what a span would carry when no
    span is recorded, without making one."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00"


def outgoing_trace_headers() -> dict[str, str]:
    """The trace headers for a call or an event: the current trace, or a new one when there is
    none (a caller that sent no ``traceparent`` and no recorded span), so that whatever follows
    can always be found by one trace id."""
    headers: dict[str, str] = {}
    propagate.inject(headers)
    headers.setdefault("traceparent", new_traceparent())
    return headers


def extract_trace_context(headers: Mapping[str, str]) -> Any:
    return propagate.extract(dict(headers))


#: C0, DEL and C1 control characters.
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f]")
#: Where an app that routes by itself (the gateway's proxy) leaves the route label of a request,
#: in the ASGI scope; otherwise the matched route's path is the label.
ROUTE_LABEL = "cxops.route_label"


class RequestContextMiddleware:
    """Gives every request an id (the caller's ``X-Request-Id`` or a new one), echoes it on the
    response, binds it for logs, and records the request in Prometheus.

    It is the outermost layer, so it is also where a path holding a control character once
    percent-decoded (``/v1/feedback/x%00y``) is refused with 400: no route has such a path, and
    nothing behind (logs, traces, the audit log, a database that refuses NUL) has to carry it.

    And where ``HEAD`` is answered as ``GET`` without the body (RFC 9110 §9.3.2), for every
    route: FastAPI's routes answer only the methods they declare.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _header(scope, b"x-request-id") or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        tenant_token = tenant_var.set(None)
        started = time.perf_counter()
        status = 500
        head = scope["method"] == "HEAD"
        # A copy: the server reads its own scope's method to know it must send no body.
        inner = {**scope, "method": "GET"} if head else scope

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        try:
            if CONTROL_CHARACTERS.search(scope["path"]):
                refusal = problem_response(
                    400,
                    "The path must not contain control characters, encoded or not.",
                    slug="control-characters-in-path",
                    title="Control characters in the path",
                )
                await refusal(inner, receive, send_with_id)
            else:
                await self.app(inner, receive, send_with_id)
        finally:
            route_path = (
                inner.get(ROUTE_LABEL) or getattr(inner.get("route"), "path", None) or "unmatched"
            )
            HTTP_REQUESTS.labels(scope["method"], route_path, str(status)).inc()
            HTTP_LATENCY.labels(scope["method"], route_path).observe(time.perf_counter() - started)
            request_id_var.reset(token)
            tenant_var.reset(tenant_token)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            decoded: str = value.decode("latin-1")
            return decoded[:200]
    return None


async def metrics_endpoint(_: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
