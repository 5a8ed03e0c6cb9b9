"""``/v1/feedback/surveys`` and ``/v1/feedback/invitations``: what triggers a survey, and every
exit point's outcome, invited or not and why."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from cxops.common.auth import Caller, CallerContext, Role, require_role
from cxops.common.db import SessionDep
from cxops.common.errors import PROBLEM_MEDIA_TYPE, Problem
from cxops.common.service import State
from cxops.feedback import invitations
from cxops.feedback.domain.invitations import Status
from cxops.feedback.schemas import (
    SURVEY_KEY_PATTERN,
    CustomerRef,
    InvitationCreate,
    InvitationCreated,
    InvitationPage,
    InvitationPublic,
    SurveyList,
    SurveyPublic,
    SurveyPut,
)
from cxops.feedback.settings import FeedbackSettings

router = APIRouter()

SurveyEditor = Annotated[CallerContext, Depends(require_role(Role.OPS_LEAD))]
Inviter = Annotated[CallerContext, Depends(require_role(Role.INTEGRATION, Role.OPS_LEAD))]
SurveyKeyPath = Annotated[
    str,
    Path(
        pattern=SURVEY_KEY_PATTERN,
        description="Lower-case letters, digits, `-` and `_`, up to 64, starting alphanumeric.",
    ),
]


def _problem(description: str) -> dict[str, object]:
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {}}}


def _survey_not_found(key: str) -> Problem:
    return Problem(404, f"No survey {key!r} in this tenant.", slug="survey-not-found")


def _clock_and_settings(state: State) -> tuple[invitations.Clock, FeedbackSettings]:
    timer = state.component(invitations.InvitationTimer)
    return timer.clock, timer.settings


@router.put(
    "/surveys/{key}",
    response_model=SurveyPublic,
    tags=["surveys"],
    summary="Create or replace a survey",
    responses={201: {"model": SurveyPublic, "description": "Created"}},
)
async def put_survey(
    key: SurveyKeyPath,
    payload: SurveyPut,
    caller: SurveyEditor,
    session: SessionDep,
    state: State,
    response: Response,
) -> SurveyPublic:
    """The whole survey: 201 when new, 200 when replaced (``version`` goes up by one if
    anything changed). Roles ``ops_lead`` and ``admin``."""
    clock, _settings = _clock_and_settings(state)
    survey, created = await invitations.put_survey(
        session=session, caller=caller, key=key, payload=payload, now=clock()
    )
    if created:
        response.status_code = 201
    return SurveyPublic.model_validate(survey, from_attributes=True)


@router.get("/surveys", response_model=SurveyList, tags=["surveys"], summary="List surveys")
async def list_surveys(caller: Caller, session: SessionDep) -> SurveyList:
    surveys = await invitations.list_surveys(session=session, caller=caller)
    return SurveyList(items=[SurveyPublic.model_validate(s, from_attributes=True) for s in surveys])


@router.get(
    "/surveys/{key}",
    response_model=SurveyPublic,
    tags=["surveys"],
    summary="Read a survey",
    responses={404: _problem("No such survey in this tenant")},
)
async def get_survey(key: SurveyKeyPath, caller: Caller, session: SessionDep) -> SurveyPublic:
    try:
        survey = await invitations.get_survey(session=session, caller=caller, key=key)
    except invitations.SurveyNotFound as exc:
        raise _survey_not_found(key) from exc
    return SurveyPublic.model_validate(survey, from_attributes=True)


@router.post(
    "/invitations",
    status_code=201,
    response_model=InvitationCreated,
    tags=["invitations"],
    summary="Invite a customer by hand",
    responses={
        200: {
            "description": "A retry with the same `external_id`: the first outcome",
            "model": InvitationCreated,
        },
        404: _problem("No such survey in this tenant"),
    },
)
async def post_invitation(
    payload: InvitationCreate,
    caller: Inviter,
    session: SessionDep,
    state: State,
    request: Request,
    response: Response,
) -> InvitationCreated:
    """Decide an invitation under the survey's rules, as an exit point would: the answer is the
    stored outcome (``scheduled`` with its token, or the reason there is none). A retry with the
    same ``external_id`` answers the first outcome with 200."""
    clock, settings = _clock_and_settings(state)
    try:
        invitation, created = await invitations.create_invitation(
            session=session,
            caller=caller,
            payload=payload,
            now=clock(),
            default_recontact_days=settings.recontact_days,
        )
    except invitations.SurveyNotFound as exc:
        raise _survey_not_found(payload.survey_key) from exc
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"{request.scope['path'].rstrip('/')}/{invitation.id}"
    return InvitationCreated.model_validate(invitation)


@router.get(
    "/invitations",
    response_model=InvitationPage,
    tags=["invitations"],
    summary="List invitations and exit points not invited",
)
async def list_invitations(
    caller: Caller,
    session: SessionDep,
    customer_ref: Annotated[CustomerRef | None, Query(description="Only this customer's.")] = None,
    status: Annotated[Status | None, Query(description="Only this status.")] = None,
    cursor: Annotated[
        uuid.UUID | None, Query(description="The `next_cursor` of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> InvitationPage:
    """The tenant's invitations, newest first, a page at a time (tokens are not shown)."""
    rows, next_cursor = await invitations.list_invitations(
        session=session,
        caller=caller,
        customer_ref=customer_ref,
        status=status,
        cursor=cursor,
        limit=limit,
    )
    return InvitationPage(
        items=[InvitationPublic.model_validate(row) for row in rows], next_cursor=next_cursor
    )


@router.get(
    "/invitations/{invitation_id}",
    response_model=InvitationPublic,
    tags=["invitations"],
    summary="Read an invitation",
    responses={404: _problem("No such invitation in this tenant")},
)
async def get_invitation(
    invitation_id: uuid.UUID, caller: Caller, session: SessionDep
) -> InvitationPublic:
    try:
        row = await invitations.get_invitation(
            session=session, caller=caller, invitation_id=invitation_id
        )
    except invitations.InvitationNotFound as exc:
        raise Problem(
            404, f"No invitation {invitation_id} in this tenant.", slug="invitation-not-found"
        ) from exc
    return InvitationPublic.model_validate(row)
