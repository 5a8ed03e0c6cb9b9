"""Response facts: one row per survey answer, the ground the survey metrics are computed on.

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
        "scorecard_response_facts",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("response_id", sa.Uuid(), nullable=False),
        sa.Column("metric", sa.String(8), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(
            "tenant", "response_id", name="uq_scorecard_response_facts_tenant_response"
        ),
    )
    op.create_index(
        "ix_scorecard_response_facts_tenant_metric_occurred",
        "scorecard_response_facts",
        ["tenant", "metric", "occurred_at"],
    )


def downgrade() -> None:
    op.drop_index(
        "ix_scorecard_response_facts_tenant_metric_occurred",
        table_name="scorecard_response_facts",
    )
    op.drop_table("scorecard_response_facts")
