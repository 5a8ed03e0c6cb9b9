"""Feedback's use cases. None of them commits: reads run in the request's session, and a new
response is handed with its outbox event to the service's group commit, which writes both in one
transaction (shared with other requests arriving at the same time) before the call returns.
"""

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from uuid6 import uuid7

from cxops.common.auth import CallerContext
from cxops.common.db import Database
from cxops.common.events.group_commit import GroupCommit
from cxops.feedback import cases, events, repository
from cxops.feedback.models import FeedbackResponse
from cxops.feedback.repository import ResponseRepository
from cxops.feedback.schemas import ResponseCreate, ResponsePublic
from cxops.stats.scales import SurveyKind

log = logging.getLogger("cxops.feedback")


class ResponseNotFound(LookupError):
    """No response with that id in the caller's tenant (whether or not another tenant has one)."""


class IdempotencyKeyReused(Exception):
    """The key was used before for a different request; replaying the first would mislead."""

    def __init__(self, idempotency_key: str, response_id: uuid.UUID) -> None:
        super().__init__(f"Idempotency-Key {idempotency_key!r} was used for another request")
        self.idempotency_key = idempotency_key
        self.response_id = response_id


@dataclass(frozen=True, slots=True)
class Recorded:
    """The stored response, and whether this call only replayed an earlier one."""

    response: ResponsePublic
    replayed: bool


def request_fingerprint(payload: ResponseCreate) -> str:
    """A digest of the request's meaning, not its bytes: key order, whitespace and the offset of
    ``occurred_at`` do not change it, so an honest retry is recognised as one."""
    canonical = json.dumps(payload.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def record_response(
    *,
    db: Database,
    group_commit: GroupCommit,
    caller: CallerContext,
    payload: ResponseCreate,
    idempotency_key: str | None,
    case_settings: cases.CaseSettingsCache,
    clocks: cases.CaseClocks,
) -> Recorded:
    """Store a survey answer and queue ``cx.feedback.response.received.v1`` in the same
    transaction; return once both are committed. If the tenant's case rules open a case for the
    answer, the case, its first history line and ``cx.feedback.case.opened.v1`` are written in
    that transaction too, and the case clocks are armed for it.

    With an ``idempotency_key`` (scoped to the tenant, kept as long as the response), a retry of
    the same request returns the first response and stores nothing; the same key with a different
    request raises :class:`IdempotencyKeyReused`. Two concurrent requests with one key are
    settled by the unique constraint: the loser reads and replays the winner's row.
    """
    fingerprint = request_fingerprint(payload) if idempotency_key is not None else None
    if idempotency_key is not None and fingerprint is not None:
        earlier = await _find_by_idempotency_key(
            db, tenant=caller.tenant, idempotency_key=idempotency_key
        )
        if earlier is not None:
            return _replay(earlier, idempotency_key=idempotency_key, fingerprint=fingerprint)

    received_at = datetime.now(UTC)
    response = ResponsePublic(
        id=uuid7(),
        kind=payload.kind,
        score=payload.score,
        comment=payload.comment,
        customer_ref=payload.customer_ref,
        channel=payload.channel,
        task_id=payload.task_id,
        occurred_at=payload.occurred_at or received_at,
        received_at=received_at,
        customer_tier=payload.customer_tier,
    )
    row = repository.response_row(
        response,
        tenant=caller.tenant,
        idempotency_key=idempotency_key,
        request_fingerprint=fingerprint,
    )
    opening = cases.case_rows_for(
        response,
        tenant=caller.tenant,
        facts=cases.facts_of(response),
        settings=await case_settings.get(caller.tenant),
        now=clocks.now(),
    )
    rows, queued = [row], [events.response_received(response, tenant=caller.tenant)]
    if opening is not None:
        rows += opening.rows
        queued += opening.events
    try:
        await group_commit.write(rows=rows, events=queued)
    except IntegrityError:
        if idempotency_key is None or fingerprint is None:
            raise
        winner = await _find_by_idempotency_key(
            db, tenant=caller.tenant, idempotency_key=idempotency_key
        )
        if winner is None:
            raise
        return _replay(winner, idempotency_key=idempotency_key, fingerprint=fingerprint)
    if opening is not None:
        clocks.arm(opening.next_due_at)
    log.debug("recorded %s response %s", response.kind.value, response.id)
    return Recorded(response=response, replayed=False)


async def _find_by_idempotency_key(
    db: Database, *, tenant: str, idempotency_key: str
) -> FeedbackResponse | None:
    async with db.sessionmaker() as session:
        return await ResponseRepository(session, tenant=tenant).get_by_idempotency_key(
            idempotency_key
        )


def _replay(earlier: FeedbackResponse, *, idempotency_key: str, fingerprint: str) -> Recorded:
    if earlier.request_fingerprint != fingerprint:
        raise IdempotencyKeyReused(idempotency_key, earlier.id)
    return Recorded(response=ResponsePublic.model_validate(earlier), replayed=True)


async def get_response(
    *, session: AsyncSession, caller: CallerContext, response_id: uuid.UUID
) -> FeedbackResponse:
    response = await ResponseRepository(session, tenant=caller.tenant).get(response_id)
    if response is None:
        raise ResponseNotFound(response_id)
    return response


async def list_responses(
    *,
    session: AsyncSession,
    caller: CallerContext,
    kind: SurveyKind | None,
    cursor: uuid.UUID | None,
    limit: int,
) -> tuple[list[FeedbackResponse], uuid.UUID | None]:
    """A page of the tenant's responses, newest first, and the cursor of the next page."""
    rows = await ResponseRepository(session, tenant=caller.tenant).list_newest_first(
        kind=kind, before=cursor, limit=limit + 1
    )
    page = rows[:limit]
    next_cursor = page[-1].id if len(rows) > limit else None
    return page, next_cursor
