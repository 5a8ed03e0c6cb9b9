"""The gateway's tables: API keys and the audit log.

The migrations in ``migrations/versions`` create these tables by hand; these classes are how the
code reads and writes them.
"""

import uuid
from datetime import datetime

from sqlalchemy import Column, Integer, String, Uuid
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
