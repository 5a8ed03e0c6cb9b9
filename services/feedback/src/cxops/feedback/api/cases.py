"""``/v1/feedback/cases`` and ``/v1/feedback/case-rules``: closed-loop cases, the rules that open
them and the SLA clocks they run under.

Every change is made by the caller's key (``subject``), recorded in the case's history with the
time; the gateway's audit log records the request itself, as for every mutation.
"""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query

from cxops.common.auth import Caller, CallerContext, Role, require_role
from cxops.common.db import SessionDep
from cxops.common.errors import PROBLEM_MEDIA_TYPE, Problem
from cxops.common.service import State
from cxops.feedback import cases
from cxops.feedback.api import ranges
from cxops.feedback.domain import cases as domain
from cxops.feedback.domain.cases import Case, CaseState, Transition
from cxops.feedback.schemas import (
    ActionRequest,
    AssignRequest,
    CaseDetail,
    CasePage,
    CasePublic,
    CaseRulesPublic,
    CaseRulesUpdate,
    CloseRequest,
    Name,
    ReopenRequest,
    RootCausePareto,
)

#: The span of the root-cause report when the caller gives no ``from``.
ROOT_CAUSE_DEFAULT_SPAN = timedelta(days=90)

router = APIRouter(tags=["cases"])

RuleSetter = Annotated[CallerContext, Depends(require_role(Role.OPS_LEAD))]
#: Who works cases: the team's people and supervisors, their leads, and the platform acting
#: for them.
CaseWorker = Annotated[
    CallerContext,
    Depends(require_role(Role.OPS_LEAD, Role.SUPERVISOR, Role.AGENT, Role.INTEGRATION)),
]


def _problem(description: str) -> dict[str, object]:
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {}}}


CHANGE_RESPONSES: dict[int | str, dict[str, object]] = {
    404: _problem("No such case in this tenant"),
    409: _problem(
        "The case's state does not allow this action (`allowed` lists those it does), or the "
        "case kept changing concurrently"
    ),
}


@router.get("/case-rules", response_model=CaseRulesPublic, summary="Read the case rules")
async def get_case_rules(caller: Caller, session: SessionDep) -> CaseRulesPublic:
    """The tenant's case rules, topic owners and SLA clocks; the defaults (version 0) until set."""
    found = await cases.read_case_settings(session, tenant=caller.tenant)
    return found.public


@router.put("/case-rules", response_model=CaseRulesPublic, summary="Set the case rules")
async def put_case_rules(
    update: CaseRulesUpdate, caller: RuleSetter, session: SessionDep, state: State
) -> CaseRulesPublic:
    """Replace when a response opens a case, which team owns it and its SLA clocks. Cases
    already open keep the clocks they opened under."""
    clocks = state.component(cases.CaseClocks)
    saved = await cases.put_case_settings(
        session=session, caller=caller, update=update, now=clocks.now()
    )
    state.component(cases.CaseSettingsCache).put(caller.tenant, saved)
    return saved.public


