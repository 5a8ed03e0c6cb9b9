"""Bulk import of survey responses: up to :data:`MAX_IMPORT_ROWS` rows per call, each validated
like a single POST, enriched, stored and announced.

The work runs in three overlapping steps. Every row is read and validated first, so a bad row is
named by its line and never stops the good ones. The comments go to worker processes in chunks
(:class:`~cxops.feedback.enrichment.EnrichmentPool`; a small import reads them here). Each chunk,
as its readings come back, is written in one transaction: the responses, their topics and two
outbox events per response (``received`` then ``enriched``, the same payloads as a single POST).

A row's ``external_id`` makes a retry harmless: ids already stored, or earlier in the same body,
are duplicates, and the insert skips any a concurrent import stored first (the unique constraint
decides), announcing only what this call stored. Imported answers are history: they open no
cases and raise no real-time alerts (the live path is ``POST /v1/feedback/responses``).
"""

import asyncio
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from uuid6 import uuid7

from cxops.common.auth import CallerContext
from cxops.common.db import CommitInfo, Database
from cxops.common.errors import validation_errors
from cxops.common.events.outbox import outbox_row, queue_events
from cxops.common.telemetry import outgoing_trace_headers
from cxops.feedback import events, repository
from cxops.feedback.enrichment import EnrichmentPool, Enrichments, TenantEnrichment
from cxops.feedback.formats import ImportLine, read_import
from cxops.feedback.models import FeedbackResponse, FeedbackResponseTopic
from cxops.feedback.schemas import ImportRejection, ImportResult, ImportRow
from cxops.stats.scales import SCALES

MAX_IMPORT_ROWS = 100_000
#: Fewer comments than this are read in the request's process: the workers' hand-over would
#: cost more than it saves.
INLINE_COMMENTS = 400
#: Rows per transaction.
WRITE_CHUNK = 2_000

COLUMNS = frozenset(ImportRow.model_fields)


class TooManyRows(ValueError):
    """The body holds more rows than one call takes."""


@dataclass(slots=True)
class _Checked:
    accepted: list[tuple[int, ImportRow]] = field(default_factory=list)
    rejected: list[ImportRejection] = field(default_factory=list)
    duplicates: int = 0


async def import_responses(
    *,
    db: Database,
    enrichments: Enrichments,
    pool: EnrichmentPool,
    caller: CallerContext,
    body: bytes,
    media_type: str,
) -> ImportResult:
    """Store every valid row of ``body`` not stored before; raises
    :class:`~cxops.feedback.formats.InputError` for a body that is not the format at all (a CSV
    header with unknown columns, bytes that are not UTF-8) and :class:`TooManyRows`."""
    checked = _check(read_import(body, media_type, columns=COLUMNS), received_at=datetime.now(UTC))
    checked.duplicates += await _drop_stored(db, caller.tenant, checked)
    intake = await enrichments.get(caller.tenant)
    rows = [row for _, row in checked.accepted]
    comments = _CommentReadings(intake.enrichment, pool, rows)
    trace = outgoing_trace_headers()  # the request's, for every event (the writes run elsewhere)
    stored = 0
    for start in range(0, len(rows), WRITE_CHUNK):
        chunk = rows[start : start + WRITE_CHUNK]
        readings = await comments.next_for(chunk)
        columns = [
            _columns(row, reading, keep_raw=intake.keep_raw_comments)
            for row, reading in zip(chunk, readings, strict=True)
        ]
        stored += await db.run_transaction(
            lambda connection, info, columns=columns: _write(
                connection, info, columns, tenant=caller.tenant, trace=trace
            )
        )
    return ImportResult(
        accepted=stored,
        duplicates=checked.duplicates + len(rows) - stored,
        rejected=checked.rejected,
    )


def _check(lines: Iterable[ImportLine], *, received_at: datetime) -> _Checked:
    checked = _Checked()
    seen: set[str] = set()
    for count, line in enumerate(lines, start=1):
        if count > MAX_IMPORT_ROWS:
            raise TooManyRows(f"one import takes up to {MAX_IMPORT_ROWS} rows")
        if line.fields is None:
            checked.rejected.append(
                ImportRejection(
                    line=line.line,
                    errors=[{"field": "line", "message": str(line.problem), "code": "unreadable"}],
                )
            )
            continue
        try:
            row = ImportRow.model_validate(line.fields)
        except ValidationError as exc:
            checked.rejected.append(
                ImportRejection(
                    line=line.line,
                    errors=[
                        {key: error[key] for key in ("field", "message", "code")}
                        for error in validation_errors(list(exc.errors()))
                    ],
                )
            )
            continue
        if row.invitation_token is not None:
            checked.rejected.append(
                ImportRejection(
                    line=line.line,
                    errors=[
                        {
                            "field": "invitation_token",
                            "message": "an answer to an invitation is posted on its own",
                            "code": "not_imported",
                        }
                    ],
                )
            )
            continue
        if row.external_id is not None:
            if row.external_id in seen:
                checked.duplicates += 1
                continue
            seen.add(row.external_id)
        if row.occurred_at is None:
            row.occurred_at = received_at
        checked.accepted.append((line.line, row))
    return checked


