"""``/v1/journey/triggers`` and ``/v1/journey/trigger-settings``: proactive triggers, the
tenant's limits on proactive contact, a trigger's effect against its holdout and its dry run."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from cxops.common.auth import Caller, CallerContext, Role, require_role
from cxops.common.db import SessionDep
from cxops.common.errors import PROBLEM_MEDIA_TYPE
from cxops.common.service import State
from cxops.common.validation import UtcDateTime
from cxops.journey import triggers
from cxops.journey.models import TriggerVersion
from cxops.journey.schemas import (
    TRIGGER_KEY_PATTERN,
    ComparisonPublic,
    DryRunDay,
    DryRunPublic,
    EffectPublic,
    IntervalPublic,
    Period,
    TriggerList,
    TriggerPublic,
    TriggerPut,
    TriggerSettingsPublic,
    TriggerSettingsPut,
)
from cxops.stats.inference import Change

router = APIRouter()

Editor = Annotated[CallerContext, Depends(require_role(Role.OPS_LEAD))]
KeyPath = Annotated[
    str,
    Path(
        pattern=TRIGGER_KEY_PATTERN,
        description="Lower-case letters, digits, `-` and `_`, up to 64, starting alphanumeric.",
    ),
]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such trigger", "content": {PROBLEM_MEDIA_TYPE: {}}}
}


def _public(row: TriggerVersion) -> TriggerPublic:
    return TriggerPublic.model_validate(
        {
            **row.body,
            "key": row.key,
            "version": row.version,
            "by": row.by,
            "created_at": row.created_at,
        }
    )


@router.put(
    "/triggers/{key}",
    response_model=TriggerPublic,
    tags=["triggers"],
    summary="Create or change a trigger",
    responses={201: {"model": TriggerPublic, "description": "Created"}},
)
async def put_trigger(
    key: KeyPath,
    payload: TriggerPut,
    caller: Editor,
    session: SessionDep,
    state: State,
    response: Response,
) -> TriggerPublic:
    """The whole trigger: 201 when new, 200 otherwise; a change is a new ``version`` (the
    action log names the version that decided each row), the same body keeps the version.
    Roles ``ops_lead`` and ``admin``."""
    row, created = await triggers.put_trigger(
        session=session,
        caller=caller,
        key=key,
        payload=payload,
        now=state.component(triggers.Triggers).clock(),
    )
    if created:
        response.status_code = 201
    return _public(row)


@router.get("/triggers", response_model=TriggerList, tags=["triggers"], summary="List triggers")
async def list_triggers(caller: Caller, session: SessionDep) -> TriggerList:
    rows = await triggers.list_triggers(session=session, caller=caller)
    return TriggerList(items=[_public(row) for row in rows])


@router.get(
    "/triggers/{key}",
    response_model=TriggerPublic,
    tags=["triggers"],
    summary="Read a trigger's current version",
    responses=NOT_FOUND,
)
async def get_trigger(key: KeyPath, caller: Caller, session: SessionDep) -> TriggerPublic:
    return _public(await triggers.get_trigger(session=session, caller=caller, key=key))


def _comparison(change: Change | None) -> ComparisonPublic | None:
    if change is None:
        return None
    return ComparisonPublic(
        held_out=change.before,
        treated=change.after,
        difference=change.difference,
        interval=IntervalPublic(
            low=change.interval.low, high=change.interval.high, level=change.interval.level
        ),
        p_value=change.p_value,
        significant=change.significant,
        too_small=change.too_small,
        test=change.test,
    )


@router.get(
    "/triggers/{key}/effect",
    response_model=EffectPublic,
    response_model_by_alias=True,
    tags=["triggers"],
    summary="Treated against held-out customers",
    responses=NOT_FOUND,
)
async def get_effect(
    key: KeyPath,
    caller: Caller,
    session: SessionDep,
    start: Annotated[UtcDateTime, Query(alias="from", description="Decisions from this time.")],
    end: Annotated[UtcDateTime, Query(alias="to", description="Decisions before this time.")],
    days: Annotated[int, Query(ge=1, le=365, description="Follow-up window in days.")] = 30,
) -> EffectPublic:
    """Customers the trigger treated and held out in ``[from, to)``, compared on what followed
    within ``days``: the share who complained (a negative answer or a case), their interactions
    (repeat contacts) and the NPS of their first answer; each difference treated minus held out
    with its 95% interval and p-value; and the gestures' cost per complaint avoided."""
    found = await triggers.effect(
        session=session, caller=caller, key=key, start=start, end=end, follow_up_days=days
    )
    return EffectPublic(
        trigger_key=key,
        start=start,
        end=end,
        follow_up_days=days,
        treated=found.treated,
        held_out=found.held_out,
        complaints=_comparison(found.complaints),
        repeat_contacts=_comparison(found.repeat_contacts),
        nps=_comparison(found.nps),
        gesture_cost=found.gesture_cost,
        complaints_avoided=found.complaints_avoided,
        cost_per_complaint_avoided=found.cost_per_complaint_avoided,
    )


@router.post(
    "/triggers/{key}/dry-run",
    response_model=DryRunPublic,
    tags=["triggers"],
    summary="What the trigger would have done over stored history",
    responses=NOT_FOUND,
)
async def post_dry_run(
    key: KeyPath, payload: Period, caller: Editor, session: SessionDep, state: State
) -> DryRunPublic:
    """Replays the stored interactions of ``[from, to)``: the customers it would have acted
    for, by day, and how many matches the caps, quiet hours, holdout and de-duplication would
    have stopped. Stores nothing."""
    run = await triggers.dry_run(
        session=session,
        caller=caller,
        key=key,
        start=payload.start,
        end=payload.end,
        defaults=state.component(triggers.Triggers).default_policy(),
    )
    return DryRunPublic(
        trigger_key=key,
        trigger_version=run.trigger.version,
        customers=len(run.customers),
        fired=run.total("fired"),
        capped=run.total("capped"),
        quiet=run.total("quiet"),
        held_out=run.total("held_out"),
        duplicate=run.total("duplicate"),
        by_day=[DryRunDay(day=day, **vars(counts)) for day, counts in sorted(run.days.items())],
    )


@router.get(
    "/trigger-settings",
    response_model=TriggerSettingsPublic,
    tags=["triggers"],
    summary="The tenant's limits on proactive contact",
)
async def get_settings(caller: Caller, session: SessionDep, state: State) -> TriggerSettingsPublic:
    found = await triggers.contact_policy(
        session, caller.tenant, state.component(triggers.Triggers).default_policy()
    )
    return TriggerSettingsPublic.model_validate(found.model_dump())


@router.put(
    "/trigger-settings",
    response_model=TriggerSettingsPublic,
    tags=["triggers"],
    summary="Set the tenant's limits on proactive contact",
)
async def put_settings(
    payload: TriggerSettingsPut, caller: Editor, session: SessionDep, state: State
) -> TriggerSettingsPublic:
    """The frequency cap across all triggers and the quiet hours; roles ``ops_lead``, ``admin``."""
    stored = await triggers.put_settings(
        session=session,
        caller=caller,
        payload=payload,
        now=state.component(triggers.Triggers).clock(),
    )
    return TriggerSettingsPublic.model_validate(stored.model_dump())
