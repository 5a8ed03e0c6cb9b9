"""``GET /v1/events/stream``: the live event stream, as Server-Sent Events."""

import json
from collections.abc import AsyncIterator
from datetime import UTC
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Header, Query
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask

from cxops.common.errors import PROBLEM_MEDIA_TYPE, PROBLEM_RESPONSES, Problem
from cxops.gateway.api.deps import Runtime
from cxops.gateway.auth import verified_key
from cxops.gateway.event_types import InvalidPattern, intersect, parse_patterns, subjects_by_service
from cxops.gateway.keys import VerifiedKey
from cxops.gateway.stream import position
from cxops.gateway.stream.access import READABLE_EVENTS, readable_patterns
from cxops.gateway.stream.reader import StreamReader, stream_positions
from cxops.gateway.stream.slots import Slot

router = APIRouter(prefix="/v1/events", tags=["events"])

#: Seconds a client over its stream limit is asked to wait before trying again.
RETRY_AFTER_SECONDS = 5
#: How long closing a stream's consumers may take once the client is gone.
CLOSE_SECONDS = 2.0


def _field_error(field: str, where: str, message: str) -> Problem:
    return Problem(
        422,
        f"The request is not valid: {field}",
        slug="validation-error",
        title="Validation failed",
        errors=[{"field": field, "in": where, "message": message, "code": "invalid"}],
    )


def _problem(status: int, *, description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {}}}


@router.get(
    "/stream",
    summary="Live events of the caller's tenant (Server-Sent Events)",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "An endless `text/event-stream`: each event has `id` (pass it back as "
            "`Last-Event-ID` to resume), `event` (the type) and `data` (JSON: `id`, `type`, "
            "`time`, `data`); comment lines are heartbeats.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **PROBLEM_RESPONSES,
        429: _problem(429, description="Too many open streams for this key (see Retry-After)"),
        503: _problem(503, description="The event broker is not reachable yet"),
    },
)
async def stream_events(
    state: Runtime,
    key: Annotated[VerifiedKey, Depends(verified_key)],
    types: Annotated[
        str | None,
        Query(
            description="Comma-separated types or wildcards, e.g. "
            "`cx.routing.*,cx.feedback.case.*`; default: all the role may read.",
            examples=["cx.routing.*,cx.feedback.case.*"],
        ),
    ] = None,
    last_event_id: Annotated[
        str | None,
        Header(alias="Last-Event-ID", description="Resume right after this event's id."),
    ] = None,
) -> EventSourceResponse:
    """Only the caller's tenant, only the types asked for that the caller's role may read
    (the table in ``cxops.gateway.stream.access``). Events of one stream arrive in order."""
    allowed = readable_patterns(key.role)
    if types is None or not types.strip():
        wanted = allowed
    else:
        try:
            wanted = parse_patterns(part for part in types.split(",") if part.strip())
        except InvalidPattern as exc:
            raise _field_error("types", "query", str(exc)) from exc
    patterns = intersect(wanted, allowed)
    if not patterns:
        raise Problem(
            403,
            f"Role '{key.role.value}' may read none of {types!r}; it may read: "
            f"{', '.join(READABLE_EVENTS[key.role])}",
            slug="forbidden",
        )
    resume: dict[str, int] = {}
    if last_event_id is not None and last_event_id.strip():
        try:
            resume = position.decode(last_event_id)
        except position.InvalidPosition as exc:
            raise _field_error("Last-Event-ID", "header", str(exc)) from exc
    if not state.broker.is_connected:
        raise Problem(
            503,
            "The event broker is not reachable yet; retry shortly.",
            slug="unavailable",
            headers={"Retry-After": "1"},
        )
    slot = state.stream_slots.acquire(key.id)
    if slot is None:
        raise Problem(
            429,
            f"This key holds {state.settings.stream_max_per_key} event streams already; "
            "close one first.",
            slug="too-many-streams",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            retry_after=RETRY_AFTER_SECONDS,
        )
    try:
        subjects = subjects_by_service(patterns)
        current = await stream_positions(
            state.broker, [service for service in subjects if service not in resume]
        )
    except BaseException:
        slot.release()
        raise
    positions = {**resume, **current}
    reader = StreamReader(
        broker=state.broker,
        tenant=key.tenant,
        subjects=subjects,
        patterns=patterns,
        after=positions,
    )
    return EventSourceResponse(
        _events(reader, positions, slot),
        ping=state.settings.stream_heartbeat_seconds,
        ping_message_factory=lambda: ServerSentEvent(comment="heartbeat", sep="\n"),
        sep="\n",  # plain LF lines: friendlier to shell tools than CRLF
        send_timeout=state.settings.stream_send_timeout_seconds,
        background=BackgroundTask(slot.release),
    )


async def _events(
    reader: StreamReader, positions: dict[str, int], slot: Slot
) -> AsyncIterator[ServerSentEvent]:
    """Until the client goes, the server shuts down or a send times out (each cancels this)."""
    reader.start()
    try:
        async for service, sequence, event in reader:
            positions[service] = sequence
            yield ServerSentEvent(
                sep="\n",
                id=position.encode(positions),
                event=event.type,
                data=json.dumps(
                    {
                        "id": event.id,
                        "type": event.type,
                        "time": event.time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                        "data": event.data,
                    },
                    separators=(",", ":"),
                    default=str,
                ),
            )
    finally:
        slot.release()
        with anyio.move_on_after(CLOSE_SECONDS, shield=True):
            await reader.close()
