"""The outbox and inbox tables every service carries in its own database.

They are SQLAlchemy Core tables on a metadata of their own, so services' migrations create them
with :func:`create_event_tables` and their queries do not depend on any service's models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cxops.common.db import UTCDateTime
from cxops.common.tenancy import SPANS_TENANTS

metadata = sa.MetaData()

outbox = sa.Table(
    "cx_outbox",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("event_id", sa.String(36), nullable=False, unique=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("headers", sa.JSON(), nullable=False),
    sa.Column("body", sa.LargeBinary(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("sent_at", UTCDateTime(), nullable=True),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text(), nullable=True),
    info={SPANS_TENANTS: True},
)
sa.Index(
    "ix_cx_outbox_pending",
    outbox.c.seq,
    sqlite_where=outbox.c.sent_at.is_(None),
    postgresql_where=outbox.c.sent_at.is_(None),
)
sa.Index("ix_cx_outbox_sent_at", outbox.c.sent_at)

inbox = sa.Table(
    "cx_inbox",
    metadata,
    sa.Column("consumer", sa.String(120), primary_key=True),
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("handled_at", UTCDateTime(), nullable=False),
    info={SPANS_TENANTS: True},
)


def create_event_tables() -> None:
    """For a service's first migration: create the outbox and the inbox."""
    bind = op.get_bind()
    metadata.create_all(bind, tables=[outbox, inbox])


def drop_event_tables() -> None:
    bind = op.get_bind()
    metadata.drop_all(bind, tables=[inbox, outbox])
