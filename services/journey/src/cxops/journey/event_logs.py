"""Uploaded event logs: streamed to a file under the service's data directory, checked for the
columns the caller mapped, and recorded, or refused with nothing kept.

The body is never held in memory: each chunk is written, hashed and counted as it arrives, and
the upload stops at the size limit. Only the header is read to check the columns (the log's
rows are read by the jobs that mine it), with the command's own reader, so a log the upload
accepts is one ``cxops journey mine`` opens.
"""

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession
from uuid6 import uuid7

from cxops.common.auth import CallerContext
from cxops.common.errors import Problem
from cxops.common.tenancy import TenantRepository
from cxops.journey.domain.log import Columns, LogError
from cxops.journey.formats.log import scan_log
from cxops.journey.models import EventLogFile
from cxops.journey.runs import log_columns
from cxops.journey.schemas import EventLogPublic, LogColumns

LogFormat = Literal["csv", "parquet"]
#: The file extension :func:`cxops.journey.formats.log.scan_log` reads each format by.
EXTENSIONS: dict[LogFormat, str] = {"csv": ".csv", "parquet": ".parquet"}
EVENT_LOGS_DIR = "event-logs"


@dataclass(frozen=True)
class ColumnMapping:
    """The caller's column names (``cxops journey mine``'s options); team and channel default
    to the columns of those names if the log has them."""

    case: str = "case_id"
    activity: str = "activity"
    timestamp: str = "timestamp"
    team: str | None = None
    channel: str | None = None


class TooLarge(Exception):
    """The upload passed the size limit."""


def _refuse(field: str, message: str) -> Problem:
    return Problem(
        422,
        f"The log cannot be mined: {message}",
        slug="validation-error",
        title="Validation failed",
        errors=[{"field": field, "in": "query", "message": message, "code": "log_column"}],
    )


async def upload(
    *,
    session: AsyncSession,
    caller: CallerContext,
    chunks: AsyncIterator[bytes],
    log_format: LogFormat,
    filename: str | None,
    mapping: ColumnMapping,
    data_dir: Path,
    max_bytes: int,
    now: datetime,
) -> EventLogFile:
    """Write the body to its file, check its header against ``mapping`` and record the log; on
    any refusal the file is deleted and :class:`~cxops.common.errors.Problem` raised."""
    log_id = uuid7()
    relative = Path(EVENT_LOGS_DIR) / f"{log_id}{EXTENSIONS[log_format]}"
    path = data_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        size, sha256 = await _write(chunks, path, max_bytes=max_bytes)
        columns = await asyncio.to_thread(_checked_columns, path, mapping)
        row = EventLogFile(
            id=log_id,
            tenant=caller.tenant,
            filename=filename or relative.name,
            format=log_format,
            size=size,
            sha256=sha256,
            columns=asdict(columns),
            path=str(relative),
            by=caller.subject,
            created_at=now,
        )
        session.add(row)
        await session.flush()
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return row


async def _write(chunks: AsyncIterator[bytes], path: Path, *, max_bytes: int) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("wb") as file:
        async for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                raise TooLarge
            digest.update(chunk)
            file.write(chunk)
    return size, digest.hexdigest()


def _checked_columns(path: Path, mapping: ColumnMapping) -> Columns:
    """The mapping resolved against the log's header, or a 422 naming the option at fault."""
    try:
        present = scan_log(path).collect_schema().names()
    except LogError as exc:
        raise _refuse("body", str(exc)) from None
    columns = log_columns(present, **asdict(mapping))
    for option, column in asdict(columns).items():
        if column is not None and column not in present:
            raise _refuse(
                option,
                f"column {column!r} is not in the log (its columns: {', '.join(present)})",
            )
    return columns


class EventLogs(TenantRepository):
    async def get(self, log_id: uuid.UUID) -> EventLogFile | None:
        found: EventLogFile | None = (
            await self.session.execute(self.select(EventLogFile).where(EventLogFile.id == log_id))
        ).scalar_one_or_none()
        return found

    async def latest(self, *, limit: int) -> list[EventLogFile]:
        statement = self.select(EventLogFile).order_by(EventLogFile.created_at.desc()).limit(limit)
        return list((await self.session.execute(statement)).scalars())


def public(row: EventLogFile) -> EventLogPublic:
    return EventLogPublic(
        id=row.id,
        filename=row.filename,
        format=row.format,  # type: ignore[arg-type]
        size=row.size,
        sha256=row.sha256,
        columns=LogColumns(**row.columns),
        created_at=row.created_at,
    )


def columns_of(row: EventLogFile) -> Columns:
    return Columns(**row.columns)
