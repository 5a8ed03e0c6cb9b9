"""Survey responses, with the idempotency key that makes a retried POST store nothing new.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feedback_responses",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("customer_ref", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("request_fingerprint", sa.String(64), nullable=True),
        sa.UniqueConstraint(
            "tenant", "idempotency_key", name="uq_feedback_responses_tenant_idempotency_key"
        ),
        sa.CheckConstraint(
            "(kind = 'nps' AND score BETWEEN 0 AND 10) "
            "OR (kind = 'csat' AND score BETWEEN 1 AND 5) "
            "OR (kind = 'ces' AND score BETWEEN 1 AND 7)",
            name="ck_feedback_responses_score_in_scale",
        ),
    )
    op.create_index("ix_feedback_responses_tenant_id", "feedback_responses", ["tenant", "id"])


def downgrade() -> None:
    op.drop_index("ix_feedback_responses_tenant_id", table_name="feedback_responses")
    op.drop_table("feedback_responses")
