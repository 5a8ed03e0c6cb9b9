"""The gateway's tables: API keys, the audit log, webhook endpoints and their deliveries.

The migrations in ``migrations/versions`` create these tables by hand; these classes are how the
code reads and writes them.
"""

import uuid
from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlmodel import Field, SQLModel

from cxops.common.db import UTCDateTime


class ApiKey(SQLModel, table=True):
    """One API key. Only the SHA-256 of the key is stored; the plaintext is shown once."""

    __tablename__ = "api_keys"

    id: uuid.UUID = Field(sa_column=Column(Uuid(), primary_key=True))
    prefix: str = Field(sa_column=Column(String(16), nullable=False, unique=True))
    key_hash: str = Field(sa_column=Column(String(64), nullable=False))
    tenant: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    role: str = Field(sa_column=Column(String(32), nullable=False))
    name: str = Field(sa_column=Column(String(200), nullable=False))
    #: The routing agent an ``agent``-role key is bound to (None: unbound, or another role).
    agent_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid()))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    last_used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class AuditEntry(SQLModel, table=True):
    """A mutation that reached the gateway with a valid key, and how it ended."""

    __tablename__ = "audit_log"

    #: UUIDv7: ordered by time, so it doubles as the pagination cursor.
    id: uuid.UUID = Field(sa_column=Column(Uuid(), primary_key=True))
    key_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid(), index=True))
    tenant: str | None = Field(default=None, sa_column=Column(String(64)))
    method: str = Field(sa_column=Column(String(16), nullable=False))
    path: str = Field(sa_column=Column(String(2048), nullable=False))
    status: int = Field(sa_column=Column(Integer(), nullable=False))
    request_id: str | None = Field(default=None, sa_column=Column(String(200)))
    occurred_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class WebhookEndpoint(SQLModel, table=True):
    """Where a tenant wants its events delivered, and which ones.

    ``secret`` and ``previous_secret`` are sealed (AES-GCM, see ``webhooks/sealing.py``): the
    gateway must be able to sign with them, so they cannot be hashed like API keys.
    """

    __tablename__ = "webhook_endpoints"

    id: uuid.UUID = Field(sa_column=Column(Uuid(), primary_key=True))
    tenant: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    url: str = Field(sa_column=Column(String(2048), nullable=False))
    description: str = Field(sa_column=Column(String(500), nullable=False))
    event_types: list[str] = Field(sa_column=Column(JSON(), nullable=False))
    enabled: bool = Field(sa_column=Column(Boolean(), nullable=False))
    disabled_reason: str | None = Field(default=None, sa_column=Column(String(500)))
    secret: str = Field(sa_column=Column(Text(), nullable=False))
    previous_secret: str | None = Field(default=None, sa_column=Column(Text()))
    previous_secret_expires_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime())
    )
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class WebhookDelivery(SQLModel, table=True):
    """One event for one endpoint, from its first attempt until it succeeded or failed for good.

    ``payload`` is the exact body, fixed when the event arrived, so every retry sends the same
    bytes under the same ``webhook-id`` (the event's id). ``lease_until``/``lease_token`` mark a
    delivery a worker is sending: another worker may take it only once the lease has passed.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_deliveries_event"),
    )

    id: uuid.UUID = Field(sa_column=Column(Uuid(), primary_key=True))
    tenant: str = Field(sa_column=Column(String(64), nullable=False))
    endpoint_id: uuid.UUID = Field(
        sa_column=Column(
            Uuid(), ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False
        )
    )
    event_id: str = Field(sa_column=Column(String(64), nullable=False))
    event_type: str = Field(sa_column=Column(String(200), nullable=False))
    payload: str = Field(sa_column=Column(Text(), nullable=False))
    status: str = Field(sa_column=Column(String(16), nullable=False))
    attempts: int = Field(sa_column=Column(Integer(), nullable=False))
    next_attempt_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    last_attempt_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    last_response_code: int | None = Field(default=None, sa_column=Column(Integer()))
    last_error: str | None = Field(default=None, sa_column=Column(Text()))
    lease_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    lease_token: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid()))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
