"""``/v1/journey/customers``: the profiles identity resolution made, found by id or by any
identifier value, and the split that undoes a wrong merge."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from cxops.common.auth import CallerContext, Role, require_role
from cxops.common.db import SessionDep
from cxops.common.errors import PROBLEM_MEDIA_TYPE, Problem
from cxops.common.service import State
from cxops.journey import customers
from cxops.journey.identity_store import identity_spelling
from cxops.journey.schemas import (
    CustomerId,
    CustomerList,
    CustomerPublic,
    SplitIn,
    SplitResult,
)

router = APIRouter(prefix="/customers", tags=["customers"])

Reader = Annotated[
    CallerContext,
    Depends(
        require_role(
            Role.INTEGRATION, Role.OPS_LEAD, Role.SUPERVISOR, Role.AGENT, Role.VIEWER, Role.ADMIN
        )
    ),
]
Splitter = Annotated[CallerContext, Depends(require_role(Role.OPS_LEAD, Role.SUPERVISOR))]

_NOT_FOUND = {"description": "No such customer", "content": {PROBLEM_MEDIA_TYPE: {}}}


@router.get("", response_model=CustomerList, summary="Find customers by an identifier")
async def find_customers(
    caller: Reader,
    session: SessionDep,
    state: State,
    identifier: Annotated[
        str,
        Query(
            min_length=3,
            max_length=400,
            pattern=r"^[a-z][a-z0-9_]{0,63}:.+$",
            description="`type:value`, such as `email:ana@example.com` or `phone:+34600111222`; "
            "the value is normalised as resolution normalises it.",
        ),
    ],
) -> CustomerList:
    """The profile that holds the value; for a value no profile holds because it is blocked (a
    shared inbox, a placeholder number), the profiles whose interactions carried it (up to 50).
    An empty list when nobody has it."""
    found = customers.parse_identifier(identifier, identity_spelling(state.settings))
    if found is None:
        raise Problem(
            422,
            f"identifier: {identifier!r} is not a valid value of its type",
            errors=[
                {
                    "field": "identifier",
                    "in": "query",
                    "message": "not a valid value of its type",
                    "code": "identifier_invalid",
                }
            ],
        )
    items = await customers.find_customers(session, tenant=caller.tenant, identifier=found)
    return CustomerList(items=items)


@router.get(
    "/{customer_id}",
    response_model=CustomerPublic,
    summary="Read a customer",
    responses={404: _NOT_FOUND},
)
async def get_customer(
    caller: Reader, session: SessionDep, customer_id: CustomerId
) -> CustomerPublic:
    """The profile: its identifiers, the merges that built it (the two values and the first
    interaction that linked them), the joins a cap or a split refused, and its splits."""
    try:
        return await customers.get_customer(session, tenant=caller.tenant, customer_id=customer_id)
    except customers.CustomerNotFound:
        raise Problem(404, f"no customer {customer_id}") from None


@router.post(
    "/{customer_id}/split",
    response_model=SplitResult,
    summary="Split a wrong merge",
    responses={
        404: _NOT_FOUND,
        422: {
            "description": "A value the profile does not hold, or all of them",
            "content": {PROBLEM_MEDIA_TYPE: {}},
        },
    },
)
async def split_customer(
    caller: Splitter, state: State, customer_id: CustomerId, payload: SplitIn
) -> SplitResult:
    """Put `identifiers` apart from the rest of the profile: the profile is resolved again
    without joining the two sides, and no later interaction joins them either (its refusal is
    recorded on the profiles). The split is recorded with who made it and why."""
    try:
        return await customers.split_customer(
            state.db,
            tenant=caller.tenant,
            customer_id=customer_id,
            identifiers=payload.identifiers,
            reason=payload.reason,
            by=caller.subject,
            spelling=identity_spelling(state.settings),
        )
    except customers.CustomerNotFound:
        raise Problem(404, f"no customer {customer_id}") from None
    except customers.SplitRefused as exc:
        raise Problem(
            422,
            f"identifiers: {exc}",
            errors=[
                {"field": "identifiers", "in": "body", "message": str(exc), "code": "split_refused"}
            ],
        ) from None
