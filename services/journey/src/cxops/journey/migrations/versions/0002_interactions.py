"""Interactions, resolved customers and what journey learns from other services' events.

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
        "journey_common_values",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=320), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "type", "value"),
    )
    op.create_table(
        "journey_customer_facts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ref_id", sa.String(length=64), nullable=False),
        sa.Column("customer_ref", sa.String(length=255), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant", "kind", "ref_id", name="uq_journey_customer_facts_ref"),
    )
    op.create_index(
        "ix_journey_customer_facts_customer",
        "journey_customer_facts",
        ["tenant", "customer_ref", "occurred_at"],
    )

    op.create_table(
        "journey_customer_identifiers",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=320), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "type", "value"),
    )
    op.create_index(
        "ix_journey_customer_identifiers_customer",
        "journey_customer_identifiers",
        ["tenant", "customer_id"],
    )

    op.create_table(
        "journey_customers",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("identifiers", sa.JSON(), nullable=False),
        sa.Column("merges", sa.JSON(), nullable=False),
        sa.Column("refusals", sa.JSON(), nullable=False),
        sa.Column("interactions", sa.Integer(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "id"),
    )
    op.create_table(
        "journey_identity_locks",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tenant"),
    )
    op.create_table(
        "journey_identity_splits",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("left", sa.JSON(), nullable=False),
        sa.Column("right", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_journey_identity_splits_tenant", "journey_identity_splits", ["tenant", "created_at"]
    )

    op.create_table(
        "journey_interaction_identifiers",
        sa.Column("interaction_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=320), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("interaction_id", "type", "value"),
    )
    op.create_index(
        "ix_journey_interaction_identifiers_value",
        "journey_interaction_identifiers",
        ["tenant", "type", "value"],
    )

    op.create_table(
        "journey_interactions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("activity", sa.String(length=255), nullable=False),
        sa.Column("team", sa.String(length=128), nullable=True),
        sa.Column("stage", sa.String(length=128), nullable=True),
        sa.Column("identifiers", sa.JSON(), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant", "external_id", name="uq_journey_interactions_external_id"),
    )
    op.create_index(
        "ix_journey_interactions_customer",
        "journey_interactions",
        ["tenant", "customer_id", "occurred_at"],
    )
    op.create_index(
        "ix_journey_interactions_time", "journey_interactions", ["tenant", "occurred_at"]
    )

    op.create_table(
        "journey_proactive_actions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("trigger_key", sa.String(length=64), nullable=False),
        sa.Column("trigger_version", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("dedupe_key", sa.String(length=255), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("interaction_id", sa.Uuid(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_journey_proactive_actions_customer",
        "journey_proactive_actions",
        ["tenant", "customer_id", "at"],
    )
    op.create_index(
        "ix_journey_proactive_actions_trigger",
        "journey_proactive_actions",
        ["tenant", "trigger_key", "at"],
    )

    op.create_table(
        "journey_maps",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "key", "version"),
    )


def downgrade() -> None:
    op.drop_table("journey_maps")
    op.drop_table("journey_proactive_actions")
    op.drop_table("journey_interactions")
    op.drop_table("journey_interaction_identifiers")
    op.drop_table("journey_identity_splits")
    op.drop_table("journey_identity_locks")
    op.drop_table("journey_customers")
    op.drop_table("journey_customer_identifiers")
    op.drop_table("journey_customer_facts")
    op.drop_table("journey_common_values")
