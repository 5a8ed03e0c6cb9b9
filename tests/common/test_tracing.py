"""Tracing costs only what it gives: without an exporter the caller's trace context is carried
through a request (no span recorded); with one, OpenTelemetry's ASGI middleware records spans."""

import uuid

import httpx
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

from cxops.common.telemetry import TraceContextMiddleware, add_tracing, outgoing_trace_headers


def _app(otlp_endpoint: str | None) -> FastAPI:
    # As the services and the gateway make theirs: FastAPI's own telemetry off.
    app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})

    @app.get("/trace")
    async def current() -> dict[str, str]:
        outgoing = outgoing_trace_headers()  # what an event queued here would carry
        context = trace.get_current_span().get_span_context()
        return {"trace_id": format(context.trace_id, "032x"), **outgoing}

    add_tracing(app, otlp_endpoint=otlp_endpoint)
    return app


async def test_without_an_exporter_the_callers_trace_goes_on() -> None:
    app = _app(None)
    assert [m.cls for m in app.user_middleware] == [TraceContextMiddleware]
    trace_id, parent = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = (
            await client.get("/trace", headers={"traceparent": f"00-{trace_id}-{parent}-01"})
        ).json()
        assert answer["trace_id"] == trace_id
        assert answer["traceparent"].split("-")[1] == trace_id
        untraced = (await client.get("/trace")).json()
        # No span for a caller without a trace; what it queues starts a trace of its own.
        assert untraced["trace_id"] == "0" * 32
        assert untraced["traceparent"].startswith("00-")
        assert untraced["traceparent"].split("-")[1] not in (trace_id, "0" * 32)


def test_with_an_exporter_requests_get_server_spans() -> None:
    app = _app("http://127.0.0.1:4318/v1/traces")
    assert [m.cls for m in app.user_middleware] == [OpenTelemetryMiddleware]
