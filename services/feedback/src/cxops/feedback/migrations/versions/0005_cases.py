"""Closed-loop cases: the cases, their history, each tenant's case rules and SLA policy, and the
customer's tier on a response.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-14
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feedback_cases",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("response_id", sa.Uuid(), sa.ForeignKey("feedback_responses.id"), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("team", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.Column("topic", sa.String(64), nullable=True),
        sa.Column("customer_ref", sa.String(128), nullable=False),
        sa.Column("tier", sa.String(64), nullable=True),
        sa.Column("acknowledge_within_seconds", sa.Float(), nullable=False),
        sa.Column("action_within_seconds", sa.Float(), nullable=False),
        sa.Column("close_within_seconds", sa.Float(), nullable=False),
        sa.Column("feedback_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("reopened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("action_documented_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledge_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("close_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("breaches", sa.JSON(), nullable=False),
        sa.Column("breached", sa.Boolean(), nullable=False),
        sa.Column("corrective_action", sa.Text(), nullable=True),
        sa.Column("root_cause_category", sa.String(16), nullable=True),
        sa.Column("root_cause_why_chain", sa.JSON(), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("customer_contacted", sa.Boolean(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("tenant", "response_id", name="uq_feedback_cases_tenant_response_id"),
    )
    op.create_index("ix_feedback_cases_tenant_id", "feedback_cases", ["tenant", "id"])
    op.create_index("ix_feedback_cases_tenant_state", "feedback_cases", ["tenant", "state"])
    op.create_index("ix_feedback_cases_next_due_at", "feedback_cases", ["next_due_at"])
    op.create_table(
        "feedback_case_history",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("case_id", sa.Uuid(), sa.ForeignKey("feedback_cases.id"), nullable=False),
        sa.Column("action", sa.String(24), nullable=False),
        sa.Column("by", sa.String(128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("from_state", sa.String(24), nullable=True),
        sa.Column("to_state", sa.String(24), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index(
        "ix_feedback_case_history_tenant_case",
        "feedback_case_history",
        ["tenant", "case_id", "id"],
    )
    op.create_table(
        "feedback_case_settings",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("topic_teams", sa.JSON(), nullable=False),
        sa.Column("default_team", sa.String(64), nullable=False),
        sa.Column("acknowledge_within_seconds", sa.Float(), nullable=False),
        sa.Column("action_within_seconds", sa.Float(), nullable=False),
        sa.Column("close_within_seconds", sa.Float(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("feedback_case_settings")
    op.drop_index("ix_feedback_case_history_tenant_case", table_name="feedback_case_history")
    op.drop_table("feedback_case_history")
    op.drop_index("ix_feedback_cases_next_due_at", table_name="feedback_cases")
    op.drop_index("ix_feedback_cases_tenant_state", table_name="feedback_cases")
    op.drop_index("ix_feedback_cases_tenant_id", table_name="feedback_cases")
    op.drop_table("feedback_cases")
