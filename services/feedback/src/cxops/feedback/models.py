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
    #: The customer's tier as the platform knows it (case rules may open cases by tier).
    customer_tier: str | None = Field(default=None, sa_type=sa.String(64))


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
