"""Live complaint alerts: ``/v1/feedback/alerts`` and the tenant's ``/alert-rules``."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from cxops.common.auth import CallerContext, Role, require_role
from cxops.common.db import SessionDep
from cxops.common.errors import PROBLEM_MEDIA_TYPE, Problem
from cxops.common.service import State
from cxops.feedback import alerting
from cxops.feedback.schemas import (
    AlertDetail,
    AlertPage,
    AlertPublic,
    AlertRulesDocument,
    AlertRulesPublic,
    AlertStatus,
    EvaluationPublic,
)

router = APIRouter(tags=["alerts"])

Reader = Annotated[
    CallerContext, Depends(require_role(Role.SUPERVISOR, Role.OPS_LEAD, Role.VIEWER))
]
Acknowledger = Annotated[CallerContext, Depends(require_role(Role.SUPERVISOR, Role.OPS_LEAD))]
Operator = Annotated[CallerContext, Depends(require_role(Role.OPS_LEAD))]


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {}}}


_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: _problem("No such alert in this tenant")}


def _not_found(alert_id: uuid.UUID) -> Problem:
    return Problem(404, f"No alert {alert_id} in this tenant.", slug="alert-not-found")


@router.get("/alerts", response_model=AlertPage, summary="List complaint alerts")
async def list_alerts(
    caller: Reader,
    session: SessionDep,
    status: Annotated[AlertStatus | None, Query(description="Only alerts in this state.")] = None,
    topic: Annotated[str | None, Query(max_length=64, description="Only this topic.")] = None,
    cursor: Annotated[
        uuid.UUID | None, Query(description="The `next_cursor` of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AlertPage:
    """The tenant's alerts, newest first, a page at a time."""
    rows, next_cursor = await alerting.list_alerts(
        session=session, caller=caller, status=status, topic=topic, cursor=cursor, limit=limit
    )
    return AlertPage(
        items=[AlertPublic.model_validate(row) for row in rows], next_cursor=next_cursor
    )


@router.post(
    "/alerts/evaluate", response_model=EvaluationPublic, summary="Evaluate the closed periods now"
)
async def evaluate(caller: Operator, state: State) -> EvaluationPublic:
    """Run the detector now on the tenant's latest closed hour and day (it also runs by itself
    at each close) and return the alerts this call raised: none for a period already alerted.
    """
    raised = await state.component(alerting.AlertDetector).evaluate_tenant(caller.tenant)
    return EvaluationPublic(raised=raised)


@router.get(
    # Only a UUID here: ``/alerts/evaluate`` (POST) is another resource, not an alert.
    "/alerts/{alert_id:uuid}",
    response_model=AlertDetail,
    summary="Read a complaint alert and the responses behind it",
    responses=_NOT_FOUND,
)
async def get_alert(alert_id: uuid.UUID, caller: Reader, session: SessionDep) -> AlertDetail:
    """The alert, and the responses counted in it (newest first, at most 100) with their
    total."""
    try:
        return await alerting.get_alert(session=session, caller=caller, alert_id=alert_id)
    except alerting.AlertNotFound as exc:
        raise _not_found(alert_id) from exc


@router.post(
    "/alerts/{alert_id}/acknowledge",
    response_model=AlertPublic,
    summary="Acknowledge a complaint alert",
    responses={**_NOT_FOUND, 409: _problem("The alert was already acknowledged")},
)
async def acknowledge(
    alert_id: uuid.UUID, caller: Acknowledger, session: SessionDep
) -> AlertPublic:
    """Record who acknowledged the alert and when. Acknowledging it again is a 409 that names
    who acknowledged it first and when."""
    try:
        return await alerting.acknowledge(session=session, caller=caller, alert_id=alert_id)
    except alerting.AlertNotFound as exc:
        raise _not_found(alert_id) from exc
    except alerting.AlreadyAcknowledged as exc:
        raise Problem(
            409,
            f"Alert {alert_id} is already acknowledged.",
            slug="alert-already-acknowledged",
            acknowledged_by=exc.alert.acknowledged_by,
            acknowledged_at=exc.alert.acknowledged_at.isoformat()
            if exc.alert.acknowledged_at
            else None,
        ) from exc


@router.get("/alert-rules", response_model=AlertRulesPublic, summary="Read the alert rules")
async def get_rules(caller: Reader, session: SessionDep) -> AlertRulesPublic:
    """The tenant's real-time rule and detector settings (the defaults until a PUT)."""
    return await alerting.get_rules(session=session, caller=caller)


@router.put("/alert-rules", response_model=AlertRulesPublic, summary="Replace the alert rules")
async def put_rules(
    document: AlertRulesDocument, caller: Operator, session: SessionDep, state: State
) -> AlertRulesPublic:
    """Replace the rules; in force on this replica at once, on the others within seconds."""
    return await alerting.put_rules(
        session=session,
        rules=state.component(alerting.AlertRules),
        caller=caller,
        document=document,
    )
