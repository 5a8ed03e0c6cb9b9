"""Live complaint alerts: the alerts, each tenant's alert rules, and the indexes the hourly and
daily complaint counts group by.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PERIODIC = sa.text("granularity <> 'realtime'")


def upgrade() -> None:
    # The counts of one tenant over a window, and the sweep for tenants with complaints in the
    # period just closed (across tenants, by time alone).
    op.create_index(
        "ix_feedback_responses_tenant_time", "feedback_responses", ["tenant", "occurred_at"]
    )
    op.create_index(
        "ix_feedback_response_topics_tenant_time",
        "feedback_response_topics",
        ["tenant", "occurred_at"],
    )
    op.create_index("ix_feedback_response_topics_time", "feedback_response_topics", ["occurred_at"])
    op.create_table(
        "feedback_alerts",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("granularity", sa.String(8), nullable=False),
        sa.Column("topic", sa.String(64), nullable=True),
        sa.Column("segment", sa.String(64), nullable=False),
        sa.Column("team", sa.String(128), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("test", sa.String(32), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=True),
        sa.Column("observed", sa.Integer(), nullable=False),
        sa.Column("expected", sa.Float(), nullable=True),
        sa.Column("statistic", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("response_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(128), nullable=True),
    )
    op.create_index(
        "uq_feedback_alerts_series_period",
        "feedback_alerts",
        ["tenant", "granularity", "topic", "segment", "period_start"],
        unique=True,
        sqlite_where=_PERIODIC,
        postgresql_where=_PERIODIC,
    )
    op.create_index("ix_feedback_alerts_tenant_id", "feedback_alerts", ["tenant", "id"])
    op.create_table(
        "feedback_alert_rules",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("feedback_alert_rules")
    op.drop_index("ix_feedback_alerts_tenant_id", table_name="feedback_alerts")
    op.drop_index("uq_feedback_alerts_series_period", table_name="feedback_alerts")
    op.drop_table("feedback_alerts")
    op.drop_index("ix_feedback_response_topics_time", table_name="feedback_response_topics")
    op.drop_index("ix_feedback_response_topics_tenant_time", table_name="feedback_response_topics")
    op.drop_index("ix_feedback_responses_tenant_time", table_name="feedback_responses")
