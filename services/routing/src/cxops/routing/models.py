"""Routing's tables: what the engine is rebuilt from, and what the API reads.

The engine (``domain/engine.py``) holds each tenant's live state in memory; these tables are its
durable copy, written in the same transaction as the events that announce each change. Never
returned to callers as they are: :mod:`cxops.routing.schemas` is the public shape.
"""

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from cxops.common.db import UTCDateTime


class RoutingTable(SQLModel, registry=registry()):
    """The base of routing's tables: a metadata of their own (see feedback's models)."""


def _json() -> Any:
    return Field(default_factory=dict, sa_type=sa.JSON, nullable=False)


class RoutingAgent(RoutingTable, table=True):
    """An agent as registered, with the presence they declared and the engine's bookkeeping
    that must survive a restart (idle order, offers let time out in a row)."""

    __tablename__ = "routing_agents"
    __table_args__ = (
        # Among agents not deleted: a deleted agent's external id may be registered again.
        sa.Index(
            "uq_routing_agents_tenant_external_id",
            "tenant",
            "external_id",
            unique=True,
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        ),
        sa.Index("ix_routing_agents_tenant_team", "tenant", "team"),
    )

    id: uuid.UUID = Field(primary_key=True)
    tenant: str = Field(sa_type=sa.String(64), nullable=False)
    external_id: str = Field(sa_type=sa.String(128), nullable=False)
    name: str = Field(sa_type=sa.String(200), nullable=False)
    team: str | None = Field(default=None, sa_type=sa.String(64))
    skills: dict[str, int] = _json()
    channels: dict[str, int] = _json()
    languages: list[str] = Field(default_factory=list, sa_type=sa.JSON, nullable=False)
    pinned_skills: list[str] = Field(default_factory=list, sa_type=sa.JSON, nullable=False)
    status: str = Field(sa_type=sa.String(16), nullable=False)
    status_reason: str | None = Field(default=None, sa_type=sa.String(200))
    status_changed_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    last_finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    consecutive_timeouts: int = Field(default=0, nullable=False)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class RoutingQueue(RoutingTable, table=True):
    """A line of work: its channel and requirements, and the policy tasks in it follow."""

    __tablename__ = "routing_queues"
    __table_args__ = (sa.UniqueConstraint("tenant", "name", name="uq_routing_queues_tenant_name"),)

    id: uuid.UUID = Field(primary_key=True)
    tenant: str = Field(sa_type=sa.String(64), nullable=False)
    name: str = Field(sa_type=sa.String(64), nullable=False)
    channel: str = Field(sa_type=sa.String(64), nullable=False)
    requires: dict[str, int] = _json()
    optional: dict[str, int] = _json()
    priority: int = Field(default=0, nullable=False)
    service_level: dict[str, float] = _json()
    relaxation: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON, nullable=False)
    escalation: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON, nullable=False)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class RoutingTask(RoutingTable, table=True):
    """A unit of work and where it stands. ``priority``, ``requires`` and ``queue`` are the
    current values (escalation changes them); ``fired_rules`` are the escalation rules that
    already fired for it, so a rebuilt engine does not fire them again."""

    __tablename__ = "routing_tasks"
    __table_args__ = (
        sa.UniqueConstraint("tenant", "external_id", name="uq_routing_tasks_tenant_external_id"),
        sa.UniqueConstraint(
            "tenant", "idempotency_key", name="uq_routing_tasks_tenant_idempotency_key"
        ),
        sa.Index("ix_routing_tasks_tenant_state", "tenant", "state"),
        sa.Index("ix_routing_tasks_tenant_queue_created", "tenant", "queue", "created_at"),
        sa.Index("ix_routing_tasks_tenant_customer_ref", "tenant", "customer_ref"),
    )

    id: uuid.UUID = Field(primary_key=True)
    tenant: str = Field(sa_type=sa.String(64), nullable=False)
    external_id: str | None = Field(default=None, sa_type=sa.String(128))
    idempotency_key: str | None = Field(default=None, sa_type=sa.String(255))
    request_fingerprint: str | None = Field(default=None, sa_type=sa.String(64))
    channel: str = Field(sa_type=sa.String(64), nullable=False)
    queue: str = Field(sa_type=sa.String(64), nullable=False)
    requires: dict[str, int] = _json()
    optional: dict[str, int] = _json()
    priority: int = Field(default=0, nullable=False)
    tier: str = Field(sa_type=sa.String(32), nullable=False)
    customer_ref: str | None = Field(default=None, sa_type=sa.String(128))
    attributes: dict[str, Any] = _json()
    timeout_seconds: float | None = Field(default=None)
    state: str = Field(sa_type=sa.String(16), nullable=False)
    reason: str | None = Field(default=None, sa_type=sa.String(200))
    agent_id: uuid.UUID | None = Field(default=None)
    team: str | None = Field(default=None, sa_type=sa.String(64))
    fired_rules: list[str] = Field(default_factory=list, sa_type=sa.JSON, nullable=False)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    assigned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    wrapping_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    wait_seconds: float | None = Field(default=None)
    handle_seconds: float | None = Field(default=None)
    resolved: bool | None = Field(default=None)
    csat: int | None = Field(default=None)


class RoutingReservation(RoutingTable, table=True):
    """An offer of a task to an agent and how it ended."""

    __tablename__ = "routing_reservations"
    __table_args__ = (
        sa.Index("ix_routing_reservations_tenant_agent_state", "tenant", "agent_id", "state"),
        sa.Index("ix_routing_reservations_tenant_task", "tenant", "task_id"),
    )

    id: uuid.UUID = Field(primary_key=True)
    tenant: str = Field(sa_type=sa.String(64), nullable=False)
    task_id: uuid.UUID = Field(nullable=False)
    agent_id: uuid.UUID = Field(nullable=False)
    channel: str = Field(sa_type=sa.String(64), nullable=False)
    state: str = Field(sa_type=sa.String(16), nullable=False)
    offered_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class RoutingTaskEvent(RoutingTable, table=True):
    """What happened to a task besides its offers: queued, relaxed, escalated, alerts,
    requeued, changed (``GET /tasks/{id}`` shows them)."""

    __tablename__ = "routing_task_events"
    __table_args__ = (sa.Index("ix_routing_task_events_tenant_task", "tenant", "task_id"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(sa_type=sa.String(64), nullable=False)
    task_id: uuid.UUID = Field(nullable=False)
    kind: str = Field(sa_type=sa.String(32), nullable=False)
    at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    agent_id: uuid.UUID | None = Field(default=None)
    detail: str = Field(default="", sa_type=sa.Text, nullable=False)


class RoutingProficiencyChange(RoutingTable, table=True):
    """Every change of an agent's proficiency, by a supervisor or by learning."""

    __tablename__ = "routing_proficiency_changes"
    __table_args__ = (
        sa.Index("ix_routing_proficiency_changes_tenant_agent", "tenant", "agent_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(sa_type=sa.String(64), nullable=False)
    agent_id: uuid.UUID = Field(nullable=False)
    skill: str = Field(sa_type=sa.String(64), nullable=False)
    old_level: int | None = Field(default=None)
    new_level: int | None = Field(default=None)
    source: str = Field(sa_type=sa.String(16), nullable=False)
    reason: str = Field(default="", sa_type=sa.Text, nullable=False)
    at: datetime = Field(sa_type=UTCDateTime, nullable=False)
