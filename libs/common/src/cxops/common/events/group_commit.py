"""Group commit: the writes of many concurrent requests committed in one transaction.

A request that only inserts rows and queues events (survey intake, say) spends most of its
database time on the transaction around them, not on the rows: on SQLite each statement is a
round trip to the driver's thread, and every commit has a fixed cost. :class:`GroupCommit` lets
such requests hand over their rows and events; one writer inserts everything that is waiting
with one statement per table and commits once, then answers every request. Idle, that is one
transaction per request, at once; busy, one transaction per batch, so the cost per request
falls as the load rises instead of queueing up.

Each request's writes stay all-or-nothing and are committed before it is answered. If a batch
fails (a unique violation from a retried request racing another, say), it is rolled back and
every request in it is written again on its own, so only the request at fault sees the error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from prometheus_client import Histogram

from cxops.common.db import CommitInfo, Database
from cxops.common.events.envelope import Event
from cxops.common.events.outbox import outbox_row, queue_events

log = logging.getLogger("cxops.group_commit")

BATCH_SIZE = Histogram(
    "cxops_group_commit_batch_size",
    "Requests committed together by one group-commit transaction",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)

Row = tuple[sa.Table, dict[str, Any]]


def _new_future() -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    # Mark a failure as seen even when its caller has gone away, or asyncio logs it as lost.
    future.add_done_callback(lambda done: done.cancelled() or done.exception())
    return future


@dataclass(slots=True)
class _Submission:
    rows: Sequence[Row]
    events: Sequence[Event]
    statements: Sequence[sa.Executable] = ()
    done: asyncio.Future[None] = field(default_factory=_new_future)


class GroupCommit:
    """One writer per database; :meth:`write` is safe to call from any number of requests."""

    def __init__(self, db: Database, *, max_batch: int = 512) -> None:
        self.db = db
        self.max_batch = max_batch
        self._waiting: list[_Submission] = []
        self._writer: asyncio.Task[None] | None = None

    async def write(
        self,
        *,
        rows: Sequence[Row],
        events: Sequence[Event] = (),
        statements: Sequence[sa.Executable] = (),
    ) -> None:
        """Insert ``rows`` (in order), run ``statements`` (small updates that belong with them,
        such as marking what the rows answer) and queue ``events`` in the outbox, atomically;
        return once committed, or raise what writing them alone raised."""
        submission = _Submission(rows=rows, events=events, statements=statements)
        self._waiting.append(submission)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name="cxops-group-commit")
        # Shielded: a caller that goes away does not take back writes already under way.
        await asyncio.shield(submission.done)

    async def close(self) -> None:
        """Wait until everything submitted so far is committed (or has failed)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.wait({self._writer})

    async def _drain(self) -> None:
        while self._waiting:
            batch = self._waiting[: self.max_batch]
            del self._waiting[: self.max_batch]
            try:
                await self._commit_together(batch)
            except asyncio.CancelledError:
                _fail(batch, RuntimeError("the service is stopping; nothing was written"))
                raise
            except Exception:  # noqa: BLE001 - someone in the batch failed: one at a time
                if len(batch) == 1:
                    await self._commit_alone(batch[0])
                else:
                    log.info("a group of %d writes failed; writing each alone", len(batch))
                    for submission in batch:
                        await self._commit_alone(submission)
            else:
                BATCH_SIZE.observe(len(batch))
                for submission in batch:
                    if not submission.done.done():
                        submission.done.set_result(None)

    async def _commit_together(self, batch: Sequence[_Submission]) -> None:
        await self.db.run_transaction(lambda connection, info: _write(connection, info, batch))

    async def _commit_alone(self, submission: _Submission) -> None:
        try:
            await self.db.run_transaction(
                lambda connection, info: _write(connection, info, [submission])
            )
        except asyncio.CancelledError:
            _fail([submission], RuntimeError("the service is stopping; nothing was written"))
            raise
        except Exception as exc:  # noqa: BLE001 - handed to the request it belongs to
            if not submission.done.done():
                submission.done.set_exception(exc)
            return
        BATCH_SIZE.observe(1)
        if not submission.done.done():
            submission.done.set_result(None)


def _write(connection: sa.Connection, info: CommitInfo, batch: Sequence[_Submission]) -> None:
    """One INSERT per table (executemany), tables in the order they first appear, then each
    submission's statements, then the events; all in the caller's transaction."""
    by_table: dict[sa.Table, list[dict[str, Any]]] = {}
    for submission in batch:
        for table, values in submission.rows:
            by_table.setdefault(table, []).append(values)
    for table, values_list in by_table.items():
        connection.execute(sa.insert(table), values_list)
    for submission in batch:
        for statement in submission.statements:
            connection.execute(statement)
    queue_events(connection, info, [outbox_row(e) for s in batch for e in s.events])


def _fail(batch: Sequence[_Submission], error: BaseException) -> None:
    for submission in batch:
        if not submission.done.done():
            submission.done.set_exception(error)
