"""Request and response bodies of the gateway's own endpoints."""

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from cxops.common.auth import Role
from cxops.gateway.keys import ApiKeyRecord


class KeyCreate(BaseModel):
    """A new key in the admin's own tenant."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    name: str = Field(min_length=1, max_length=200, examples=["crm-integration"])


class CreatedKey(ApiKeyRecord):
    key: str = Field(description="The API key. Shown this once: store it now.")


class KeyList(BaseModel):
    items: list[ApiKeyRecord]


class AuditRecord(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    key_id: uuid.UUID | None
    tenant: str | None
    method: str
    path: str
    status: int
    request_id: str | None
    occurred_at: datetime = Field(description="When the request reached the gateway.")


class AuditPage(BaseModel):
    items: list[AuditRecord]
    next_cursor: uuid.UUID | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page."
    )