@router.get("/cases", response_model=CasePage, summary="List cases")
async def list_cases(
    caller: Caller,
    session: SessionDep,
    status: Annotated[CaseState | None, Query(description="Only cases in this state.")] = None,
    owner_team: Annotated[Name | None, Query(description="Only this team's cases.")] = None,
    breached: Annotated[
        bool | None, Query(description="Only cases with (true) or without (false) a breach.")
    ] = None,
    topic: Annotated[Name | None, Query(description="Only cases about this topic.")] = None,
    cursor: Annotated[
        uuid.UUID | None, Query(description="The `next_cursor` of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CasePage:
    """The tenant's cases, newest first, a page at a time."""
    items, next_cursor = await cases.list_cases(
        session=session,
        caller=caller,
        state=status,
        team=owner_team,
        breached=breached,
        topic=topic,
        cursor=cursor,
        limit=limit,
    )
    return CasePage(items=items, next_cursor=next_cursor)


@router.get(
    "/cases/root-causes",
    response_model=RootCausePareto,
    summary="Root causes, most frequent first",
)
async def root_causes(
    caller: Caller, session: SessionDep, start: ranges.From = None, end: ranges.To = None
) -> RootCausePareto:
    """A Pareto of the documented root causes (category x topic x team) of the cases opened in
    ``[from, to)`` (by default the 90 days up to now): counts, shares and running shares, and
    how many of each were recurrences (opened within 30 days after a case with the same cause
    closed)."""
    ranges.ordered(start, end)
    end = end or datetime.now(UTC)
    start = start or end - ROOT_CAUSE_DEFAULT_SPAN
    return await cases.root_causes(session=session, caller=caller, start=start, end=end)


@router.get(
    "/cases/{case_id}",
    response_model=CaseDetail,
    summary="Read a case, its response and its history",
    responses={404: _problem("No such case in this tenant")},
)
async def get_case(case_id: uuid.UUID, caller: Caller, session: SessionDep) -> CaseDetail:
    try:
        return await cases.get_case(session=session, caller=caller, case_id=case_id)
    except cases.CaseNotFound as exc:
        raise _not_found(case_id) from exc


async def _change(
    *,
    state: State,
    session: SessionDep,
    caller: CallerContext,
    case_id: uuid.UUID,
    change: Callable[[Case, datetime], Transition],
) -> CasePublic:
    """Run one transition and map the core's refusals to problems."""
    now = state.component(cases.CaseClocks).now()
    try:
        return await cases.change_case(
            session=session,
            caller=caller,
            case_id=case_id,
            now=now,
            change=lambda case: change(case, now),
        )
    except cases.CaseNotFound as exc:
        raise _not_found(case_id) from exc
    except domain.TransitionRefused as exc:
        raise Problem(
            409,
            f"A case that is {exc.state.value} cannot {exc.action.value}; "
            f"allowed: {', '.join(a.value for a in exc.allowed) or 'nothing'}.",
            slug="case-transition-refused",
            title="Transition not allowed",
            state=exc.state.value,
            action=exc.action.value,
            allowed=[action.value for action in exc.allowed],
        ) from exc
    except domain.CaseInputError as exc:
        raise Problem(422, str(exc), slug="validation-error", title="Validation failed") from exc
    except cases.CaseChangedConcurrently as exc:
        raise Problem(
            409,
            "The case kept changing while this request was applied; read it and try again.",
            slug="case-changed-concurrently",
        ) from exc


def _not_found(case_id: uuid.UUID) -> Problem:
    return Problem(404, f"No case {case_id} in this tenant.", slug="case-not-found")


@router.post(
    "/cases/{case_id}/assign",
    response_model=CasePublic,
    summary="Assign a case",
    responses=CHANGE_RESPONSES,
)
async def assign(
    case_id: uuid.UUID,
    body: AssignRequest,
    caller: CaseWorker,
    session: SessionDep,
    state: State,
) -> CasePublic:
    """Give the case an owner (in any state but closed)."""
    return await _change(
        state=state,
        session=session,
        caller=caller,
        case_id=case_id,
        change=lambda case, now: domain.assign(case, owner=body.owner, by=caller.subject, at=now),
    )


@router.post(
    "/cases/{case_id}/acknowledge",
    response_model=CasePublic,
    summary="Acknowledge a case",
    responses=CHANGE_RESPONSES,
)
async def acknowledge(
    case_id: uuid.UUID, caller: CaseWorker, session: SessionDep, state: State
) -> CasePublic:
    """``open`` → ``acknowledged``: the team has read it (this stops the acknowledge clock)."""
    return await _change(
        state=state,
        session=session,
        caller=caller,
        case_id=case_id,
        change=lambda case, now: domain.acknowledge(case, by=caller.subject, at=now),
    )


@router.post(
    "/cases/{case_id}/actions",
    response_model=CasePublic,
    summary="Document the corrective action",
    responses=CHANGE_RESPONSES,
)
async def document_action(
    case_id: uuid.UUID,
    body: ActionRequest,
    caller: CaseWorker,
    session: SessionDep,
    state: State,
) -> CasePublic:
    """``acknowledged`` → ``action_documented``: the corrective action and its root cause (this
    stops the 72-hour action clock)."""
    return await _change(
        state=state,
        session=session,
        caller=caller,
        case_id=case_id,
        change=lambda case, now: domain.document_action(
            case,
            corrective_action=body.corrective_action,
            root_cause=body.root_cause.to_domain(),
            by=caller.subject,
            at=now,
        ),
    )


@router.post(
    "/cases/{case_id}/close",
    response_model=CasePublic,
    summary="Close a case",
    responses=CHANGE_RESPONSES,
)
async def close(
    case_id: uuid.UUID,
    body: CloseRequest,
    caller: CaseWorker,
    session: SessionDep,
    state: State,
) -> CasePublic:
    """``action_documented`` → ``closed``, with the resolution and whether the customer was
    contacted (this stops the close clock)."""
    return await _change(
        state=state,
        session=session,
        caller=caller,
        case_id=case_id,
        change=lambda case, now: domain.close(
            case,
            resolution=body.resolution,
            customer_contacted=body.customer_contacted,
            by=caller.subject,
            at=now,
        ),
    )


@router.post(
    "/cases/{case_id}/reopen",
    response_model=CasePublic,
    summary="Reopen a case",
    responses=CHANGE_RESPONSES,
)
async def reopen(
    case_id: uuid.UUID,
    caller: CaseWorker,
    session: SessionDep,
    state: State,
    body: Annotated[ReopenRequest | None, Body()] = None,
) -> CasePublic:
    """``closed`` → ``open``: a new round, every clock restarting from now."""
    reason = body.reason if body is not None else None
    return await _change(
        state=state,
        session=session,
        caller=caller,
        case_id=case_id,
        change=lambda case, now: domain.reopen(case, by=caller.subject, at=now, reason=reason),
    )
