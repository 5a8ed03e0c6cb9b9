"""Feedback's use cases. None of them commits: reads run in the request's session, and a new
response is handed with its outbox event to the service's group commit, which writes both in one
transaction (shared with other requests arriving at the same time) before the call returns.
"""

import hashlib
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Executable
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from uuid6 import uuid7

from cxops.common.auth import CallerContext
from cxops.common.db import Database
from cxops.common.events.group_commit import GroupCommit
from cxops.feedback import cases, events, invitations, repository
from cxops.feedback.alerting import AlertRules, realtime_alerts
from cxops.feedback.domain.topics import DEFAULT_TAXONOMY
from cxops.feedback.enrichment import Enrichments, taxonomy_of
from cxops.feedback.models import FeedbackResponse, FeedbackTaxonomy, FeedbackTenantSettings
from cxops.feedback.repository import (
    ResponseRepository,
    TaxonomyRepository,
    TenantSettingsRepository,
)
from cxops.feedback.schemas import (
    FeedbackSettingsPublic,
    ResponseCreate,
    ResponsePublic,
    TaxonomyDocument,
    TaxonomyPublic,
)
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
    enrichments: Enrichments,
    alert_rules: AlertRules,
    caller: CallerContext,
    payload: ResponseCreate,
    idempotency_key: str | None,
    case_settings: cases.CaseSettingsCache,
    clocks: cases.CaseClocks,
) -> Recorded:
    """Store a survey answer with its enrichment, and queue ``cx.feedback.response.received.v1``
    and ``response.enriched.v1`` in the same transaction; return once all are committed.

    The comment is stored redacted; the raw comment only when the tenant keeps raw comments. A
    response that quotes an invitation's token is linked to it (and its task and agent). If the
    tenant's case rules open a case for the answer, the case, its first history line and
    ``cx.feedback.case.opened.v1`` are written in that transaction too, and the case clocks are
    armed for it.
    A real-time complaint alert the answer raises is written and published with it.

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

    intake = await enrichments.get(caller.tenant)
    comment, enrichment = intake.enrichment.read_as_json(
        payload.comment, kind=payload.kind, score=payload.score
    )
    received_at = datetime.now(UTC)
    response = ResponsePublic(
        id=uuid7(),
        kind=payload.kind,
        score=payload.score,
        comment=comment,
        customer_ref=payload.customer_ref,
        channel=payload.channel,
        task_id=payload.task_id,
        customer_tier=payload.customer_tier,
        occurred_at=payload.occurred_at or received_at,
        received_at=received_at,
        enrichment=enrichment,
    )
    linked: Sequence[Executable] = ()
    if payload.invitation_token is not None:
        response, linked = await invitations.link_response(
            db=db, tenant=caller.tenant, token=payload.invitation_token, response=response
        )
    columns = {
        **response.model_dump(exclude={"enrichment"}),
        "enrichment": enrichment,
        "raw_comment": payload.comment if intake.keep_raw_comments else None,
        "idempotency_key": idempotency_key,
        "request_fingerprint": fingerprint,
    }
    rows = repository.response_rows(columns, tenant=caller.tenant)
    queued = events.response_events(columns, tenant=caller.tenant)
    opening = cases.case_rows_for(
        response,
        tenant=caller.tenant,
        facts=cases.facts_of(response),
        settings=await case_settings.get(caller.tenant),
        now=clocks.now(),
    )
    if opening is not None:
        rows += opening.rows
        queued += opening.events
    # Live complaint alerts: a negative answer from a customer of a named tier, at once.
    alerted = await realtime_alerts(rules=alert_rules, tenant=caller.tenant, response=response)
    rows += alerted.rows
    queued += alerted.events
    try:
        await group_commit.write(rows=rows, events=queued, statements=linked)
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
    return repository.page_of(rows, limit)


# --- the taxonomy and the tenant's settings --------------------------------------------------


async def get_taxonomy(*, session: AsyncSession, caller: CallerContext) -> TaxonomyPublic:
    latest = await TaxonomyRepository(session, tenant=caller.tenant).latest()
    if latest is None:
        return TaxonomyPublic(
            version=0,
            updated_at=None,
            updated_by=None,
            effective=list(DEFAULT_TAXONOMY.topics),
        )
    document = TaxonomyDocument.model_validate(latest.document)
    return TaxonomyPublic(
        **document.model_dump(),
        version=latest.version,
        updated_at=latest.created_at,
        updated_by=latest.created_by,
        effective=list(taxonomy_of(latest.document).topics),
    )


async def put_taxonomy(
    *, db: Database, enrichments: Enrichments, caller: CallerContext, document: TaxonomyDocument
) -> TaxonomyPublic:
    """Store ``document`` as the tenant's next taxonomy version. Two concurrent puts cannot take
    one version: the loser tries again on top of the winner's."""
    for _ in range(3):
        async with db.sessionmaker() as session:
            latest = await TaxonomyRepository(session, tenant=caller.tenant).latest()
            session.add(
                FeedbackTaxonomy(
                    tenant=caller.tenant,
                    version=(latest.version if latest is not None else 0) + 1,
                    document=document.model_dump(mode="json"),
                    created_at=datetime.now(UTC),
                    created_by=caller.subject,
                )
            )
            try:
                await session.commit()
            except IntegrityError:
                continue
            enrichments.forget(caller.tenant)
            return await get_taxonomy(session=session, caller=caller)
    raise TaxonomyBusy()


class TaxonomyBusy(Exception):
    """Other puts kept taking the next version."""


async def get_settings(*, session: AsyncSession, caller: CallerContext) -> FeedbackSettingsPublic:
    row = await TenantSettingsRepository(session, tenant=caller.tenant).get()
    return FeedbackSettingsPublic(keep_raw_comments=row is not None and row.keep_raw_comments)


async def put_settings(
    *,
    session: AsyncSession,
    enrichments: Enrichments,
    caller: CallerContext,
    settings: FeedbackSettingsPublic,
) -> FeedbackSettingsPublic:
    row = await TenantSettingsRepository(session, tenant=caller.tenant).get()
    if row is None:
        row = FeedbackTenantSettings(tenant=caller.tenant, updated_at=datetime.now(UTC))
        session.add(row)
    row.keep_raw_comments = settings.keep_raw_comments
    row.updated_at = datetime.now(UTC)
    await session.commit()
    enrichments.forget(caller.tenant)
    return settings
