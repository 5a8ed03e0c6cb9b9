"""Feedback's tables. Never returned to callers as they are: :mod:`cxops.feedback.schemas` is
the public shape."""

import uuid
from datetime import datetime
from typing import Any

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
    """One survey answer with its enrichment.

    ``comment`` is the comment with personal data redacted: the customer's raw words are kept
    only when the tenant asks for it (``raw_comment``, read by admins alone). ``enrichment`` is
    the public :class:`~cxops.feedback.schemas.EnrichmentPublic` as JSON; ``needs_review`` and
    ``sentiment_label`` repeat what queries filter on.

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
        sa.Index("ix_feedback_responses_tenant_review", "tenant", "needs_review", "id"),
        sa.Index("ix_feedback_responses_tenant_time", "tenant", "occurred_at"),
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
    customer_tier: str | None = Field(default=None, sa_type=sa.String(32))
    occurred_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    received_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    idempotency_key: str | None = Field(default=None, sa_type=sa.String(255))
    request_fingerprint: str | None = Field(default=None, sa_type=sa.String(64))
    raw_comment: str | None = Field(default=None, sa_type=sa.Text)
    enrichment: dict[str, Any] = Field(sa_type=sa.JSON, nullable=False)
    needs_review: bool = Field(default=False, nullable=False)
    sentiment_label: str | None = Field(default=None, sa_type=sa.String(8))
    taxonomy_version: int = Field(default=0, nullable=False)


class FeedbackResponseTopic(FeedbackTable, table=True):
    """A topic a response was tagged with, one row each: what counts per topic and day (the
    complaint alerts, the root-cause Pareto) group by without reading JSON."""

    __tablename__ = "feedback_response_topics"
    __table_args__ = (
        sa.Index("ix_feedback_response_topics_tenant_topic_time", "tenant", "topic", "occurred_at"),
        sa.Index("ix_feedback_response_topics_tenant_time", "tenant", "occurred_at"),
        sa.Index("ix_feedback_response_topics_time", "occurred_at"),
    )

    response_id: uuid.UUID = Field(primary_key=True)
    topic: str = Field(sa_type=sa.String(64), primary_key=True)
    tenant: str = Field(sa_type=sa.String(64), nullable=False)
    occurred_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    confidence: float = Field(nullable=False)
    sentiment_label: str | None = Field(default=None, sa_type=sa.String(8))


class FeedbackTaxonomy(FeedbackTable, table=True):
    """One version of a tenant's topic taxonomy, as the tenant sent it (the ``--taxonomy`` file
    format); the highest version is the one in force. Version 0, the built-in taxonomy, has no
    row."""

    __tablename__ = "feedback_taxonomies"

    tenant: str = Field(sa_type=sa.String(64), primary_key=True)
    version: int = Field(primary_key=True)
    document: dict[str, Any] = Field(sa_type=sa.JSON, nullable=False)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    created_by: str | None = Field(default=None, sa_type=sa.String(128))


class FeedbackLabel(FeedbackTable, table=True):
    """A reviewer's reading of one response, beside the model's reading when the response was
    enriched. A later label of the same response replaces the earlier one."""

    __tablename__ = "feedback_labels"
    __table_args__ = (sa.Index("ix_feedback_labels_tenant_labelled_at", "tenant", "labelled_at"),)

    response_id: uuid.UUID = Field(primary_key=True)
    tenant: str = Field(sa_type=sa.String(64), nullable=False)
    sentiment: str | None = Field(default=None, sa_type=sa.String(8))
    topics: list[str] = Field(sa_type=sa.JSON, nullable=False)
    model_sentiment: str | None = Field(default=None, sa_type=sa.String(8))
    model_topics: list[str] = Field(sa_type=sa.JSON, nullable=False)
    taxonomy_version: int = Field(nullable=False)
    labelled_by: str | None = Field(default=None, sa_type=sa.String(128))
    labelled_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class FeedbackTenantSettings(FeedbackTable, table=True):
    """What a tenant chose about its feedback data."""

    __tablename__ = "feedback_tenant_settings"

    tenant: str = Field(sa_type=sa.String(64), primary_key=True)
    #: Keep each raw comment beside the redacted one, readable by admins only.
    keep_raw_comments: bool = Field(default=False, nullable=False)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class FeedbackAlert(FeedbackTable, table=True):
    """A complaint alert: a topic's complaints rising in one period (``granularity`` ``hour`` or
    ``day``), or one negative answer from a customer of a named tier (``realtime``).

    A periodic alert is unique per tenant, granularity, topic, segment and period: when two
    replicas evaluate the same closed period, the unique index lets one row in, and only the
    transaction that inserted it queued its event. A real-time alert names its response.
    """

    __tablename__ = "feedback_alerts"
    __table_args__ = (
        sa.Index(
            "uq_feedback_alerts_series_period",
            "tenant",
            "granularity",
            "topic",
            "segment",
            "period_start",
            unique=True,
            sqlite_where=sa.text("granularity <> 'realtime'"),
            postgresql_where=sa.text("granularity <> 'realtime'"),
        ),
        sa.Index("ix_feedback_alerts_tenant_id", "tenant", "id"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    tenant: str = Field(sa_type=sa.String(64), nullable=False)
    granularity: str = Field(sa_type=sa.String(8), nullable=False)
    #: None for a real-time alert on a response with no negative topic.
    topic: str | None = Field(default=None, sa_type=sa.String(64))
    segment: str = Field(sa_type=sa.String(64), nullable=False)
    team: str = Field(sa_type=sa.String(128), nullable=False)
    period_start: datetime = Field(sa_type=UTCDateTime, nullable=False)
    period_end: datetime = Field(sa_type=UTCDateTime, nullable=False)
    test: str = Field(sa_type=sa.String(32), nullable=False)
    p_value: float | None = Field(default=None)
    observed: int = Field(nullable=False)
    expected: float | None = Field(default=None)
    statistic: float | None = Field(default=None)
    threshold: float | None = Field(default=None)
    reason: str = Field(sa_type=sa.Text, nullable=False)
    response_id: uuid.UUID | None = Field(default=None)
    status: str = Field(sa_type=sa.String(16), nullable=False)
    raised_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_by: str | None = Field(default=None, sa_type=sa.String(128))


class FeedbackAlertRules(FeedbackTable, table=True):
    """A tenant's alert rules (:class:`~cxops.feedback.schemas.AlertRulesDocument` as JSON);
    no row means the defaults."""

    __tablename__ = "feedback_alert_rules"

    tenant: str = Field(sa_type=sa.String(64), primary_key=True)
    document: dict[str, Any] = Field(sa_type=sa.JSON, nullable=False)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    updated_by: str | None = Field(default=None, sa_type=sa.String(128))
