"""A decision lock per tenant (trigger decisions on two replicas take turns), and the aliases
of profile ids that ceased.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "journey_decision_locks",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tenant"),
    )
    op.create_table(
        "journey_customer_aliases",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "id"),
    )
    op.create_index(
        "ix_journey_customer_aliases_target",
        "journey_customer_aliases",
        ["tenant", "customer_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_journey_customer_aliases_target", table_name="journey_customer_aliases")
    op.drop_table("journey_customer_aliases")
    op.drop_table("journey_decision_locks")
