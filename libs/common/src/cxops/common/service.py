"""What makes a cxops service a service: one ``create_service_app`` that wires settings, the
database, the broker, the outbox relay, the consumers, health, metrics, errors and auth.

A service module declares a :class:`ServiceSpec` (its routers, consumers and migrations); all the
plumbing is here, so the four services behave alike.
"""

import asyncio
import gc
import logging
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Protocol, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse

from cxops.common.auth import CallerContext, InternalTokenVerifier, Role, require_role
from cxops.common.db import Database
from cxops.common.errors import PROBLEM_RESPONSES, install_problem_handlers, problem_response
from cxops.common.events import Broker, ConsumerSpec, OutboxRelay
from cxops.common.events.broker import (
    DEAD_LETTER_PREFIX,
    DEAD_LETTER_STREAM,
    WorkQueue,
    stream_name,
)
from cxops.common.events.consumer import Consumer
from cxops.common.events.dead_letters import list_dead_letters
from cxops.common.events.group_commit import GroupCommit
from cxops.common.settings import ServiceSettings
from cxops.common.telemetry import (
    RequestContextMiddleware,
    add_tracing,
    configure_logging,
    configure_tracing,
    metrics_endpoint,
)
from cxops.common.tenancy import install_tenant_guard

C = TypeVar("C")

log = logging.getLogger("cxops.service")

Operator = Annotated[CallerContext, Depends(require_role(Role.OPS_LEAD))]


class Component(Protocol):
    """A long-lived part of a service beyond the kit (routing's live engines, say): made from
    the started state, started after the database and the broker are attached, stopped before
    they go. Endpoints reach it with ``state.component(Kind)``."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    description: str
    migrations: Path
    routers: Sequence[APIRouter] = ()
    consumers: Sequence[ConsumerSpec] = ()
    #: Factories of the service's components, each called with the started ServiceState.
    components: Sequence[Callable[["ServiceState"], Component]] = ()
    #: The key-value buckets the service keeps leases in (``cxops.common.events.lease``), each
    #: named ``cxops_<service>_<use>``: its NATS user may use these and no other.
    lease_buckets: Sequence[str] = ()
    #: The work-queue streams the service provisions and takes work from (its components do):
    #: its NATS user may use these and no other.
    work_queues: Sequence[WorkQueue] = ()
    version: str = "0.1.0"
    tags: Sequence[dict[str, Any]] = field(default_factory=list)


@dataclass
class ServiceState:
    """What one service process holds while it runs: ``app.state.cxops``.

    The settings and the token verifier exist from ``create_service_app`` on; the database, the
    broker, the outbox relay and the background work are attached by the lifespan and detached
    when it ends, so a request can never reach a half-started service's database.
    """

    spec: ServiceSpec
    settings: ServiceSettings
    tokens: InternalTokenVerifier
    background: list[asyncio.Task[Any]] = field(default_factory=list)
    #: The service's streams exist: what it publishes has somewhere to go.
    streams_provisioned: bool = False
    _db: Database | None = None
    _broker: Broker | None = None
    _relay: OutboxRelay | None = None
    _group_commit: GroupCommit | None = None
    _components: dict[type, Component] = field(default_factory=dict)

    def attach(self, *, db: Database, broker: Broker, relay: OutboxRelay) -> None:
        self._db, self._broker, self._relay = db, broker, relay
        self._group_commit = GroupCommit(db)

    def detach(self) -> None:
        self._db = self._broker = self._relay = self._group_commit = None
        self._components = {}
        self.background = []
        self.streams_provisioned = False

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def db(self) -> Database:
        if self._db is None:
            raise RuntimeError(f"the {self.spec.name} service is not started: no database")
        return self._db

    @property
    def broker(self) -> Broker:
        if self._broker is None:
            raise RuntimeError(f"the {self.spec.name} service is not started: no broker")
        return self._broker

    @property
    def relay(self) -> OutboxRelay:
        if self._relay is None:
            raise RuntimeError(f"the {self.spec.name} service is not started: no outbox relay")
        return self._relay

    @property
    def group_commit(self) -> GroupCommit:
        if self._group_commit is None:
            raise RuntimeError(f"the {self.spec.name} service is not started: no group commit")
        return self._group_commit

    def add_component(self, component: Component) -> None:
        self._components[type(component)] = component

    async def stop_components(self) -> None:
        """Stop the components, the last started first."""
        for component in reversed(list(self._components.values())):
            await component.stop()

    def component(self, kind: type[C]) -> C:
        """The running component of type ``kind``."""
        found = self._components.get(kind)
        if not isinstance(found, kind):
            raise RuntimeError(f"the {self.spec.name} service has no running {kind.__name__}")
        return found

    @property
    def started(self) -> bool:
        return self._db is not None


async def service_state(request: Request) -> ServiceState:
    """FastAPI dependency: the running service's state."""
    state: ServiceState = request.app.state.cxops
    return state


