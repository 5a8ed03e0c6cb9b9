"""``/v1/journey/interactions``: what happened to customers, one or a thousand at a time."""

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError

from cxops.common.auth import CallerContext, Role, require_role
from cxops.common.errors import PROBLEM_MEDIA_TYPE
from cxops.common.service import State
from cxops.journey import interactions
from cxops.journey.identity_store import identity_spelling
from cxops.journey.schemas import INTERACTIONS_BODY_SCHEMA, MAX_BATCH, BatchResult

router = APIRouter(prefix="/interactions", tags=["interactions"])

Recorder = Annotated[
    CallerContext,
    Depends(require_role(Role.INTEGRATION, Role.OPS_LEAD, Role.SUPERVISOR, Role.AGENT)),
]


def _body_error(message: str, code: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("body",), "msg": message, "type": code}])


@router.post(
    "",
    response_model=BatchResult,
    summary="Record interactions",
    responses={
        201: {"description": "One interaction (an object), stored", "model": BatchResult},
        422: {
            "description": "A single interaction that is not valid, or a body that is neither "
            "an interaction nor a list of 1 to 1,000",
            "content": {PROBLEM_MEDIA_TYPE: {}},
        },
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": INTERACTIONS_BODY_SCHEMA}},
        }
    },
)
async def post_interactions(caller: Recorder, state: State, request: Request) -> Response:
    """One interaction (an object) or a batch (a list of up to 1,000). Each is stored once per
    `external_id`: a retry answers `duplicate` with the stored id and stores nothing. Identity
    resolution runs as they arrive: `customer_id` is the profile each joined.

    A batch answers `200` per item, in the body's order (`created`, `duplicate`, or `rejected`
    with its errors named by index and field, `[3].occurred_at`); the good items are kept. A
    single object answers `201` (`200` for a duplicate), or `422` naming its fields.
    """
    try:
        body: Any = json.loads(await request.body())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _body_error(f"is not JSON: {exc}", "json_invalid") from None
    single = isinstance(body, dict)
    items = [body] if single else body
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        raise _body_error(
            f"must be an interaction or a list of 1 to {MAX_BATCH} interactions", "batch_size"
        )
    accepted, rejected = interactions.check(items)
    if single and rejected:
        raise RequestValidationError(
            [
                {
                    "loc": ("body", *error.field.removeprefix("[0]").lstrip(".").split(".")),
                    "msg": error.message,
                    "type": error.code,
                }
                for error in rejected[0].errors
            ]
        )
    result = await interactions.record(
        db=state.db,
        tenant=caller.tenant,
        accepted=accepted,
        rejected=rejected,
        spelling=identity_spelling(state.settings),
    )
    if single:
        created = result.items[0].status == "created"
        return Response(
            result.model_dump_json(),
            status_code=201 if created else 200,
            media_type="application/json",
        )
    return Response(result.model_dump_json(), media_type="application/json")
