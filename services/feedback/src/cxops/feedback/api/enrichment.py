"""What the service reads in comments, and the people who check it: the taxonomy, the tenant's
settings on raw comments, the review queue, reviewers' labels and calibration."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from cxops.common.auth import Caller, CallerContext, Role, require_role
from cxops.common.db import SessionDep
from cxops.common.errors import PROBLEM_MEDIA_TYPE, Problem
from cxops.common.service import State
from cxops.common.validation import UtcDateTime
from cxops.feedback import review, service
from cxops.feedback.enrichment import Enrichments
from cxops.feedback.schemas import (
    CalibrationPublic,
    FeedbackSettingsPublic,
    LabelCreate,
    LabelPublic,
    RawComment,
    ResponsePublic,
    ReviewQueuePage,
    TaxonomyDocument,
    TaxonomyPublic,
)

router = APIRouter(tags=["enrichment"])

Admin = Annotated[CallerContext, Depends(require_role())]
TaxonomyOwner = Annotated[CallerContext, Depends(require_role(Role.OPS_LEAD))]
Reviewer = Annotated[CallerContext, Depends(require_role(Role.OPS_LEAD, Role.SUPERVISOR))]


def _not_found(response_id: uuid.UUID) -> Problem:
    return Problem(404, f"No response {response_id} in this tenant.", slug="response-not-found")


_NOT_FOUND = {404: {"description": "No such response", "content": {PROBLEM_MEDIA_TYPE: {}}}}


@router.get("/taxonomy", response_model=TaxonomyPublic, summary="Read the topic taxonomy")
async def get_taxonomy(caller: Caller, session: SessionDep) -> TaxonomyPublic:
    """The taxonomy in force: the tenant's document, its version and the effective topics with
    their owning teams (version 0 is the built-in taxonomy)."""
    return await service.get_taxonomy(session=session, caller=caller)


@router.put("/taxonomy", response_model=TaxonomyPublic, summary="Replace the topic taxonomy")
async def put_taxonomy(
    document: TaxonomyDocument, caller: TaxonomyOwner, state: State
) -> TaxonomyPublic:
    """Store the document as the next version; responses from now on are tagged with it (each
    replica within a few seconds), and each response records the version it was tagged with."""
    try:
        return await service.put_taxonomy(
            db=state.db,
            enrichments=state.component(Enrichments),
            caller=caller,
            document=document,
        )
    except service.TaxonomyBusy as exc:
        raise Problem(409, "Other changes to the taxonomy kept coming first; try again.") from exc


@router.get("/settings", response_model=FeedbackSettingsPublic, summary="Read feedback settings")
async def get_settings(caller: Admin, session: SessionDep) -> FeedbackSettingsPublic:
    return await service.get_settings(session=session, caller=caller)


@router.put("/settings", response_model=FeedbackSettingsPublic, summary="Set feedback settings")
async def put_settings(
    settings: FeedbackSettingsPublic, caller: Admin, session: SessionDep, state: State
) -> FeedbackSettingsPublic:
    """Whether raw comments are kept (for responses from now on; none stored before is
    recovered)."""
    return await service.put_settings(
        session=session,
        enrichments=state.component(Enrichments),
        caller=caller,
        settings=settings,
    )


@router.get(
    "/responses/{response_id}/raw-comment",
    response_model=RawComment,
    summary="Read a response's raw comment (admins)",
    responses=_NOT_FOUND,
)
async def get_raw_comment(response_id: uuid.UUID, caller: Admin, session: SessionDep) -> RawComment:
    """The comment as written, when the tenant keeps raw comments; null otherwise."""
    try:
        row = await service.get_response(session=session, caller=caller, response_id=response_id)
    except service.ResponseNotFound as exc:
        raise _not_found(response_id) from exc
    return RawComment(response_id=row.id, raw_comment=row.raw_comment)


@router.get("/review-queue", response_model=ReviewQueuePage, summary="Responses to review")
async def get_review_queue(
    caller: Reviewer,
    session: SessionDep,
    cursor: Annotated[
        uuid.UUID | None, Query(description="The `next_cursor` of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ReviewQueuePage:
    """Responses flagged `needs_review` and not labelled yet, oldest first."""
    rows, next_cursor = await review.review_queue(
        session=session, caller=caller, cursor=cursor, limit=limit
    )
    return ReviewQueuePage(
        items=[ResponsePublic.model_validate(row) for row in rows], next_cursor=next_cursor
    )


@router.post(
    "/responses/{response_id}/labels",
    response_model=LabelPublic,
    status_code=201,
    summary="Label a response",
    responses=_NOT_FOUND,
)
async def post_label(
    response_id: uuid.UUID, label: LabelCreate, caller: Reviewer, session: SessionDep
) -> LabelPublic:
    """A reviewer's sentiment and topics for the response, kept beside the model's; a later
    label replaces this one."""
    try:
        return await review.label_response(
            session=session, caller=caller, response_id=response_id, label=label
        )
    except service.ResponseNotFound as exc:
        raise _not_found(response_id) from exc


@router.get("/calibration", response_model=CalibrationPublic, summary="Model against reviewers")
async def get_calibration(
    caller: Reviewer,
    session: SessionDep,
    start: Annotated[
        UtcDateTime | None, Query(alias="from", description="Labels given from this time.")
    ] = None,
    end: Annotated[
        UtcDateTime | None, Query(alias="to", description="Labels given before this time.")
    ] = None,
) -> CalibrationPublic:
    """Agreement per topic and for sentiment (accuracy, Cohen's kappa with its 95% interval),
    the sentiment confusion, and the topics whose rules most often disagree."""
    if start is not None and end is not None and end <= start:
        raise Problem(
            422,
            "`to` must come after `from`.",
            slug="validation-error",
            errors=[
                {"field": "to", "in": "query", "message": "must be after from", "code": "range"}
            ],
        )
    return await review.calibration(session=session, caller=caller, start=start, end=end)
