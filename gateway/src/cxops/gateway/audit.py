"""The audit log: one record per mutation (POST, PUT, PATCH, DELETE) made with a valid key.

What is recorded: key id, tenant, method, path (without the query string, which may carry
personal data), final status, request id and the time the request arrived. Refusals after
authentication are recorded too (403, 413, 422, 429, 503...). Requests without a valid key (401)
are not: they have no tenant, so no admin could ever read them, and writing a row for each would
let anyone on the internet fill the database; they are counted in
``cxops_gateway_auth_rejections_total`` and logged instead.

When: once the response is complete the record is queued, and one writer task commits what is
queued, all of it, in one transaction ("group commit"). Idle, that is one short transaction per
mutation, as soon as it happens; busy, a batch per transaction instead of a transaction per
request (measured on SQLite: ~1 ms of the gateway's time per mutation with a transaction each,
a few dozen µs batched). The record cannot be atomic with the service's change anyway (another
database), so holding the response for it would only add latency.

Bounds: the queue holds at most ``max_pending`` records; when full, a request waits up to
``ENQUEUE_TIMEOUT_SECONDS`` for room (backpressure, not growth). A normal shutdown writes
everything queued first; a crash loses what was queued, which is milliseconds of records.

A bad row never costs another row. Text is stored safely: control characters in the path and
the request id are percent-encoded here (the outermost middleware already refuses a path with
them, this is the defence behind it; PostgreSQL refuses NUL in text outright). When a batch
fails anyway, the writer asks whether the database answers: if not (an outage), it waits and
retries with backoff; if it does, the database refused something in this batch, so the batch is
split in halves and each written on its own, down to the single rows it refuses. Nothing is lost
silently: a record refused alone, still failing after the retries, left when the queue stayed
full or when a shutdown timed out, is logged in full with its request id (so it can be recovered
from the logs) and counted in ``cxops_gateway_audit_failures_total``.
"""

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import anyio
import uuid6
from prometheus_client import Counter
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cxops.common.db import Database
from cxops.common.telemetry import CONTROL_CHARACTERS
from cxops.common.tenancy import TenantRepository
from cxops.gateway.auth import STATE_KEY
from cxops.gateway.keys import VerifiedKey
from cxops.gateway.models import AuditEntry

if TYPE_CHECKING:
    from cxops.gateway.state import GatewayState

log = logging.getLogger("cxops.gateway.audit")

MUTATIONS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_PATH = 2048
MAX_REQUEST_ID = 200
ENQUEUE_TIMEOUT_SECONDS = 5.0
PING_TIMEOUT_SECONDS = 5.0

AUDIT_FAILURES = Counter(
    "cxops_gateway_audit_failures_total", "Audit records that could not be written"
)
AUDIT_BATCH = Counter("cxops_gateway_audit_batches_total", "Audit transactions committed")