async def _drop_stored(db: Database, tenant: str, checked: _Checked) -> int:
    """Leave out the rows whose external id is stored already; return how many."""
    ids = [row.external_id for _, row in checked.accepted if row.external_id is not None]
    if not ids:
        return 0
    table = FeedbackResponse.__table__  # type: ignore[attr-defined]
    stored: set[str] = set()
    async with db.engine.connect() as connection:
        for start in range(0, len(ids), 1_000):
            result = await connection.execute(
                sa.select(table.c.external_id).where(
                    table.c.tenant == tenant,
                    table.c.external_id.in_(ids[start : start + 1_000]),
                )
            )
            stored.update(result.scalars())
    if stored:
        checked.accepted = [
            (line, row) for line, row in checked.accepted if row.external_id not in stored
        ]
    return len(stored)


_Reading = tuple[str | None, dict[str, Any]]


class _CommentReadings:
    """The readings of the rows' comments, handed out in row order as they come back."""

    def __init__(
        self, enrichment: TenantEnrichment, pool: EnrichmentPool, rows: Sequence[ImportRow]
    ) -> None:
        items = [(row.comment, row.kind.value, row.score) for row in rows if row.comment]
        if len(items) < INLINE_COMMENTS:
            done: asyncio.Future[list[_Reading]] = asyncio.get_running_loop().create_future()
            done.set_result(
                [enrichment.read_as_json(c, kind=kind, score=score) for c, kind, score in items]
            )
            self._chunks: Iterator[asyncio.Future[list[_Reading]]] = iter([done])
        else:
            self._chunks = iter(pool.read_chunks(enrichment, items))
        self._ready: deque[_Reading] = deque()
        # A score never contradicts an empty comment: one reading per kind serves every row.
        self._empty = {
            kind: enrichment.read_as_json(None, kind=kind, score=scale.lowest)
            for kind, scale in SCALES.items()
        }

    async def next_for(self, rows: Sequence[ImportRow]) -> list[_Reading]:
        wanted = sum(1 for row in rows if row.comment)
        while len(self._ready) < wanted:
            self._ready.extend(await next(self._chunks))
        return [self._ready.popleft() if row.comment else self._empty[row.kind] for row in rows]


def _columns(row: ImportRow, reading: _Reading, *, keep_raw: bool) -> dict[str, Any]:
    """The stored columns of a new response (as :func:`repository.response_rows` takes them)."""
    redacted, enrichment = reading
    return {
        "id": uuid7(),
        "kind": row.kind,
        "score": row.score,
        "comment": redacted,
        "customer_ref": row.customer_ref,
        "channel": row.channel,
        "task_id": row.task_id,
        "customer_tier": row.customer_tier,
        "occurred_at": row.occurred_at,
        "received_at": datetime.now(UTC),
        "enrichment": enrichment,
        "raw_comment": row.comment if keep_raw else None,
        "external_id": row.external_id,
        "idempotency_key": None,
        "request_fingerprint": None,
    }


def _write(
    connection: sa.Connection,
    info: CommitInfo,
    columns: Sequence[dict[str, Any]],
    *,
    tenant: str,
    trace: Mapping[str, str],
) -> int:
    """Insert the responses a concurrent import has not stored first, with their topics and
    events; return how many were stored."""
    table = FeedbackResponse.__table__  # type: ignore[attr-defined]
    rows = [repository.response_rows(response, tenant=tenant) for response in columns]
    insert = repository.insert_if_absent(
        connection.dialect.name, table, unique=("tenant", "external_id")
    )
    inserted = set(
        connection.execute(insert.returning(table.c.id), [row[0][1] for row in rows]).scalars()
    )
    topics = [values for row in rows if row[0][1]["id"] in inserted for _, values in row[1:]]
    if topics:
        connection.execute(sa.insert(FeedbackResponseTopic.__table__), topics)  # type: ignore[attr-defined]
    queue_events(
        connection,
        info,
        [
            outbox_row(event)
            for response in columns
            if response["id"] in inserted
            for event in events.response_events(response, tenant=tenant, trace=trace)
        ],
    )
    return len(inserted)
