"""Survey invitations: surveys with their exit points, invitations (and the exit points that
did not become one), the recontact guard and the daily quota counters; a response may name the
invitation it answers and the agent it is about.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-14
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
        "feedback_surveys",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("exit_points", sa.JSON(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=True),
        sa.Column("delay_seconds", sa.Integer(), nullable=False),
        sa.Column("sampling_percentage", sa.Float(), nullable=False),
        sa.Column("quota_per_day", sa.Integer(), nullable=True),
        sa.Column("recontact_days", sa.Integer(), nullable=True),
        sa.Column("valid_days", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "feedback_invitations",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("survey_key", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("customer_ref", sa.String(128), nullable=True),
        sa.Column("contact_channel", sa.String(64), nullable=True),
        sa.Column("contact_address", sa.String(320), nullable=True),
        sa.Column("task_id", sa.Uuid(), nullable=True),
        sa.Column("agent_id", sa.Uuid(), nullable=True),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("source_id", sa.String(255), nullable=False),
        sa.Column("sample_bucket", sa.Integer(), nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("token", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint(
            "tenant", "survey_key", "source_id", name="uq_feedback_invitations_source"
        ),
        sa.UniqueConstraint("token", name="uq_feedback_invitations_token"),
    )
    op.create_index("ix_feedback_invitations_tenant_id", "feedback_invitations", ["tenant", "id"])
    op.create_index(
        "ix_feedback_invitations_status_due_at", "feedback_invitations", ["status", "due_at"]
    )
    op.create_table(
        "feedback_recontact_guards",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("customer_ref", sa.String(128), primary_key=True),
        sa.Column("last_invited_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "feedback_survey_quota_usage",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("survey_key", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("used", sa.Integer(), nullable=False),
    )
    with op.batch_alter_table("feedback_responses") as table:
        table.add_column(sa.Column("agent_id", sa.Uuid(), nullable=True))
        table.add_column(sa.Column("invitation_id", sa.Uuid(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feedback_responses") as table:
        table.drop_column("invitation_id")
        table.drop_column("agent_id")
    op.drop_table("feedback_survey_quota_usage")
    op.drop_table("feedback_recontact_guards")
    op.drop_index("ix_feedback_invitations_status_due_at", table_name="feedback_invitations")
    op.drop_index("ix_feedback_invitations_tenant_id", table_name="feedback_invitations")
    op.drop_table("feedback_invitations")
    op.drop_table("feedback_surveys")
