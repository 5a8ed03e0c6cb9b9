"""Enrichment at intake: the redacted comment, its reading, topics one row each, taxonomies,
reviewers' labels and the tenant's choice to keep raw comments.

Responses stored before this revision are enriched here with the built-in taxonomy, and their
comments redacted: from now on no raw comment is stored unless a tenant asks for it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 500


def upgrade() -> None:
    op.add_column("feedback_responses", sa.Column("raw_comment", sa.Text(), nullable=True))
    op.add_column("feedback_responses", sa.Column("customer_tier", sa.String(64), nullable=True))
    op.add_column("feedback_responses", sa.Column("enrichment", sa.JSON(), nullable=True))
    op.add_column(
        "feedback_responses",
        sa.Column("needs_review", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("feedback_responses", sa.Column("sentiment_label", sa.String(8), nullable=True))
    op.add_column(
        "feedback_responses",
        sa.Column("taxonomy_version", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index(
        "ix_feedback_responses_tenant_review",
        "feedback_responses",
        ["tenant", "needs_review", "id"],
    )
    op.create_table(
        "feedback_response_topics",
        sa.Column("response_id", sa.Uuid(), primary_key=True),
        sa.Column("topic", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("sentiment_label", sa.String(8), nullable=True),
    )
    op.create_index(
        "ix_feedback_response_topics_tenant_topic_time",
        "feedback_response_topics",
        ["tenant", "topic", "occurred_at"],
    )
    op.create_table(
        "feedback_taxonomies",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=True),
    )
    op.create_table(
        "feedback_labels",
        sa.Column("response_id", sa.Uuid(), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("sentiment", sa.String(8), nullable=True),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("model_sentiment", sa.String(8), nullable=True),
        sa.Column("model_topics", sa.JSON(), nullable=False),
        sa.Column("taxonomy_version", sa.Integer(), nullable=False),
        sa.Column("labelled_by", sa.String(128), nullable=True),
        sa.Column("labelled_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_feedback_labels_tenant_labelled_at", "feedback_labels", ["tenant", "labelled_at"]
    )
    op.create_table(
        "feedback_tenant_settings",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("keep_raw_comments", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    _enrich_stored_responses()
    with op.batch_alter_table("feedback_responses") as batch:
        batch.alter_column("enrichment", existing_type=sa.JSON(), nullable=False)


def _enrich_stored_responses() -> None:
    from cxops.feedback.enrichment import TenantEnrichment  # the code of this revision's time

    enrichment = TenantEnrichment.built_in()
    responses = sa.table(
        "feedback_responses",
        sa.column("id", sa.Uuid()),
        sa.column("tenant", sa.String()),
        sa.column("kind", sa.String()),
        sa.column("score", sa.Integer()),
        sa.column("comment", sa.Text()),
        sa.column("occurred_at", sa.DateTime(timezone=True)),
        sa.column("enrichment", sa.JSON()),
        sa.column("needs_review", sa.Boolean()),
        sa.column("sentiment_label", sa.String()),
    )
    topics = sa.table(
        "feedback_response_topics",
        sa.column("response_id", sa.Uuid()),
        sa.column("topic", sa.String()),
        sa.column("tenant", sa.String()),
        sa.column("occurred_at", sa.DateTime(timezone=True)),
        sa.column("confidence", sa.Float()),
        sa.column("sentiment_label", sa.String()),
    )
    bind = op.get_bind()
    while True:
        rows = bind.execute(
            sa.select(
                responses.c.id,
                responses.c.tenant,
                responses.c.kind,
                responses.c.score,
                responses.c.comment,
                responses.c.occurred_at,
            )
            .where(responses.c.enrichment.is_(None))
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        for row in rows:
            comment, read = enrichment.read_as_json(row.comment, kind=row.kind, score=row.score)
            sentiment = read["sentiment"]
            bind.execute(
                responses.update()
                .where(responses.c.id == row.id)
                .values(
                    comment=comment,
                    enrichment=read,
                    needs_review=read["needs_review"],
                    sentiment_label=sentiment["label"] if sentiment else None,
                )
            )
            for topic in read["topics"]:
                bind.execute(
                    topics.insert().values(
                        response_id=row.id,
                        topic=topic["topic"],
                        tenant=row.tenant,
                        occurred_at=row.occurred_at,
                        confidence=topic["confidence"],
                        sentiment_label=topic["sentiment"]["label"] if topic["sentiment"] else None,
                    )
                )


def downgrade() -> None:
    op.drop_table("feedback_tenant_settings")
    op.drop_index("ix_feedback_labels_tenant_labelled_at", table_name="feedback_labels")
    op.drop_table("feedback_labels")
    op.drop_table("feedback_taxonomies")
    op.drop_index(
        "ix_feedback_response_topics_tenant_topic_time", table_name="feedback_response_topics"
    )
    op.drop_table("feedback_response_topics")
    op.drop_index("ix_feedback_responses_tenant_review", table_name="feedback_responses")
    for column in ("taxonomy_version", "sentiment_label", "needs_review", "enrichment"):
        op.drop_column("feedback_responses", column)
    op.drop_column("feedback_responses", "raw_comment")
    op.drop_column("feedback_responses", "customer_tier")
