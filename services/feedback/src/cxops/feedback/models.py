"""Feedback's tables. Never returned to callers as they are: :mod:`cxops.feedback.schemas` is
the public shape."""

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel
from uuid6 import uuid7

from cxops.common.db import UTCDateTime
from cxops.stats.scales import SCALES, SurveyKind


class FeedbackTable(SQLModel, registry=registry()):
    """The base of feedback's tables: a metadata of their own, so this service's migrations
    compare against its tables only, even in a process that imports other services' models."""


SCORE_IN_SCALE = " OR ".join(
    f"(kind = '{kind.value}' AND score BETWEEN {scale.lowest} AND {scale.highest})"
    for kind, scale in SCALES.items()
)


class FeedbackResponse(FeedbackTable, table=True):
    """One survey answer as received, before any enrichment.

    ``idempotency_key`` and ``request_fingerprint`` make a retried POST return the first result:
    the key is unique per tenant (which also settles two concurrent retries), and the fingerprint
    tells an honest retry from a different request that reuses a key.
    """

    __tablename__ = "feedback_responses"
    __table_args__ = (
        sa.UniqueConstraint(
            "tenant", "idempotency_key", name="uq_feedback_responses_tenant_idempotency_key"
        ),
        sa.Index("ix_feedback_responses_tenant_id", "tenant", "id"),
        sa.CheckConstraint(SCORE_IN_SCALE, name="ck_feedback_responses_score_in_scale"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    tenant: str = Field(sa_type=sa.String(64), nullable=False)
    kind: SurveyKind = Field(
        sa_type=sa.Enum(
            SurveyKind,
            native_enum=False,
            length=8,
            values_callable=lambda kinds: [kind.value for kind in kinds],
            validate_strings=True,
        ),
        nullable=False,
    )
    score: int = Field(nullable=False)
    comment: str | None = Field(default=None, sa_type=sa.Text)
    customer_ref: str = Field(sa_type=sa.String(128), nullable=False)
    channel: str = Field(sa_type=sa.String(64), nullable=False)
    #: The routing task the answer is about, if the platform named it.
    task_id: uuid.UUID | None = Field(default=None)
    occurred_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    received_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    idempotency_key: str | None = Field(default=None, sa_type=sa.String(255))
    request_fingerprint: str | None = Field(default=None, sa_type=sa.String(64))
