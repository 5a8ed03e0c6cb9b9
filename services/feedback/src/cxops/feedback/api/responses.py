"""``/v1/feedback/responses``: survey answers in, and read back by the tenant that sent them."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from cxops.common.auth import Caller, CallerContext, Role, require_role
from cxops.common.db import SessionDep
from cxops.common.errors import PROBLEM_MEDIA_TYPE, Problem
from cxops.common.service import State
from cxops.feedback import service
from cxops.feedback.alerting import AlertRules
from cxops.feedback.cases import CaseClocks, CaseSettingsCache
from cxops.feedback.enrichment import Enrichments
from cxops.feedback.schemas import ResponseCreate, ResponsePage, ResponsePublic
from cxops.stats.scales import SurveyKind

IDEMPOTENT_REPLAYED_HEADER = "Idempotent-Replayed"

router = APIRouter(prefix="/responses", tags=["responses"])

Recorder = Annotated[
    CallerContext,
    Depends(require_role(Role.INTEGRATION, Role.OPS_LEAD, Role.SUPERVISOR, Role.AGENT)),
]

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description=(
            "Up to 255 visible ASCII characters, unique per request (a UUID is a good choice). "
            "A retry with the same key and body returns the first result and stores nothing."
        ),
    ),
]


def _problem(description: str) -> dict[str, object]:
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {}}}


@router.post(
    "",
    status_code=201,
    response_model=ResponsePublic,
    summary="Record a survey response",
    responses={409: _problem("The Idempotency-Key was used for a different request")},
)
async def post_response(
    payload: ResponseCreate,
    caller: Recorder,
    state: State,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Store an answer and announce it as ``cx.feedback.response.received.v1``.

    A replay (same ``Idempotency-Key``, same body) answers exactly as the first call did, 201
    with the same response, plus ``Idempotent-Replayed: true``: a client that lost the first
    answer cannot tell the difference, and nothing is stored or published twice.
    """
    try:
        recorded = await service.record_response(
            db=state.db,
            group_commit=state.group_commit,
            enrichments=state.component(Enrichments),
            alert_rules=state.component(AlertRules),
            caller=caller,
            payload=payload,
            idempotency_key=idempotency_key,
            case_settings=state.component(CaseSettingsCache),
            clocks=state.component(CaseClocks),
        )
    except service.IdempotencyKeyReused as exc:
        raise Problem(
            409,
            "This Idempotency-Key was already used for a different request; "
            "send a new key for a new response.",
            slug="idempotency-key-reused",
            title="Idempotency key reused",
            response_id=str(exc.response_id),
        ) from exc
    # The answer is serialised once, here (FastAPI would validate the model a second time), and
    # its Location is this path plus the id: ``get_response`` is that path by construction.
    headers = {"Location": f"{request.scope['path'].rstrip('/')}/{recorded.response.id}"}
    if recorded.replayed:
        headers[IDEMPOTENT_REPLAYED_HEADER] = "true"
    return Response(
        recorded.response.model_dump_json(),
        status_code=201,
        media_type="application/json",
        headers=headers,
    )


@router.get("", response_model=ResponsePage, summary="List survey responses")
async def list_responses(
    caller: Caller,
    session: SessionDep,
    kind: Annotated[SurveyKind | None, Query(description="Only this kind.")] = None,
    cursor: Annotated[
        uuid.UUID | None, Query(description="The `next_cursor` of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ResponsePage:
    """The tenant's responses, newest first, a page at a time."""
    rows, next_cursor = await service.list_responses(
        session=session, caller=caller, kind=kind, cursor=cursor, limit=limit
    )
    return ResponsePage(
        items=[ResponsePublic.model_validate(row) for row in rows], next_cursor=next_cursor
    )


@router.get(
    # Only a UUID here: ``/responses/import`` (POST) is another resource, not a response.
    "/{response_id:uuid}",
    response_model=ResponsePublic,
    name="get_response",
    summary="Read one survey response",
    responses={404: _problem("No such response in this tenant")},
)
async def get_response(
    response_id: uuid.UUID, caller: Caller, session: SessionDep
) -> ResponsePublic:
    """One response of the caller's tenant; another tenant's id is simply not found."""
    try:
        row = await service.get_response(session=session, caller=caller, response_id=response_id)
    except service.ResponseNotFound as exc:
        raise Problem(
            404, f"No response {response_id} in this tenant.", slug="response-not-found"
        ) from exc
    return ResponsePublic.model_validate(row)
