"""``/v1/routing/staffing``: Erlang C and Erlang A for one interval, and a forecast's plan.

The bodies and answers are the options and ``--json`` output of ``cxops staffing`` (the same
models in :mod:`cxops.routing.formats`, the same functions in :mod:`cxops.routing.staffing`), so
the API and the command give the same figures for the same input.

**Who may call.** These are calculations: nothing is stored or published (``from-history`` only
reads the queue's tasks), so a POST here changes nothing. Every role that plans or reads may
compute: ``admin``,
``ops_lead``, ``supervisor``, ``integration`` and ``viewer``; ``agent`` is refused (403), as
agents do not plan staffing.

**Bounds**, so that one request cannot hold a core for long: a body's fields are bounded by its
schema (at most 100,000 ``agents``, 10,000 ``intervals``, a day for any duration); beyond the
schema, one interval may carry at most 50,000 erlangs of traffic, sizing may need at most 100,000
agents for one interval and 2,000,000 over a plan's intervals, and Erlang A may take at most
:data:`ERLANG_A_MAX_STEPS` steps (about a second: sizing up to about a thousand erlangs). Past a
bound the answer is 422, naming the field, or ``body`` for Erlang A's work. The endpoints are
plain functions, run in the thread pool, so the event loop keeps serving while one computes.
"""

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.exceptions import RequestValidationError

from cxops.common.auth import CallerContext, Role, require_role
from cxops.common.db import SessionDep
from cxops.common.errors import PROBLEM_MEDIA_TYPE, Problem
from cxops.routing import staffing
from cxops.routing.formats import (
    AbandonmentFigures,
    ErlangARequest,
    ErlangCRequest,
    StaffingFigures,
    StaffingFromHistoryRequest,
    StaffingInputT,
    StaffingPlan,
    StaffingPlanRequest,
    UnplannablePeriod,
    plan_from_history,
)
from cxops.routing.repository import RoutingRepository

#: Erlang A's work bound per request (a step is a fraction of a microsecond to about one).
ERLANG_A_MAX_STEPS = 2_000_000

router = APIRouter(prefix="/staffing", tags=["staffing"])

Planner = Annotated[
    CallerContext,
    Depends(
        require_role(Role.OPS_LEAD, Role.SUPERVISOR, Role.INTEGRATION, Role.VIEWER),
    ),
]


def _invalid(description: str) -> dict[int | str, dict[str, Any]]:
    return {422: {"description": description, "content": {PROBLEM_MEDIA_TYPE: {}}}}


_ONE_INTERVAL = (
    "Invalid input; each problem names its field (`errors[].field`). Beyond what the schema "
    "states: at most 50,000 erlangs of traffic (volume * aht_seconds / the interval length; "
    "field `volume`), and sizing that needs at most 100,000 agents (field `max_occupancy`)"
)


def _checked(request: StaffingInputT) -> StaffingInputT:
    """The request, or 422 with what its field types could not say (sizes, spacing)."""
    problems = list(request.problems())
    if problems:
        raise RequestValidationError(
            [{"loc": ("body", *p.place), "msg": p.message, "type": p.code} for p in problems]
        )
    return request


@router.post(
    "/erlang-c",
    response_model=StaffingFigures,
    summary="Size one interval with Erlang C",
    responses=_invalid(_ONE_INTERVAL + "."),
)
def erlang_c(request: ErlangCRequest, caller: Planner) -> StaffingFigures:
    """The fewest agents that answer `service_level` of the contacts within `target_seconds`
    while busy at most `max_occupancy` of the time, and the staff to pay after `shrinkage`; or,
    with `agents`, what that many achieve. `asa_seconds` is null when the agents cannot keep up.
    The same figures as `cxops staffing erlang-c --json`."""
    return staffing.erlang_c(request=_checked(request))


