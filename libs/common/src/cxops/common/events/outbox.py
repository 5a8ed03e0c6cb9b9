"""The transactional outbox: events are rows written in the same transaction as the change they
announce, and a relay publishes them to JetStream and marks them sent.

A broker outage only delays events: unsent rows stay until a publish is acknowledged. A relay that
dies after publishing but before marking re-publishes on restart; ``Nats-Msg-Id`` lets JetStream
drop that duplicate, and consumers' inboxes catch any that slip past the duplicate window.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncSession

from cxops.common.db import CommitInfo, Database
from cxops.common.events.broker import Broker
from cxops.common.events.envelope import Event
from cxops.common.events.tables import outbox

log = logging.getLogger("cxops.events.outbox")

EVENTS_PUBLISHED = Counter("cxops_events_published_total", "Outbox events published", ["subject"])
OUTBOX_PENDING = Gauge("cxops_outbox_pending", "Outbox events waiting to be published")


#: Set in ``session.info`` when a transaction queued events, so its commit wakes the relay.
_EVENTS_QUEUED = "cxops_events_queued"


def outbox_row(event: Event) -> dict[str, Any]:
    """The ``cx_outbox`` row that carries ``event``."""
    return {
        "event_id": event.id,
        "tenant": event.tenant,
        "subject": event.subject,
        "headers": event.headers(),
        "body": event.body(),
        "created_at": event.time,
    }


async def add_event(session: AsyncSession, event: Event) -> None:
    """Queue ``event`` in the caller's transaction; it is published only if that commits."""
    await add_events(session, [outbox_row(event)])


async def add_events(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Queue several events (their :func:`outbox_row`) with one statement."""
    if rows:
        await session.execute(sa.insert(outbox), rows)
        session.info[_EVENTS_QUEUED] = True


def queue_events(connection: sa.Connection, info: CommitInfo, rows: list[dict[str, Any]]) -> None:
    """:func:`add_events` for the synchronous work of :meth:`Database.run_transaction`."""
    if rows:
        connection.execute(sa.insert(outbox), rows)
        info[_EVENTS_QUEUED] = True


class OutboxRelay:
    def __init__(
        self,
        *,
        db: Database,
        broker: Broker,
        batch_size: int = 200,
        poll_seconds: float = 0.5,
        publish_timeout: float = 5.0,
        retention: timedelta = timedelta(days=7),
    ) -> None:
        self.db = db
        self.broker = broker
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.publish_timeout = publish_timeout
        self.retention = retention
        self._wake = asyncio.Event()
        db.on_commit(self._after_commit)

    def _after_commit(self, info: CommitInfo) -> None:
        if info.pop(_EVENTS_QUEUED, False):
            self.wake()

    def wake(self) -> None:
        """Publish now rather than at the next poll (called after a commit that added events)."""
        self._wake.set()

    async def run(self) -> None:
        await self.broker.wait_connected()
        failures = 0
        last_purge = datetime.now(UTC)
        while True:
            try:
                published = await self.relay_once()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - an outage: keep the rows, back off, retry
                failures += 1
                delay = min(0.25 * 2**failures, 5.0)
                log.warning("outbox relay could not publish (%s); retrying in %.2fs", exc, delay)
                await asyncio.sleep(delay)
                continue
            if published >= self.batch_size:
                continue  # more are waiting
            if datetime.now(UTC) - last_purge > timedelta(hours=1):
                await self.purge_sent()
                last_purge = datetime.now(UTC)
            try:
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()

    async def relay_once(self) -> int:
        """Publish one batch of pending events in order; return how many were published.

        The rows are read and marked in two short transactions, never held open while
        publishing, so a slow broker never blocks the writes of requests.
        """
        if not self.broker.is_connected:
            raise ConnectionError("not connected to NATS")
        pending = (
            sa.select(outbox.c.seq, outbox.c.subject, outbox.c.headers, outbox.c.body)
            .where(outbox.c.sent_at.is_(None))
            .order_by(outbox.c.seq)
            .limit(self.batch_size)
        )
        rows = await self.db.run_transaction(
            lambda connection, _info: connection.execute(pending).all()
        )
        if not rows:
            OUTBOX_PENDING.set(0)
            return 0
        js = self.broker.js
        results = await asyncio.gather(
            *(
                js.publish(row.subject, row.body, headers=row.headers, timeout=self.publish_timeout)
                for row in rows
            ),
            return_exceptions=True,
        )
        sent = [row for row, result in zip(rows, results, strict=True) if _ok(result)]
        failed = [row.seq for row, result in zip(rows, results, strict=True) if not _ok(result)]
        errors = [result for result in results if not _ok(result)]

        def record(connection: sa.Connection, _info: CommitInfo) -> None:
            if sent:
                connection.execute(
                    sa.update(outbox)
                    .where(outbox.c.seq.in_([row.seq for row in sent]))
                    .values(sent_at=datetime.now(UTC))
                )
            if failed:
                connection.execute(
                    sa.update(outbox)
                    .where(outbox.c.seq.in_(failed))
                    .values(attempts=outbox.c.attempts + 1, last_error=str(errors[0])[:500])
                )

        await self.db.run_transaction(record)
        for row in sent:
            EVENTS_PUBLISHED.labels(row.subject).inc()
        OUTBOX_PENDING.set(len(failed))
        if errors:
            raise ConnectionError(f"{len(errors)} of {len(rows)} events not published: {errors[0]}")
        return len(sent)

    async def pending(self) -> int:
        async with self.db.sessionmaker() as session:
            count = await session.scalar(
                sa.select(sa.func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
            )
        return int(count or 0)

    async def purge_sent(self) -> None:
        cutoff = datetime.now(UTC) - self.retention
        async with self.db.transaction() as session:
            await session.execute(sa.delete(outbox).where(outbox.c.sent_at < cutoff))


def _ok(result: Any) -> bool:
    return not isinstance(result, BaseException)
