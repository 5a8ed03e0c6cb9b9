"""``/v1/audit``: an admin reads their tenant's audit log."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from cxops.common.db import SessionDep
from cxops.common.errors import PROBLEM_RESPONSES
from cxops.common.validation import UtcDateTime
from cxops.gateway.audit import query_audit
from cxops.gateway.auth import Admin
from cxops.gateway.schemas import AuditPage, AuditRecord

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=PROBLEM_RESPONSES)


@router.get("", summary="The tenant's audit log, newest first")
async def read_audit(
    caller: Admin,
    session: SessionDep,
    since: Annotated[UtcDateTime | None, Query(description="Arrived at or after")] = None,
    until: Annotated[UtcDateTime | None, Query(description="Arrived before")] = None,
    method: Literal["POST", "PUT", "PATCH", "DELETE"] | None = None,
    status: Annotated[int | None, Query(ge=100, le=599)] = None,
    key_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[uuid.UUID | None, Query(description="`next_cursor` of the page before")] = (
        None
    ),
) -> AuditPage:
    """Only the caller's tenant, whatever the filters."""
    rows, next_cursor = await query_audit(
        session,
        tenant=caller.tenant,
        since=since,
        until=until,
        method=method,
        status=status,
        key_id=key_id,
        cursor=cursor,
        limit=limit,
    )
    return AuditPage(
        items=[AuditRecord.model_validate(row) for row in rows], next_cursor=next_cursor
    )
