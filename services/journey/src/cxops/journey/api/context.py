"""``/v1/journey/customers/context`` and ``/v1/journey/customers/{id}/timeline``: the customer's
story for the agent desktop, from journey's own tables only.

Mount this router before any router with ``/customers/{id}``: ``/customers/context`` would
otherwise be read as the customer ``context``.
"""

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from cxops.common.auth import CallerContext, Role, require_role
from cxops.common.db import SessionDep
from cxops.common.errors import PROBLEM_MEDIA_TYPE, Problem
from cxops.common.service import State
from cxops.common.validation import UtcDateTime
from cxops.journey import context
from cxops.journey.identity_store import identity_spelling
from cxops.journey.schemas import CustomerContext, CustomerId, Timeline
from cxops.journey.settings import JourneySettings

router = APIRouter(tags=["customers"])

#: Who reads a customer's story: the agents and supervisors serving them, their leads, and the
#: platform's desktop integration.
Reader = Annotated[
    CallerContext,
    Depends(require_role(Role.AGENT, Role.SUPERVISOR, Role.OPS_LEAD, Role.INTEGRATION)),
]


def current_time() -> datetime:
    """Now, for the windows and SLA clocks; a test overrides this dependency to move time."""
    return datetime.now(UTC)


Now = Annotated[datetime, Depends(current_time)]


def _due_soon(state: State) -> timedelta:
    settings = state.settings
    assert isinstance(settings, JourneySettings)
    return timedelta(hours=settings.case_due_soon_hours)


def _problem(description: str) -> dict[str, object]:
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {}}}


@router.get(
    "/customers/context",
    response_model=CustomerContext,
    summary="The agent desktop's context of a customer",
    responses={
        404: _problem("No customer with this identifier (or id) in this tenant"),
        422: _problem("`identifier` is not `type:value`, or neither it nor `customer_id` given"),
    },
)
async def get_context(
    caller: Reader,
    session: SessionDep,
    state: State,
    now: Now,
    identifier: Annotated[
        str | None,
        Query(
            max_length=400,
            description="`type:value`, such as `phone:+34600111222` (normalised as identity "
            "resolution does).",
        ),
    ] = None,
    customer_id: Annotated[str | None, Query(max_length=64)] = None,
) -> CustomerContext:
    """The resolved customer, their current journey stage (the latest interaction's `stage`),
    the last 10 interactions, open cases with their SLA clocks, the last feedback and its
    sentiment, contacts in the last 7 days, the last 30 days' proactive actions (taken or not,
    so that nobody repeats one) and open routing tasks. Give `identifier` or `customer_id`."""
    if (identifier is None) == (customer_id is None):
        raise Problem(
            422,
            "Give exactly one of `identifier` and `customer_id`.",
            slug="validation-error",
            title="Validation failed",
            errors=[
                {
                    "field": "identifier",
                    "in": "query",
                    "message": "give identifier or customer_id, not both or neither",
                    "code": "missing" if identifier is None else "conflict",
                }
            ],
        )
    return await context.customer_context(
        context.StoryRepository(session, tenant=caller.tenant),
        customer_id=customer_id,
        identifier=identifier,
        spelling=identity_spelling(state.settings),
        now=now,
        due_soon=_due_soon(state),
    )


@router.get(
    "/customers/{customer_id}/timeline",
    response_model=Timeline,
    summary="A customer's timeline",
    responses={404: _problem("No such customer in this tenant")},
)
async def get_timeline(
    customer_id: CustomerId,
    caller: Reader,
    session: SessionDep,
    state: State,
    now: Now,
    start: Annotated[UtcDateTime | None, Query(alias="from", description="From this time.")] = None,
    end: Annotated[UtcDateTime | None, Query(alias="to", description="Before this time.")] = None,
) -> Timeline:
    """Interactions, feedback responses, closed-loop cases (state, deadlines, breached clocks),
    routing tasks (agent and outcome) and proactive actions taken, oldest first, each placed at
    the time it began. At most 1,000 items, the newest: `truncated` says when more lie before."""
    if start is not None and end is not None and end <= start:
        raise Problem(
            422,
            "`to` must come after `from`.",
            slug="validation-error",
            title="Validation failed",
            errors=[
                {"field": "to", "in": "query", "message": "must be after from", "code": "range"}
            ],
        )
    return await context.timeline(
        context.StoryRepository(session, tenant=caller.tenant),
        customer_id=customer_id,
        start=start,
        end=end,
        now=now,
        due_soon=_due_soon(state),
    )