@router.post(
    "/erlang-a",
    response_model=AbandonmentFigures,
    summary="Size one interval with Erlang A (customers who hang up)",
    responses=_invalid(
        _ONE_INTERVAL + "; and a calculation of at most 2,000,000 steps (field `body`, problem "
        "type `calculation-too-large`: an overloaded queue of very patient customers, or a very "
        "large pool, takes more)."
    ),
)
def erlang_a(request: ErlangARequest, caller: Planner) -> AbandonmentFigures:
    """Erlang C's figures when customers hang up after `patience_seconds` on average, plus
    `abandon_probability`. The service level is the share of all offered contacts answered
    within the target; `asa_seconds` is the mean wait of those answered. The same figures as
    `cxops staffing erlang-a --json`."""
    checked = _checked(request)
    try:
        return staffing.erlang_a(request=checked, max_steps=ERLANG_A_MAX_STEPS)
    except staffing.TooMuchWork as exc:
        raise Problem(
            422,
            f"{exc}. Size it with erlang-c, or with `cxops staffing erlang-a` on your own machine.",
            slug="calculation-too-large",
            title="Calculation too large",
            errors=[{"field": "body", "in": "body", "message": str(exc), "code": "too_much_work"}],
        ) from exc


@router.post(
    "/plan",
    response_model=StaffingPlan,
    summary="Size every interval of a forecast with Erlang C",
    responses=_invalid(
        "Invalid input; each problem names its field (`errors[].field`). Beyond what the schema "
        "states: interval starts in order and evenly spaced (field "
        "`intervals.N.interval_start`, the first one off), at most 50,000 erlangs of traffic in "
        "an interval (`intervals.N.volume`), and sizing that needs at most 100,000 agents in an "
        "interval (`max_occupancy`) and 2,000,000 over all intervals (`intervals`)."
    ),
)
def plan(request: StaffingPlanRequest, caller: Planner) -> StaffingPlan:
    """Every interval sized with Erlang C, and the totals: staff and agent hours, peaks, and the
    service level and speed of answer averaged over contacts. An interval without
    `aht_seconds` takes the plan's; the interval length is `interval_minutes`, by default the
    spacing of the starts (30 minutes for a single interval). Starts are returned in UTC. The
    same figures as `cxops staffing plan FORECAST.csv --json` for the same forecast."""
    return staffing.plan(request=_checked(request))


@router.post(
    "/from-history",
    response_model=StaffingPlan,
    summary="Size a queue from what it saw in a past period",
    responses={
        **_invalid(
            "Invalid input; each problem names its field. Beyond the schema: `to` after `from`, "
            "at most 10,000 intervals, and at least one task completed in the period (field "
            "`from`), as for `/plan`."
        ),
        404: {"description": "No such queue in this tenant", "content": {PROBLEM_MEDIA_TYPE: {}}},
    },
)
async def from_history(
    request: StaffingFromHistoryRequest, caller: Planner, session: SessionDep
) -> StaffingPlan:
    """The plan the queue's observed volume and handle time call for: its tasks per interval
    between `from` and `to`, with the mean handle time of those completed in each interval
    (the period's mean where an interval has none), sized with Erlang C against the queue's own
    service level unless `target_seconds` and `service_level` say otherwise. Reads the queue's
    tasks; stores nothing."""
    repository = RoutingRepository(session, tenant=caller.tenant)
    queue = await repository.queue_named(request.queue)
    if queue is None:
        raise Problem(
            404, f"No queue named {request.queue!r} in this tenant.", slug="queue-not-found"
        )
    arrivals = await repository.arrivals(queue["name"], request.start, request.end)
    level = queue["service_level"]
    try:
        plan_request = plan_from_history(
            request,
            arrivals=arrivals,
            answer_within_seconds=level["answer_within_seconds"],
            target=level["target"],
        )
    except UnplannablePeriod as exc:
        problem = exc.problem
        raise RequestValidationError(
            [{"loc": ("body", *problem.place), "msg": problem.message, "type": problem.code}]
        ) from exc
    checked = _checked(plan_request)
    return await asyncio.to_thread(staffing.plan, request=checked)
