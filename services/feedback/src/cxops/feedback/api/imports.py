"""``POST /v1/feedback/responses/import``: many survey answers in one call, as NDJSON or CSV."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from cxops.common.auth import CallerContext, Role, require_role
from cxops.common.errors import PROBLEM_MEDIA_TYPE, Problem
from cxops.common.service import State
from cxops.feedback import imports
from cxops.feedback.enrichment import EnrichmentPool, Enrichments
from cxops.feedback.formats import CSV, NDJSON, InputError
from cxops.feedback.schemas import ImportResult

router = APIRouter(prefix="/responses", tags=["responses"])

Importer = Annotated[CallerContext, Depends(require_role(Role.INTEGRATION, Role.OPS_LEAD))]


def _problem(description: str) -> dict[str, object]:
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {}}}


@router.post(
    "/import",
    response_model=ImportResult,
    summary="Import survey responses in bulk",
    responses={
        415: _problem("Neither NDJSON nor CSV"),
        422: _problem("A body that cannot be read at all, or more than 100,000 rows"),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                NDJSON: {"schema": {"type": "string", "description": "One ImportRow per line."}},
                CSV: {
                    "schema": {
                        "type": "string",
                        "description": "A header of ImportRow field names, one row per answer.",
                    }
                },
            },
        }
    },
)
async def import_responses(caller: Importer, state: State, request: Request) -> ImportResult:
    """Up to 100,000 answers (`ImportRow`: a response as for `POST /v1/feedback/responses`,
    plus `external_id`) as NDJSON (`application/x-ndjson`, one JSON object per line) or CSV
    (`text/csv`, a header naming the fields). Each row is validated and enriched like a single
    answer and announced with the same two events.

    The answer counts the rows stored (`accepted`), the rows whose `external_id` is stored
    already or came earlier in the body (`duplicates`: a retried import stores nothing twice),
    and lists each refused row with its line and its errors (`rejected`); the good rows are
    stored either way. Imported answers are history: they open no cases and raise no
    real-time alerts.
    """
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in (NDJSON, CSV):
        raise Problem(
            415,
            f"Send the rows as {NDJSON} or {CSV}, not {media_type or 'no content type'}.",
            slug="unsupported-media-type",
        )
    try:
        return await imports.import_responses(
            db=state.db,
            enrichments=state.component(Enrichments),
            pool=state.component(EnrichmentPool),
            caller=caller,
            body=await request.body(),
            media_type=media_type,
        )
    except (InputError, imports.TooManyRows) as exc:
        raise Problem(
            422,
            str(exc),
            slug="validation-error",
            title="Validation failed",
            errors=[{"field": "body", "in": "body", "message": str(exc), "code": "unreadable"}],
        ) from exc
