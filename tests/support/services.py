"""Running a service in-process against real servers, the way the service tests need it.

The feedback, scorecard and journey tests share it: an app started through its real lifespan
(database check, broker, outbox relay, consumers) behind an ``httpx`` client, internal tokens as
the gateway would mint them, and polling for what happens in the background.
"""

import asyncio
import dataclasses
import io
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import nats.errors
import sqlalchemy as sa
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from pydantic import BaseModel

from cxops.common.auth import INTERNAL_TOKEN_HEADER, CallerContext, Role, mint_internal_token
from cxops.common.db import Database, create_engine
from cxops.common.events import Event
from cxops.common.events.broker import stream_name
from cxops.common.service import ServiceState
from cxops.common.settings import ServiceSettings

SIGNING_SECRET = "cxops-test-signing-secret-0123456789abcdef"

SettingsT = TypeVar("SettingsT", bound=ServiceSettings)
T = TypeVar("T")


def settings_for(
    settings_class: type[SettingsT], *, database_url: str, nats_url: str, **overrides: Any
) -> SettingsT:
    """Settings for a test: fast polling and retries, so background work shows up at once."""
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        "nats_url": nats_url,
        "signing_secret": SIGNING_SECRET,
        "log_json": False,
        "log_level": "WARNING",
        "outbox_poll_seconds": 0.05,
        "retry_backoff_seconds": (0.05, 0.1),
    }
    values.update(overrides)
    return settings_class(**values)


def auth(
    tenant: str,
    role: Role = Role.ADMIN,
    *,
    subject: str = "test-key",
    agent_id: str | None = None,
) -> dict[str, str]:
    """The header the gateway adds for a caller of ``tenant`` with ``role`` (and, for a key
    bound to a routing agent, ``agent_id``)."""
    token = mint_internal_token(
        CallerContext(tenant=tenant, role=role, subject=subject, agent_id=agent_id),
        secret=SIGNING_SECRET,
        # Tests keep headers made at import: they must outlive a whole run, not the minute
        # the gateway gives them.
        ttl_seconds=3600,
    )
    return {INTERNAL_TOKEN_HEADER: token}


@dataclass
class RunningService:
    app: FastAPI
    client: httpx.AsyncClient

    @property
    def db(self) -> Database:
        return self.state.db

    @property
    def state(self) -> ServiceState:
        state: ServiceState = self.app.state.cxops
        return state

    async def scalar(self, sql: str, **params: Any) -> Any:
        """One value from the service's own database, read outside any request."""
        async with self.db.sessionmaker() as session:
            return await session.scalar(sa.text(sql), params)

    async def count(self, table: str) -> int:
        return int(await self.scalar(f"SELECT count(*) FROM {table}"))

    async def outbox_drained(self) -> None:
        """Wait until the relay has published every event the service queued."""
        await eventually(lambda: self._no_pending_events(), what="the outbox to drain")

    async def _no_pending_events(self) -> bool:
        return await self.scalar("SELECT count(*) FROM cx_outbox WHERE sent_at IS NULL") == 0


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[RunningService]:
    """``app`` started through its lifespan, with a client that calls it in-process."""
    async with (
        LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app),
            base_url=f"http://{app.state.cxops.name}.test",
        ) as client,
    ):
        try:
            yield RunningService(app=app, client=client)
        finally:
            await _stop_background_work(app)


async def _stop_background_work(app: FastAPI) -> None:
    """Cancel the service's background task until it is really done, before the lifespan's own
    shutdown awaits it.

    On Python 3.11 ``asyncio.wait_for`` (which nats-py uses for every request) can swallow a
    cancellation that arrives just as the awaited reply does; the lifespan cancels its tasks once
    and then awaits them without a deadline, so a test that ends while the service is still
    provisioning its streams could hang at shutdown. Cancelling again until the task ends makes
    teardown deterministic.
    """
    deadline = time.monotonic() + 10
    for task in app.state.cxops.background:
        while not task.done():
            if time.monotonic() > deadline:
                stacks = io.StringIO()
                for other in asyncio.all_tasks():
                    other.print_stack(file=stacks)
                raise AssertionError(f"{task!r} ignores cancellation; tasks:\n{stacks.getvalue()}")
            task.cancel()
            await asyncio.wait({task}, timeout=0.1)


async def eventually(
    check: Callable[[], Awaitable[T]],
    *,
    what: str,
    within: float = 10.0,
    interval: float = 0.02,
) -> T:
    """Poll ``check`` until it returns something truthy, and return that; a falsy result or an
    exception means "not yet", and after ``within`` seconds the test fails saying ``what``."""
    deadline = time.monotonic() + within
    last: BaseException | None = None
    while True:
        try:
            result = await check()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - any failure means "not yet"; kept as the cause
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}") from last
        await asyncio.sleep(interval)


async def table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names())
    finally:
        await engine.dispose()
    return set(names)


async def publish_event(
    nats_client: NatsClient,
    subject: str,
    data: dict[str, Any],
    *,
    tenant: str,
    event_id: str | None = None,
    msg_id: str | None = None,
) -> int:
    """Publish a CloudEvent as a service's outbox relay would; returns its stream sequence."""
    event = Event.new(subject=subject, source="/tests", tenant=tenant, data=data)
    if event_id is not None:
        event = dataclasses.replace(event, id=event_id)
    headers = event.headers()
    if msg_id is not None:
        headers["Nats-Msg-Id"] = msg_id
    ack = await nats_client.jetstream().publish(event.subject, event.body(), headers=headers)
    assert not ack.duplicate
    return int(ack.seq)


@dataclass(frozen=True)
class StreamEvent:
    """An event as read back from a service's stream."""

    subject: str
    tenant: str
    data: dict[str, Any]


async def published(
    service: RunningService,
    nats_client: NatsClient,
    subject: str,
    *,
    models: Mapping[str, type[BaseModel]],
) -> list[StreamEvent]:
    """Every event matching ``subject`` the service has published so far (its outbox drained
    first), in the order of its stream, each payload checked by its subject's model in
    ``models`` (the service's ``PUBLISHED``)."""
    await service.outbox_drained()
    stream = stream_name(service.state.name)
    js = nats_client.jetstream()
    await eventually(lambda: js.stream_info(stream), what=f"the {stream} stream")
    subscription = await js.pull_subscribe(subject, stream=stream)
    found: list[Msg] = []
    try:
        while True:
            try:
                found += await subscription.fetch(100, timeout=0.5)
            except (TimeoutError, nats.errors.TimeoutError):  # the client raises either
                break
    finally:
        await subscription.unsubscribe()
    events = []
    for message in found:
        models[message.subject].model_validate_json(message.data)
        assert message.headers is not None, f"{message.subject} without its CloudEvent headers"
        events.append(
            StreamEvent(message.subject, message.headers["ce-tenant"], json.loads(message.data))
        )
    return events


async def consumer_caught_up(
    nats_client: NatsClient, stream: str, durable: str, last_sequence: int
) -> None:
    """Wait until the durable consumer has settled every message up to ``last_sequence``."""

    async def check() -> bool:
        info = await nats_client.jetstream().consumer_info(stream, durable)
        assert info.ack_floor is not None
        return info.ack_floor.stream_seq >= last_sequence and info.num_ack_pending == 0

    await eventually(check, what=f"{durable} to settle message {last_sequence}")
