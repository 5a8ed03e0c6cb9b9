"""Scorecard's tables: the facts metrics are computed from."""

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel
from uuid6 import uuid7

from cxops.common.db import UTCDateTime
from cxops.stats.scales import SurveyKind


class ScorecardTable(SQLModel, registry=registry()):
    """The base of scorecard's tables: a metadata of their own, so this service's migrations
    compare against its tables only, even in a process that imports other services' models."""


class ResponseFact(ScorecardTable, table=True):
    """One survey answer, as scorecard learnt it from ``cx.feedback.response.received.v1``.

    ``(tenant, response_id)`` is unique: the consumer's inbox already drops a redelivered event,
    and this drops the same response announced again under another event id, so no answer is
    ever counted twice.
    """

    __tablename__ = "scorecard_response_facts"
    __table_args__ = (
        sa.UniqueConstraint(
            "tenant", "response_id", name="uq_scorecard_response_facts_tenant_response"
        ),
        sa.Index(
            "ix_scorecard_response_facts_tenant_metric_occurred",
            "tenant",
            "metric",
            "occurred_at",
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    tenant: str = Field(sa_type=sa.String(64), nullable=False)
    response_id: uuid.UUID = Field(nullable=False)
    metric: SurveyKind = Field(
        sa_type=sa.Enum(
            SurveyKind,
            native_enum=False,
            length=8,
            values_callable=lambda metrics: [metric.value for metric in metrics],
            validate_strings=True,
        ),
        nullable=False,
    )
    score: int = Field(nullable=False)
    occurred_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    event_id: str = Field(sa_type=sa.String(36), nullable=False)
    recorded_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
