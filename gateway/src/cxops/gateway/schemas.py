"""Request and response bodies of the gateway's own endpoints."""

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from cxops.common.auth import Role
from cxops.gateway.keys import ApiKeyRecord, check_agent_binding


def _agent_id_only_for_agents(schema: dict[str, Any]) -> None:
    """The binding rule in the schema itself (``if``/``then``), so that a client or a test
    generator built from the OpenAPI document knows a bound key has role ``agent``."""
    schema["allOf"] = [
        {
            "if": {"properties": {"agent_id": {"type": "string"}}, "required": ["agent_id"]},
            "then": {"properties": {"role": {"const": Role.AGENT.value}}},
        }
    ]


class KeyCreate(BaseModel):
    """A new key in the admin's own tenant."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_agent_id_only_for_agents)

    role: Role
    name: str = Field(min_length=1, max_length=200, examples=["crm-integration"])
    agent_id: uuid.UUID | None = Field(
        default=None,
        description=(
            "The routing agent the key acts as (its id). Only for role `agent`: such a key may "
            "act on that agent's offers and tasks only. An `agent` key without one is valid but "
            "cannot act on offers; an integration acting for many agents gets role "
            "`integration` instead."
        ),
    )

    @field_validator("agent_id")
    @classmethod
    def _only_for_agents(cls, value: uuid.UUID | None, info: ValidationInfo) -> uuid.UUID | None:
        role = info.data.get("role")  # absent when the role itself was refused
        if role is not None:
            check_agent_binding(role=role, agent_id=value)
        return value


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
