"""Bulk imports: a response may carry the caller's own id, unique per tenant.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("feedback_responses") as batch:
        batch.add_column(sa.Column("external_id", sa.String(128), nullable=True))
        batch.create_unique_constraint(
            "uq_feedback_responses_tenant_external_id", ["tenant", "external_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("feedback_responses") as batch:
        batch.drop_constraint("uq_feedback_responses_tenant_external_id", type_="unique")
        batch.drop_column("external_id")
