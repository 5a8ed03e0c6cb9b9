"""Feedback's tables. Never returned to callers as they are: :mod:`cxops.feedback.schemas` is
the public shape."""

import uuid
from datetime import date, datetime
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
        sa.UniqueConstraint(
            "tenant", "external_id", name="uq_feedback_responses_tenant_external_id"
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
    #: The customer's tier as the platform knows it (case rules may open cases by tier).
    customer_tier: str | None = Field(default=None, sa_type=sa.String(64))
    #: The agent the answer is about, if known (from the invitation the response quoted).
    agent_id: uuid.UUID | None = Field(default=None)
    #: The invitation whose token the response quoted.
    invitation_id: uuid.UUID | None = Field(default=None)
    occurred_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    received_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    idempotency_key: str | None = Field(default=None, sa_type=sa.String(255))
    request_fingerprint: str | None = Field(default=None, sa_type=sa.String(64))
    raw_comment: str | None = Field(default=None, sa_type=sa.Text)
    #: The caller's own id for a bulk-imported answer.
    external_id: str | None = Field(default=None, sa_type=sa.String(128))
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


# ------------------------------------------------------------------------ survey invitations


class Survey(FeedbackTable, table=True):
    """A tenant's survey and the exit points that trigger it (see
    :mod:`cxops.feedback.domain.invitations`); ``version`` counts its changes."""

    __tablename__ = "feedback_surveys"

    tenant: str = Field(sa_type=sa.String(64), primary_key=True)
    key: str = Field(sa_type=sa.String(64), primary_key=True)
    kind: str = Field(sa_type=sa.String(8), nullable=False)
    #: ``[{"event", "activity", "conditions": [{"field", "op", "value"}]}]``
    exit_points: list[dict[str, Any]] = Field(sa_type=sa.JSON, nullable=False)
    #: The contact channels an invitation may use; null for any.
    channels: list[str] | None = Field(default=None, sa_type=sa.JSON)
    delay_seconds: int = Field(nullable=False)
    sampling_percentage: float = Field(nullable=False)
    quota_per_day: int | None = Field(default=None)
    #: Null: the service's default (7 days).
    recontact_days: int | None = Field(default=None)
    valid_days: int = Field(nullable=False)
    version: int = Field(nullable=False)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class Invitation(FeedbackTable, table=True):
    """An exit point's outcome: an invitation (``scheduled`` → ``sent`` → ``responded``, with a
    token) or the reason there is none (``throttled``, ``sampled_out``, ``quota_full``,
    ``no_contact_channel``). One per survey and source event, so a redelivery adds nothing."""

    __tablename__ = "feedback_invitations"
    __table_args__ = (
        sa.UniqueConstraint(
            "tenant", "survey_key", "source_id", name="uq_feedback_invitations_source"
        ),
        sa.UniqueConstraint("token", name="uq_feedback_invitations_token"),
        sa.Index("ix_feedback_invitations_tenant_id", "tenant", "id"),
        sa.Index("ix_feedback_invitations_status_due_at", "status", "due_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    tenant: str = Field(sa_type=sa.String(64), nullable=False)
    survey_key: str = Field(sa_type=sa.String(64), nullable=False)
    kind: str = Field(sa_type=sa.String(8), nullable=False)
    status: str = Field(sa_type=sa.String(24), nullable=False)
    customer_ref: str | None = Field(default=None, sa_type=sa.String(128))
    contact_channel: str | None = Field(default=None, sa_type=sa.String(64))
    contact_address: str | None = Field(default=None, sa_type=sa.String(320))
    task_id: uuid.UUID | None = Field(default=None)
    agent_id: uuid.UUID | None = Field(default=None)
    #: The exit event's subject, or ``manual``.
    source: str = Field(sa_type=sa.String(128), nullable=False)
    #: The exit event's id (a manual invitation's ``external_id``, or a fresh id).
    source_id: str = Field(sa_type=sa.String(255), nullable=False)
    sample_bucket: int = Field(nullable=False)
    forced: bool = Field(default=False, nullable=False)
    token: str | None = Field(default=None, sa_type=sa.String(64))
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    responded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class RecontactGuard(FeedbackTable, table=True):
    """One row per customer of a tenant: when any survey last invited them. Locked while an
    invitation is decided, so concurrent exit points for one customer (on any replica) are
    decided one after the other and at most one gets through the recontact window."""

    __tablename__ = "feedback_recontact_guards"

    tenant: str = Field(sa_type=sa.String(64), primary_key=True)
    customer_ref: str = Field(sa_type=sa.String(128), primary_key=True)
    last_invited_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SurveyQuotaUsage(FeedbackTable, table=True):
    """Invitations a survey made on one UTC day, counted under a row lock against its quota."""

    __tablename__ = "feedback_survey_quota_usage"

    tenant: str = Field(sa_type=sa.String(64), primary_key=True)
    survey_key: str = Field(sa_type=sa.String(64), primary_key=True)
    day: date = Field(primary_key=True)
    used: int = Field(default=0, nullable=False)


# ---------------------------------------------------------------------- closed-loop cases


class FeedbackCase(FeedbackTable, table=True):
    """One closed-loop case: the domain's :class:`~cxops.feedback.domain.cases.Case` as a row.

    ``version`` grows with every change: an update names the version it read, so of two
    concurrent changes (two callers, or two replicas' timers) exactly one applies. The SLA
    policy is stored as the case opened under it; the three deadlines of the current round and
    ``next_due_at`` (when the timer must look at the case next) are kept for queries and for
    arming the one timer at start.
    """

    __tablename__ = "feedback_cases"
    __table_args__ = (
        sa.UniqueConstraint("tenant", "response_id", name="uq_feedback_cases_tenant_response_id"),
        sa.Index("ix_feedback_cases_tenant_id", "tenant", "id"),
        sa.Index("ix_feedback_cases_tenant_state", "tenant", "state"),
        sa.Index("ix_feedback_cases_next_due_at", "next_due_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    tenant: str = Field(sa_type=sa.String(64), nullable=False)
    response_id: uuid.UUID = Field(foreign_key="feedback_responses.id", nullable=False)
    state: str = Field(sa_type=sa.String(24), nullable=False)
    rule: str = Field(sa_type=sa.String(64), nullable=False)
    team: str = Field(sa_type=sa.String(64), nullable=False)
    owner: str | None = Field(default=None, sa_type=sa.String(128))
    topic: str | None = Field(default=None, sa_type=sa.String(64))
    customer_ref: str = Field(sa_type=sa.String(128), nullable=False)
    tier: str | None = Field(default=None, sa_type=sa.String(64))
    acknowledge_within_seconds: float = Field(nullable=False)
    action_within_seconds: float = Field(nullable=False)
    close_within_seconds: float = Field(nullable=False)
    feedback_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    opened_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    round: int = Field(default=1, nullable=False)
    reopened_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    action_documented_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledge_due_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    action_due_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    close_due_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    next_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    escalated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: Every round's breaches: ``[{"clock", "round", "deadline"}]``.
    breaches: list[dict[str, object]] = Field(default_factory=list, sa_type=sa.JSON)
    breached: bool = Field(default=False, nullable=False)
    corrective_action: str | None = Field(default=None, sa_type=sa.Text)
    root_cause_category: str | None = Field(default=None, sa_type=sa.String(16))
    root_cause_why_chain: list[str] | None = Field(default=None, sa_type=sa.JSON)
    resolution: str | None = Field(default=None, sa_type=sa.Text)
    customer_contacted: bool | None = Field(default=None)
    version: int = Field(default=1, nullable=False)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class FeedbackCaseHistory(FeedbackTable, table=True):
    """One line of a case's history: who did what, when, from which state to which, with the
    action's input in ``detail``. Ids are UUIDv7, so ``id`` orders a case's lines."""

    __tablename__ = "feedback_case_history"
    __table_args__ = (sa.Index("ix_feedback_case_history_tenant_case", "tenant", "case_id", "id"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    tenant: str = Field(sa_type=sa.String(64), nullable=False)
    case_id: uuid.UUID = Field(foreign_key="feedback_cases.id", nullable=False)
    action: str = Field(sa_type=sa.String(24), nullable=False)
    by: str = Field(sa_type=sa.String(128), nullable=False)
    at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    from_state: str | None = Field(default=None, sa_type=sa.String(24))
    to_state: str = Field(sa_type=sa.String(24), nullable=False)
    detail: dict[str, object] = Field(default_factory=dict, sa_type=sa.JSON)


class FeedbackCaseSettings(FeedbackTable, table=True):
    """A tenant's case rules and SLA policy; without a row the defaults apply. ``version``
    counts the changes."""

    __tablename__ = "feedback_case_settings"

    tenant: str = Field(sa_type=sa.String(64), primary_key=True)
    #: The rules as the API takes them: ``[{"name", "nps_at_most", ...}]``.
    rules: list[dict[str, object]] = Field(sa_type=sa.JSON, nullable=False)
    topic_teams: dict[str, str] = Field(sa_type=sa.JSON, nullable=False)
    default_team: str = Field(sa_type=sa.String(64), nullable=False)
    acknowledge_within_seconds: float = Field(nullable=False)
    action_within_seconds: float = Field(nullable=False)
    close_within_seconds: float = Field(nullable=False)
    version: int = Field(nullable=False)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    updated_by: str = Field(sa_type=sa.String(128), nullable=False)


# ------------------------------------------------------------------------ complaint alerts


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