_audit_table = AuditEntry.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One row of ``audit_log``; the id (UUIDv7) is drawn when the request completes."""

    id: uuid.UUID
    key_id: uuid.UUID | None
    tenant: str | None
    method: str
    path: str
    status: int
    request_id: str | None
    occurred_at: datetime


def escape_control_characters(text: str) -> str:
    """``text`` with each control character percent-encoded as its UTF-8 bytes (NUL → ``%00``)."""
    return CONTROL_CHARACTERS.sub(lambda match: quote(match.group(), safe=""), text)


def _row(event: AuditEvent) -> dict[str, Any]:
    """The ``audit_log`` row of ``event``, its text made safe to store and cut to its column."""
    row = asdict(event)
    row["path"] = escape_control_characters(event.path)[:MAX_PATH]
    if event.request_id is not None:
        row["request_id"] = escape_control_characters(event.request_id)[:MAX_REQUEST_ID]
    return row


class AuditWriter:
    """The queue and the one task that writes it to the database, a batch per transaction."""

    def __init__(
        self,
        db: Database,
        *,
        max_batch: int = 500,
        max_pending: int = 10_000,
        retry_delays: Sequence[float] = (0.2, 1.0, 3.0),
    ) -> None:
        self.db = db
        self.max_batch = max_batch
        self.retry_delays = tuple(retry_delays)
        self._pending: asyncio.Queue[AuditEvent] = asyncio.Queue(max_pending)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="cxops-gateway-audit-writer")

    async def record(self, event: AuditEvent) -> None:
        """Queue ``event``; waits (bounded) only when the queue is full."""
        try:
            self._pending.put_nowait(event)
            return
        except asyncio.QueueFull:
            pass
        try:
            with anyio.fail_after(ENQUEUE_TIMEOUT_SECONDS):
                await self._pending.put(event)
        except TimeoutError:
            self._lost([event], "the audit queue stayed full")

    async def flush(self) -> None:
        """Return once everything queued so far is written (or given up on)."""
        await self._pending.join()

    async def close(self, *, timeout: float = 10.0) -> None:
        """Write what is queued (within ``timeout``), then stop."""
        if self._task is not None and not self._task.done():
            with anyio.move_on_after(timeout):
                await self._pending.join()
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        left: list[AuditEvent] = []
        while not self._pending.empty():
            left.append(self._pending.get_nowait())
        if left:
            self._lost(left, "the gateway stopped before they were written")

    async def _run(self) -> None:
        while True:
            batch = [await self._pending.get()]
            while len(batch) < self.max_batch and not self._pending.empty():
                batch.append(self._pending.get_nowait())
            try:
                await self._write(batch)
            finally:
                for _ in batch:
                    self._pending.task_done()

    async def _write(self, batch: list[AuditEvent]) -> None:
        """Write ``batch``, isolating the rows the database refuses (see the module's doc)."""
        delays = iter(self.retry_delays)
        chunks = [batch]
        while chunks:
            chunk = chunks.pop()
            error = await self._insert(chunk)
            if error is None:
                continue
            if not await self._database_answers():
                delay = next(delays, None)
                if delay is None:
                    self._lost([event for part in (chunk, *chunks) for event in part], error)
                    return
                log.warning("audit database unavailable (%s); retrying in %gs", error, delay)
                await asyncio.sleep(delay)
                chunks.append(chunk)
            elif len(chunk) == 1:
                self._lost(chunk, f"the database refused it: {error}")
            else:
                half = len(chunk) // 2
                chunks += [chunk[half:], chunk[:half]]  # the first half is written first

    async def _insert(self, chunk: list[AuditEvent]) -> str | None:
        """One transaction for ``chunk``; the error when it failed, None when it was written."""
        try:
            async with self.db.engine.begin() as conn:
                await conn.execute(insert(_audit_table), [_row(event) for event in chunk])
        except Exception as exc:  # noqa: BLE001 - the caller isolates, retries or reports it
            return repr(exc)
        AUDIT_BATCH.inc()
        return None

    async def _database_answers(self) -> bool:
        try:
            with anyio.fail_after(PING_TIMEOUT_SECONDS):
                await self.db.ping()
        except Exception:  # noqa: BLE001 - any failure means it does not answer
            return False
        return True

    @staticmethod
    def _lost(events: list[AuditEvent], reason: str) -> None:
        AUDIT_FAILURES.inc(len(events))
        for event in events:
            log.error(
                "audit record lost (%s): id=%s key=%s tenant=%s %s %s -> %s request_id=%s at %s",
                reason,
                event.id,
                event.key_id,
                event.tenant,
                event.method,
                event.path,
                event.status,
                event.request_id,
                event.occurred_at.isoformat(),
            )


class AuditMiddleware:
    """Sits outside authentication so that it sees the final status of every mutation."""

    def __init__(self, app: ASGIApp, *, runtime: "GatewayState") -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in MUTATIONS:
            await self.app(scope, receive, send)
            return
        occurred_at = datetime.now(UTC)
        status: int | None = None

        async def capture_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture_status)
        finally:
            key: VerifiedKey | None = scope.get("state", {}).get(STATE_KEY)
            if key is not None:
                event = AuditEvent(
                    id=uuid6.uuid7(),
                    key_id=key.id,
                    tenant=key.tenant,
                    method=scope["method"],
                    path=scope["path"],
                    status=status if status is not None else 500,
                    request_id=scope.get("state", {}).get("request_id"),
                    occurred_at=occurred_at,
                )
                # A client that hangs up must not erase the trace of what it did.
                with anyio.CancelScope(shield=True):
                    await self.runtime.audit.record(event)


async def query_audit(
    session: AsyncSession,
    *,
    tenant: str,
    since: datetime | None = None,
    until: datetime | None = None,
    method: str | None = None,
    status: int | None = None,
    key_id: uuid.UUID | None = None,
    cursor: uuid.UUID | None = None,
    limit: int = 100,
) -> tuple[list[AuditEntry], uuid.UUID | None]:
    """A tenant's records, newest first, and the cursor for the next page (None at the end).

    The cursor is the id of the last record returned: ids are UUIDv7, ordered by time, so a
    page never repeats or skips a record that existed when the first page was read.
    """
    columns = _audit_table.c
    query = TenantRepository(session, tenant=tenant).select(AuditEntry)
    if since is not None:
        query = query.where(columns.occurred_at >= since)
    if until is not None:
        query = query.where(columns.occurred_at < until)
    if method is not None:
        query = query.where(columns.method == method)
    if status is not None:
        query = query.where(columns.status == status)
    if key_id is not None:
        query = query.where(columns.key_id == key_id)
    if cursor is not None:
        query = query.where(columns.id < cursor)
    query = query.order_by(columns.id.desc()).limit(limit + 1)
    rows = list((await session.scalars(query)).all())
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1].id
    return rows, None