State = Annotated[ServiceState, Depends(service_state)]


def create_service_app(spec: ServiceSpec, settings: ServiceSettings) -> FastAPI:
    configure_logging(spec.name, level=settings.log_level, as_json=settings.log_json)
    configure_tracing(spec.name, otlp_endpoint=settings.otlp_endpoint)
    state = ServiceState(
        spec=spec, settings=settings, tokens=InternalTokenVerifier(settings.signing_secret)
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.database_url)
        install_tenant_guard(db)
        try:
            await db.ensure_migrated(spec.migrations)
        except BaseException:
            await db.dispose()
            raise
        broker = Broker.from_settings(settings, name=f"cxops-{spec.name}")
        relay = OutboxRelay(
            db=db,
            broker=broker,
            batch_size=settings.outbox_batch_size,
            poll_seconds=settings.outbox_poll_seconds,
        )
        state.attach(db=db, broker=broker, relay=relay)
        state.background.append(asyncio.create_task(_start_events(state)))
        for factory in spec.components:
            component = factory(state)
            await component.start()
            state.add_component(component)
        log.info("%s service started", spec.name)
        settle_runtime()
        try:
            yield
        finally:
            await state.stop_components()
            await state.group_commit.close()  # after the last request: what it wrote commits
            await cancel_and_wait(state.background, deadline_seconds=10)
            await broker.close()
            await db.dispose()
            state.detach()

    app = FastAPI(
        title=f"cxops {spec.name}",
        description=spec.description,
        version=spec.version,
        lifespan=lifespan,
        openapi_tags=list(spec.tags) or None,
        responses=PROBLEM_RESPONSES,
        # Traces come from add_tracing below; FastAPI's own telemetry would only re-check that
        # on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        redirect_slashes=False,  # a redirect would name the host it was reached at
    )
    app.state.cxops = state
    install_problem_handlers(app)
    add_tracing(app, otlp_endpoint=settings.otlp_endpoint)
    app.add_middleware(RequestContextMiddleware)
    app.include_router(health_router())
    prefix = f"/v1/{spec.name}"
    for router in spec.routers:
        app.include_router(router, prefix=prefix)
    app.include_router(operations_router(spec.name), prefix=prefix)
    return app


async def _start_events(state: ServiceState) -> None:
    """Connect (retrying), provision streams, then run the relay and the consumers."""
    spec, settings, broker = state.spec, state.settings, state.broker
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
            state.streams_provisioned = True
            break
        except Exception as exc:  # noqa: BLE001 - broker not ready yet (cluster forming, outage)
            log.warning("cannot provision streams yet (%s); retrying", exc)
            await asyncio.sleep(1.0)
    workers = [state.relay.run()] + [
        Consumer(
            consumer_spec.bound(state),
            service=spec.name,
            db=state.db,
            broker=broker,
            max_deliver=settings.consumer_max_deliver,
            ack_wait_seconds=settings.consumer_ack_wait_seconds,
            batch_size=settings.consumer_batch_size,
            backoff_seconds=settings.retry_backoff_seconds,
        ).run()
        for consumer_spec in spec.consumers
    ]
    await asyncio.gather(*workers)


#: How long a thread may hold the GIL while another waits for it. The default (5 ms) is what a
#: request waits whenever a database worker thread is busy; at 1 ms the p99 intake latency
#: at 70% of the maximum rate fell from 128 ms to 24 ms (bench/intake.py).
GIL_SWITCH_SECONDS = 0.001


def settle_runtime() -> None:
    """Tune the interpreter for serving, once everything started has been loaded.

    Freezing moves the objects made at start-up (modules, routes, models) out of the garbage
    collector's sight, so that its full collections, which stop every request in flight, walk
    only what requests create.
    """
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(GIL_SWITCH_SECONDS)


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
    async def readyz(state: State) -> JSONResponse:
        """The database answers, the broker is connected and the service's streams exist."""
        checks: dict[str, str] = {}
        if not state.started:
            return problem_response(503, "not ready", slug="not-ready", checks={})
        try:
            await asyncio.wait_for(state.db.ping(), timeout=2)
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            checks["database"] = f"unavailable: {exc}"
        if not state.broker.is_connected:
            checks["broker"] = "unavailable"
        else:
            checks["broker"] = "ok" if state.streams_provisioned else "provisioning streams"
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
        state: State,
        caller: Operator,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        """The tenant's events that this service dead-lettered, with the reason and attempts."""
        items = await list_dead_letters(
            state.broker, service=service, tenant=caller.tenant, limit=limit
        )
        return {"items": items, "count": len(items)}

    return router
