"""Feedback's use cases. Each runs inside the caller's transaction (the request's unit of work)
and never commits: the response row and its outbox event are committed together or not at all.
"""

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cxops.common.auth import CallerContext
from cxops.common.events import add_event
from cxops.feedback import events, repository
from cxops.feedback.models import FeedbackResponse
from cxops.feedback.schemas import ResponseCreate
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

    response: FeedbackResponse
    replayed: bool


def request_fingerprint(payload: ResponseCreate) -> str:
    """A digest of the request's meaning, not its bytes: key order, whitespace and the offset of
    ``occurred_at`` do not change it, so an honest retry is recognised as one."""
    canonical = json.dumps(payload.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def record_response(
    *,
    session: AsyncSession,
    caller: CallerContext,
    payload: ResponseCreate,
    idempotency_key: str | None,
) -> Recorded:
    """Store a survey answer and queue ``cx.feedback.response.received.v1`` in the same
    transaction.

    With an ``idempotency_key`` (scoped to the tenant, kept as long as the response), a retry of
    the same request returns the first response and stores nothing; the same key with a different
    request raises :class:`IdempotencyKeyReused`. Two concurrent requests with one key are
    settled by the unique constraint: the loser reads and replays the winner's row.
    """
    fingerprint = request_fingerprint(payload)
    if idempotency_key is not None:
        earlier = await repository.get_by_idempotency_key(
            session=session, tenant=caller.tenant, idempotency_key=idempotency_key
        )
        if earlier is not None:
            return _replay(earlier, idempotency_key=idempotency_key, fingerprint=fingerprint)

    received_at = datetime.now(UTC)
    response = FeedbackResponse(
        tenant=caller.tenant,
        kind=payload.kind,
        score=payload.score,
        comment=payload.comment,
        customer_ref=payload.customer_ref,
        channel=payload.channel,
        occurred_at=payload.occurred_at or received_at,
        received_at=received_at,
        idempotency_key=idempotency_key,
        request_fingerprint=fingerprint if idempotency_key is not None else None,
    )
    if idempotency_key is None:
        await repository.insert(session=session, response=response)
    else:
        try:
            await repository.insert_unless_key_taken(session=session, response=response)
        except IntegrityError:
            winner = await repository.get_by_idempotency_key(
                session=session, tenant=caller.tenant, idempotency_key=idempotency_key
            )
            if winner is None:
                raise
            return _replay(winner, idempotency_key=idempotency_key, fingerprint=fingerprint)

    await add_event(session, events.response_received(response))
    log.info("recorded %s response %s", response.kind.value, response.id)
    return Recorded(response=response, replayed=False)


def _replay(earlier: FeedbackResponse, *, idempotency_key: str, fingerprint: str) -> Recorded:
    if earlier.request_fingerprint != fingerprint:
        raise IdempotencyKeyReused(idempotency_key, earlier.id)
    return Recorded(response=earlier, replayed=True)


async def get_response(
    *, session: AsyncSession, caller: CallerContext, response_id: uuid.UUID
) -> FeedbackResponse:
    response = await repository.get(session=session, tenant=caller.tenant, response_id=response_id)
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
    rows = await repository.list_newest_first(
        session=session, tenant=caller.tenant, kind=kind, before=cursor, limit=limit + 1
    )
    page = rows[:limit]
    next_cursor = page[-1].id if len(rows) > limit else None
    return page, next_cursor
