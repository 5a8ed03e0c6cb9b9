"""Proactive triggers: their versions, the tenant's contact limits, one treatment per dedupe key.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SETTLED = "outcome IN ('taken', 'held_out')"


def upgrade() -> None:
    op.create_table(
        "journey_triggers",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "key", "version"),
    )
    op.create_table(
        "journey_trigger_settings",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("max_contacts", sa.Integer(), nullable=False),
        sa.Column("per_days", sa.Integer(), nullable=False),
        sa.Column("quiet_start", sa.String(length=5), nullable=False),
        sa.Column("quiet_end", sa.String(length=5), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant"),
    )
    op.create_index(
        "uq_journey_proactive_actions_settled",
        "journey_proactive_actions",
        ["tenant", "customer_id", "dedupe_key"],
        unique=True,
        sqlite_where=sa.text(_SETTLED),
        postgresql_where=sa.text(_SETTLED),
    )


def downgrade() -> None:
    op.drop_index("uq_journey_proactive_actions_settled", table_name="journey_proactive_actions")
    op.drop_table("journey_trigger_settings")
    op.drop_table("journey_triggers")
