"""``/v1/journey/event-logs``: event logs uploaded for mining jobs, CSV or Parquet.

The body is the file itself, streamed: ``text/csv`` for CSV, ``application/vnd.apache.parquet``
for Parquet, or ``application/octet-stream`` with ``?format=csv|parquet``. The column mapping
is ``cxops journey mine``'s options as query parameters.
"""

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from cxops.common.auth import Caller, CallerContext, Role, require_role
from cxops.common.db import SessionDep
from cxops.common.errors import PROBLEM_MEDIA_TYPE, Problem
from cxops.common.service import State
from cxops.journey import event_logs
from cxops.journey.event_logs import ColumnMapping, EventLogs, LogFormat, TooLarge
from cxops.journey.schemas import EventLogList, EventLogPublic
from cxops.journey.settings import JourneySettings

router = APIRouter(prefix="/event-logs", tags=["mining jobs"])

Uploader = Annotated[
    CallerContext, Depends(require_role(Role.OPS_LEAD, Role.SUPERVISOR, Role.INTEGRATION))
]
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
OCTET_STREAM = "application/octet-stream"
Column = Annotated[str, Query(min_length=1, max_length=255)]


def _problem(description: str) -> dict[str, object]:
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {}}}


def _format_of(media_type: str, asked: LogFormat | None) -> LogFormat:
    by_media_type: dict[str, LogFormat] = {CSV: "csv", PARQUET: "parquet"}
    if media_type == OCTET_STREAM:
        if asked is None:
            raise Problem(
                422,
                f"Say which format an {OCTET_STREAM} body is in: ?format=csv or ?format=parquet",
                slug="validation-error",
                title="Validation failed",
                errors=[
                    {"field": "format", "in": "query", "message": "required", "code": "missing"}
                ],
            )
        return asked
    found = by_media_type.get(media_type)
    if found is None:
        raise Problem(
            415,
            f"Send the log as {CSV}, {PARQUET} or {OCTET_STREAM} with ?format=, "
            f"not {media_type or 'no content type'}.",
        )
    if asked is not None and asked != found:
        raise Problem(
            422,
            f"?format={asked} contradicts the content type {media_type}",
            slug="validation-error",
            title="Validation failed",
            errors=[
                {"field": "format", "in": "query", "message": "contradicts", "code": "invalid"}
            ],
        )
    return found


@router.post(
    "",
    status_code=201,
    response_model=EventLogPublic,
    summary="Upload an event log",
    responses={
        413: _problem("Larger than the service's event_log_max_bytes"),
        415: _problem("Neither CSV nor Parquet"),
        422: _problem("A mapped column the log does not have (named), or an unreadable log"),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                CSV: {"schema": {"type": "string"}},
                PARQUET: {"schema": {"type": "string", "format": "binary"}},
                OCTET_STREAM: {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def upload_event_log(
    caller: Uploader,
    session: SessionDep,
    state: State,
    request: Request,
    response: Response,
    case: Column = "case_id",
    activity: Column = "activity",
    timestamp: Column = "timestamp",
    team: Column | None = None,
    channel: Column | None = None,
    log_format: Annotated[Literal["csv", "parquet"] | None, Query(alias="format")] = None,
    filename: Annotated[str | None, Query(min_length=1, max_length=255)] = None,
) -> EventLogPublic:
    """Store a log (one row per event, in any order, as for `cxops journey mine`) for mining
    jobs. `case`, `activity` and `timestamp` name its columns (by default `case_id`,
    `activity`, `timestamp`); `team` and `channel` default to the columns of those names when
    the log has them. Only the header is checked here: a mapped column the log lacks is a 422
    naming the parameter, and nothing is kept. Bodies over the service's limit (2 GB by
    default) are refused with 413."""
    settings = state.settings
    assert isinstance(settings, JourneySettings)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    chosen = _format_of(media_type, log_format)
    limit = settings.event_log_max_bytes
    declared = request.headers.get("content-length")
    too_large = Problem(413, f"An event log may have at most {limit} bytes")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    try:
        row = await event_logs.upload(
            session=session,
            caller=caller,
            chunks=request.stream(),
            log_format=chosen,
            filename=filename,
            mapping=ColumnMapping(
                case=case, activity=activity, timestamp=timestamp, team=team, channel=channel
            ),
            data_dir=settings.data_dir,
            max_bytes=limit,
            now=datetime.now(UTC),
        )
    except TooLarge:
        raise too_large from None
    response.headers["Location"] = f"{request.scope['path'].rstrip('/')}/{row.id}"
    return event_logs.public(row)


@router.get("", response_model=EventLogList, summary="List event logs")
async def list_event_logs(
    caller: Caller,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventLogList:
    """The tenant's uploaded logs, newest first."""
    rows = await EventLogs(session, tenant=caller.tenant).latest(limit=limit)
    return EventLogList(items=[event_logs.public(row) for row in rows])


@router.get(
    "/{log_id}",
    response_model=EventLogPublic,
    summary="Read an event log's record",
    responses={404: _problem("No such log in this tenant")},
)
async def get_event_log(caller: Caller, session: SessionDep, log_id: uuid.UUID) -> EventLogPublic:
    found = await EventLogs(session, tenant=caller.tenant).get(log_id)
    if found is None:
        raise Problem(404, f"No event log {log_id} in this tenant")
    return event_logs.public(found)
