"""The gateway: the one door to the suite.

Every request passes, outermost first: request id and metrics → tracing → audit (mutations) →
API key and rate limit → body size limit → the routes (the gateway's own, or the proxy to
``/v1/<service>/...``). In the background it reads every service's stream from NATS for
webhooks, and delivers them. See ``gateway/README.md`` for the decisions and their bounds.
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI

from cxops.common.components import GATEWAY
from cxops.common.db import Database
from cxops.common.errors import install_problem_handlers
from cxops.common.events import Broker
from cxops.common.events.broker import client_name
from cxops.common.events.consumer import Consumer
from cxops.common.service import cancel_and_wait, settle_runtime
from cxops.common.telemetry import (
    RequestContextMiddleware,
    add_tracing,
    configure_logging,
    configure_tracing,
)
from cxops.common.tenancy import install_tenant_guard
from cxops.gateway.api import audit, docs, events, health, keys, webhooks
from cxops.gateway.audit import AuditMiddleware, AuditWriter
from cxops.gateway.auth import ApiKeyMiddleware
from cxops.gateway.bodylimit import BodyLimitMiddleware
from cxops.gateway.proxy import METHODS, PROXY_PATHS, forward, proxy_session
from cxops.gateway.settings import EVENT_LOG_PATH, IMPORT_PATH, GatewaySettings
from cxops.gateway.state import GatewayState
from cxops.gateway.webhooks.consumers import CONSUMER_OWNER, webhook_consumers
from cxops.gateway.webhooks.delivery import DeliveryWorker, webhook_client

#: The gateway's Alembic script directory (``cxops migrate`` runs it; serving never does).
MIGRATIONS = Path(__file__).parent / "migrations"

log = logging.getLogger("cxops.gateway")


def documents_client(settings: GatewaySettings) -> httpx.AsyncClient:
    """The client that fetches the services' OpenAPI documents (the proxy hop has its own,
    :func:`cxops.gateway.proxy.proxy_session`). ``trust_env=False``: a proxy variable in the
    environment must not reroute service traffic."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(
            settings.openapi_fetch_timeout_seconds,
            connect=settings.upstream_connect_timeout_seconds,
        ),
        follow_redirects=False,
        trust_env=False,
    )


async def consume_events(
    settings: GatewaySettings, db: Database, broker: Broker, webhooks: DeliveryWorker
) -> None:
    """Connect to NATS (retrying: the gateway serves meanwhile), then run the consumers that turn
    every service's events into webhook deliveries. A stream that does not exist yet is waited
    for; the gateway never creates or publishes into a service's stream."""
    await broker.connect()
    consumers = [
        Consumer(
            spec,
            service=CONSUMER_OWNER,
            db=db,
            broker=broker,
            ack_wait_seconds=settings.webhook_consumer_ack_wait_seconds,
        ).run()
        for spec in webhook_consumers(on_new_deliveries=webhooks.wake)
    ]
    await asyncio.gather(*consumers)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    """The ASGI app; a uvicorn factory (``cxops.gateway.app:create_app --factory``) that reads
    ``CXOPS_GATEWAY_*`` from the environment when no settings are given."""
    settings = settings or GatewaySettings()
    configure_logging("gateway", level=settings.log_level, as_json=settings.log_json)
    configure_tracing("gateway", otlp_endpoint=settings.otlp_endpoint)
    runtime = GatewayState.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.database_url)
        install_tenant_guard(db)
        try:
            await db.ensure_migrated(MIGRATIONS)
        except BaseException:
            await db.dispose()
            raise
        http = documents_client(settings)
        proxy = proxy_session(settings)
        audit = AuditWriter(db)
        audit.start()
        broker = Broker.from_settings(settings, name=client_name(GATEWAY))
        webhook_http = webhook_client(timeout=settings.webhook_timeout_seconds)
        worker = DeliveryWorker(
            db=db,
            settings=settings,
            sealer=runtime.sealer,
            http=webhook_http,
        )
        runtime.attach(db=db, http=http, proxy=proxy, audit=audit)
        runtime.attach_events(broker=broker, webhooks=worker)
        background = [
            asyncio.create_task(worker.run()),
            asyncio.create_task(consume_events(settings, db, broker, worker)),
        ]
        log.info("gateway started; services: %s", settings.service_urls)
        settle_runtime()
        try:
            yield
        finally:
            await cancel_and_wait(background, deadline_seconds=10)
            await broker.close()
            await webhook_http.aclose()
            await audit.close()  # after the last request: everything queued gets written
            await runtime.suite_openapi.close()
            runtime.detach()
            await proxy.close()
            await http.aclose()
            await db.dispose()

    app = FastAPI(
        title="cxops gateway",
        description="API keys, audit, and the door to every cxops service.",
        version="0.1.0",
        lifespan=lifespan,
        openapi_url=None,  # served by api.docs: the whole suite, not just the gateway
        docs_url=None,
        redoc_url=None,
        # /v1/keys/ is a 404, not a redirect to a location built from the client's Host header.
        redirect_slashes=False,
        # Traces come from add_tracing below; FastAPI's own telemetry would only re-check that
        # on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.cxops = runtime
    install_problem_handlers(app)

    # The proxy first: it is most of the traffic, and no gateway path starts with a service.
    for path in PROXY_PATHS:
        app.add_route(path, forward, methods=METHODS, include_in_schema=False)
    for router in (
        health.router,
        docs.router,
        keys.router,
        audit.router,
        webhooks.router,
        events.router,
    ):
        app.include_router(router)

    # add_middleware wraps what is there: the last added runs first.
    app.add_middleware(
        BodyLimitMiddleware,
        max_body_bytes=settings.max_body_bytes,
        larger_limits={
            IMPORT_PATH: settings.import_max_body_bytes,
            EVENT_LOG_PATH: settings.event_log_max_body_bytes,
        },
    )
    app.add_middleware(ApiKeyMiddleware, runtime=runtime)
    app.add_middleware(AuditMiddleware, runtime=runtime)
    add_tracing(app, otlp_endpoint=settings.otlp_endpoint)
    app.add_middleware(RequestContextMiddleware)
    return app
