"""Routing's state: agents, queues, tasks, reservations, and what happened to tasks and skills

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
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
        "routing_agents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("team", sa.String(length=64), nullable=True),
        sa.Column("skills", sa.JSON(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("pinned_skills", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.String(length=200), nullable=True),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consecutive_timeouts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("routing_agents", schema=None) as batch_op:
        batch_op.create_index("ix_routing_agents_tenant_team", ["tenant", "team"], unique=False)
        # Among agents not deleted: a deleted agent's external id may be registered again.
        batch_op.create_index(
            "uq_routing_agents_tenant_external_id",
            ["tenant", "external_id"],
            unique=True,
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        )

    op.create_table(
        "routing_proficiency_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("skill", sa.String(length=64), nullable=False),
        sa.Column("old_level", sa.Integer(), nullable=True),
        sa.Column("new_level", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("routing_proficiency_changes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_routing_proficiency_changes_tenant_agent", ["tenant", "agent_id"], unique=False
        )

    op.create_table(
        "routing_queues",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("requires", sa.JSON(), nullable=False),
        sa.Column("optional", sa.JSON(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("service_level", sa.JSON(), nullable=False),
        sa.Column("relaxation", sa.JSON(), nullable=False),
        sa.Column("escalation", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant", "name", name="uq_routing_queues_tenant_name"),
    )
    op.create_table(
        "routing_reservations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("offered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("routing_reservations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_routing_reservations_tenant_agent_state",
            ["tenant", "agent_id", "state"],
            unique=False,
        )
        batch_op.create_index(
            "ix_routing_reservations_tenant_task", ["tenant", "task_id"], unique=False
        )

    op.create_table(
        "routing_task_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("agent_id", sa.Uuid(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("routing_task_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_routing_task_events_tenant_task", ["tenant", "task_id"], unique=False
        )

    op.create_table(
        "routing_tasks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("request_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("requires", sa.JSON(), nullable=False),
        sa.Column("optional", sa.JSON(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("tier", sa.String(length=32), nullable=False),
        sa.Column("customer_ref", sa.String(length=128), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("timeout_seconds", sa.Float(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("agent_id", sa.Uuid(), nullable=True),
        sa.Column("team", sa.String(length=64), nullable=True),
        sa.Column("fired_rules", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("wrapping_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("wait_seconds", sa.Float(), nullable=True),
        sa.Column("handle_seconds", sa.Float(), nullable=True),
        sa.Column("resolved", sa.Boolean(), nullable=True),
        sa.Column("csat", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant", "external_id", name="uq_routing_tasks_tenant_external_id"),
        sa.UniqueConstraint(
            "tenant", "idempotency_key", name="uq_routing_tasks_tenant_idempotency_key"
        ),
    )
    with op.batch_alter_table("routing_tasks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_routing_tasks_tenant_customer_ref", ["tenant", "customer_ref"], unique=False
        )
        batch_op.create_index(
            "ix_routing_tasks_tenant_queue_created", ["tenant", "queue", "created_at"], unique=False
        )
        batch_op.create_index("ix_routing_tasks_tenant_state", ["tenant", "state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("routing_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_routing_tasks_tenant_state")
        batch_op.drop_index("ix_routing_tasks_tenant_queue_created")
        batch_op.drop_index("ix_routing_tasks_tenant_customer_ref")

    op.drop_table("routing_tasks")
    with op.batch_alter_table("routing_task_events", schema=None) as batch_op:
        batch_op.drop_index("ix_routing_task_events_tenant_task")

    op.drop_table("routing_task_events")
    with op.batch_alter_table("routing_reservations", schema=None) as batch_op:
        batch_op.drop_index("ix_routing_reservations_tenant_task")
        batch_op.drop_index("ix_routing_reservations_tenant_agent_state")

    op.drop_table("routing_reservations")
    op.drop_table("routing_queues")
    with op.batch_alter_table("routing_proficiency_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_routing_proficiency_changes_tenant_agent")

    op.drop_table("routing_proficiency_changes")
    with op.batch_alter_table("routing_agents", schema=None) as batch_op:
        batch_op.drop_index("uq_routing_agents_tenant_external_id")
        batch_op.drop_index("ix_routing_agents_tenant_team")

    op.drop_table("routing_agents")
