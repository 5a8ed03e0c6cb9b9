"""``/v1/keys``: an admin manages the API keys of their own tenant."""

import uuid

from fastapi import APIRouter, Response

from cxops.common.db import SessionDep
from cxops.common.errors import PROBLEM_RESPONSES, Problem
from cxops.gateway import keys
from cxops.gateway.api.deps import Runtime
from cxops.gateway.auth import Admin
from cxops.gateway.schemas import CreatedKey, KeyCreate, KeyList

router = APIRouter(prefix="/v1/keys", tags=["keys"], responses=PROBLEM_RESPONSES)


@router.post("", status_code=201, summary="Create an API key")
async def create_key(
    body: KeyCreate, caller: Admin, runtime: Runtime, response: Response
) -> CreatedKey:
    """The key is in the response once; only its hash is kept. It works from the next request
    on, even if its prefix had just been tried as unknown."""
    async with runtime.db.transaction() as session:
        record, plaintext = await keys.create_key(
            session,
            tenant=caller.tenant,
            role=body.role,
            name=body.name,
            agent_id=body.agent_id,
        )
    runtime.keys.invalidate(record.prefix)  # after the commit, as for a revocation
    response.headers["Cache-Control"] = "no-store"
    return CreatedKey(**record.model_dump(), key=plaintext)


@router.get("", summary="List the tenant's API keys")
async def list_keys(caller: Admin, session: SessionDep) -> KeyList:
    """Revoked keys included (with ``revoked_at``); never a key or its hash."""
    return KeyList(items=await keys.list_keys(session, tenant=caller.tenant))


@router.delete("/{key_id}", summary="Revoke an API key", responses={404: {}})
async def revoke_key(key_id: uuid.UUID, caller: Admin, runtime: Runtime) -> keys.ApiKeyRecord:
    """Refused from the next request on, through this gateway at once, through other
    replicas within ``key_cache_ttl_seconds``."""
    try:
        async with runtime.db.transaction() as session:
            record = await keys.revoke_key(session, key_id=key_id, tenant=caller.tenant)
    except keys.KeyNotFound as exc:
        raise Problem(404, f"No key {key_id} in tenant '{caller.tenant}'.") from exc
    # After the commit: a lookup racing with the revocation cannot re-cache the old state.
    runtime.keys.invalidate(record.prefix)
    return record
