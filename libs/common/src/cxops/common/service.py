"""What makes a cxops service a service: one ``create_service_app`` that wires settings, the
database, the broker, the outbox relay, the consumers, health, metrics, errors and auth.

A service module declares a :class:`ServiceSpec` (its routers, consumers and migrations); all the
plumbing is here, so the four services behave alike.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

from cxops.common.auth import CallerContext, Role, require_role
from cxops.common.db import Database
from cxops.common.errors import PROBLEM_RESPONSES, install_problem_handlers, problem_response
from cxops.common.events import Broker, ConsumerSpec, OutboxRelay
from cxops.common.events.broker import DEAD_LETTER_PREFIX, DEAD_LETTER_STREAM, stream_name
from cxops.common.events.consumer import Consumer
from cxops.common.events.dead_letters import list_dead_letters
from cxops.common.settings import ServiceSettings
from cxops.common.telemetry import (
    RequestContextMiddleware,
    configure_logging,
    configure_tracing,
    metrics_endpoint,
)

log = logging.getLogger("cxops.service")

Operator = Annotated[CallerContext, Depends(require_role(Role.OPS_LEAD))]


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    description: str
    migrations: Path
    routers: Sequence[APIRouter] = ()
    consumers: Sequence[ConsumerSpec] = ()
    version: str = "0.1.0"
    tags: Sequence[dict[str, Any]] = field(default_factory=list)


def create_service_app(spec: ServiceSpec, settings: ServiceSettings) -> FastAPI:
    configure_logging(spec.name, level=settings.log_level, as_json=settings.log_json)
    configure_tracing(spec.name, otlp_endpoint=settings.otlp_endpoint)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.database_url)
        await db.ensure_migrated(spec.migrations)
        broker = Broker.from_settings(settings, name=f"cxops-{spec.name}")
        relay = OutboxRelay(
            db=db,
            broker=broker,
            batch_size=settings.outbox_batch_size,
            poll_seconds=settings.outbox_poll_seconds,
        )
        app.state.db = db
        app.state.broker = broker
        app.state.relay = relay
        app.state.wake_outbox = relay.wake
        tasks = [asyncio.create_task(_start_events(spec, settings, db, broker, relay))]
        app.state.background = tasks
        log.info("%s service started", spec.name)
        try:
            yield
        finally:
            await cancel_and_wait(app.state.background, deadline_seconds=10)
            await broker.close()
            await db.dispose()

    app = FastAPI(
        title=f"cxops {spec.name}",
        description=spec.description,
        version=spec.version,
        lifespan=lifespan,
        openapi_tags=list(spec.tags) or None,
        responses=PROBLEM_RESPONSES,
        redirect_slashes=False,  # a redirect would name the host it was reached at
    )
    app.state.settings = settings
    app.state.service = spec.name
    install_problem_handlers(app)
    app.add_middleware(
        OpenTelemetryMiddleware,
        excluded_urls="healthz,readyz,metrics",
        exclude_spans=["receive", "send"],
    )
    app.add_middleware(RequestContextMiddleware)
    app.include_router(health_router())
    prefix = f"/v1/{spec.name}"
    for router in spec.routers:
        app.include_router(router, prefix=prefix)
    app.include_router(operations_router(spec.name), prefix=prefix)
    return app


async def _start_events(
    spec: ServiceSpec,
    settings: ServiceSettings,
    db: Database,
    broker: Broker,
    relay: OutboxRelay,
) -> None:
    """Connect (retrying), provision streams, then run the relay and the consumers."""
    await broker.connect()
    max_age = timedelta(days=settings.stream_max_age_days).total_seconds()
    while True:
        try:
            await broker.ensure_stream(
                stream_name(spec.name),
                [f"cx.{spec.name}.>"],
                max_age_seconds=max_age,
                replicas=settings.stream_replicas,
            )
            await broker.ensure_stream(
                DEAD_LETTER_STREAM,
                [f"{DEAD_LETTER_PREFIX}.>"],
                max_age_seconds=max_age,
                replicas=settings.stream_replicas,
            )
            break
        except Exception as exc:  # noqa: BLE001 - broker not ready yet (cluster forming, outage)
            log.warning("cannot provision streams yet (%s); retrying", exc)
            await asyncio.sleep(1.0)
    workers = [relay.run()] + [
        Consumer(
            consumer_spec,
            service=spec.name,
            db=db,
            broker=broker,
            max_deliver=settings.consumer_max_deliver,
            ack_wait_seconds=settings.consumer_ack_wait_seconds,
            batch_size=settings.consumer_batch_size,
            backoff_seconds=settings.retry_backoff_seconds,
        ).run()
        for consumer_spec in spec.consumers
    ]
    await asyncio.gather(*workers)


async def cancel_and_wait(tasks: Sequence[asyncio.Task[Any]], *, deadline_seconds: float) -> None:
    """Cancel ``tasks`` until they have ended, or give up after the deadline.

    Cancelling once is not enough on Python 3.11: ``asyncio.wait_for`` (which nats-py uses for
    every request) can swallow a cancellation that arrives with its reply, and a task that goes
    on would hang the shutdown forever.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_seconds
    for task in tasks:
        while not task.done() and loop.time() < deadline:
            task.cancel()
            await asyncio.wait({task}, timeout=0.1)
        if not task.done():
            log.error("background task %s ignored cancellation; shutting down anyway", task)
        elif not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task, exc_info=task.exception())


def health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @router.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        """The database answers and the broker is connected."""
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(request.app.state.db.ping(), timeout=2)
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            checks["database"] = f"unavailable: {exc}"
        broker = getattr(request.app.state, "broker", None)
        checks["broker"] = "ok" if broker is not None and broker.is_connected else "unavailable"
        if all(value == "ok" for value in checks.values()):
            return JSONResponse({"status": "ready", "checks": checks})
        not_ready: JSONResponse = problem_response(
            503, "not ready", slug="not-ready", checks=checks
        )
        return not_ready

    router.add_api_route("/metrics", metrics_endpoint, include_in_schema=False)
    return router


def operations_router(service: str) -> APIRouter:
    router = APIRouter(prefix="/ops", tags=["operations"])

    @router.get("/dead-letters", summary=f"Events {service} could not handle")
    async def dead_letters(
        request: Request,
        caller: Operator,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        """The tenant's events that this service dead-lettered, with the reason and attempts."""
        items = await list_dead_letters(
            request.app.state.broker, service=service, tenant=caller.tenant, limit=limit
        )
        return {"items": items, "count": len(items)}

    return router
