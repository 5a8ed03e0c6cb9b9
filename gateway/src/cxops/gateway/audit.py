"""The audit log: one record per mutation (POST, PUT, PATCH, DELETE) made with a valid key.

What is recorded: key id, tenant, method, path (without the query string, which may carry
personal data), final status, request id and the time the request arrived. Refusals after
authentication are recorded too (403, 413, 422, 429, 503...). Requests without a valid key (401)
are not: they have no tenant, so no admin could ever read them, and writing a row for each would
let anyone on the internet fill the database; they are counted in
``cxops_gateway_auth_rejections_total`` and logged instead.

When: after the response has been sent, in the request's own task, in a short transaction of its
own. The caller does not wait for it, yet each request still pays for its write (there is no
unbounded queue to lose on a crash or to grow under load). The record cannot be atomic with the
service's change anyway (another database), so writing it before answering would only add
latency. A failed write is logged and counted in ``cxops_gateway_audit_failures_total``.
"""

import logging
import uuid
from datetime import UTC, datetime

import anyio
import uuid6
from cxops.common.db import Database
from cxops.gateway.auth import STATE_KEY
from cxops.gateway.keys import VerifiedKey
from cxops.gateway.models import AuditEntry
from cxops.gateway.runtime import GatewayRuntime
from prometheus_client import Counter
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("cxops.gateway.audit")

MUTATIONS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_PATH = 2048
#: An audit write that takes longer than this is abandoned (and counted as failed).
WRITE_TIMEOUT_SECONDS = 10.0

AUDIT_FAILURES = Counter(
    "cxops_gateway_audit_failures_total", "Audit records that could not be written"
)

_audit_table = AuditEntry.__table__  # type: ignore[attr-defined]


async def write_audit_entry(
    db: Database,
    *,
    key_id: uuid.UUID | None,
    tenant: str | None,
    method: str,
    path: str,
    status: int,
    request_id: str | None,
    occurred_at: datetime,
) -> None:
    """One INSERT in its own transaction (Core, not the ORM: this runs on every mutation)."""
    async with db.engine.begin() as conn:
        await conn.execute(
            insert(_audit_table).values(
                id=uuid6.uuid7(),
                key_id=key_id,
                tenant=tenant,
                method=method,
                path=path[:MAX_PATH],
                status=status,
                request_id=request_id,
                occurred_at=occurred_at,
            )
        )


class AuditMiddleware:
    """Sits outside authentication so that it sees the final status of every mutation."""

    def __init__(self, app: ASGIApp, *, runtime: GatewayRuntime) -> None:
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
            state = scope.get("state", {})
            key: VerifiedKey | None = state.get(STATE_KEY)
            if key is not None:
                # A client that hangs up must not erase the trace of what it did.
                with anyio.CancelScope(shield=True):
                    await self._record(
                        key=key,
                        method=scope["method"],
                        path=scope["path"],
                        status=status if status is not None else 500,
                        request_id=state.get("request_id"),
                        occurred_at=occurred_at,
                    )

    async def _record(
        self,
        *,
        key: VerifiedKey,
        method: str,
        path: str,
        status: int,
        request_id: str | None,
        occurred_at: datetime,
    ) -> None:
        try:
            with anyio.fail_after(WRITE_TIMEOUT_SECONDS):
                await write_audit_entry(
                    self.runtime.db,
                    key_id=key.id,
                    tenant=key.tenant,
                    method=method,
                    path=path,
                    status=status,
                    request_id=request_id,
                    occurred_at=occurred_at,
                )
        except Exception:
            AUDIT_FAILURES.inc()
            log.exception(
                "audit record lost: key=%s tenant=%s %s %s -> %s request_id=%s",
                key.id,
                key.tenant,
                method,
                path,
                status,
                request_id,
            )


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
    query = select(AuditEntry).where(columns.tenant == tenant)
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
