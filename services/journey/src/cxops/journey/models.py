"""Journey's tables. Never returned to callers as they are: :mod:`cxops.journey.schemas` is the
public shape."""

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel
from uuid6 import uuid7

from cxops.common.db import UTCDateTime


class JourneyTable(SQLModel, registry=registry()):
    """The base of journey's tables: a metadata of their own, so this service's migrations
    compare against its tables only, even in a process that imports other services' models."""


class Interaction(JourneyTable, table=True):
    """Something that happened to a customer, as a platform reported it.

    ``identifiers`` are the values as given (``{"email": ..., "phone": ...}``); their normalised
    forms are :class:`InteractionIdentifier` rows. ``customer_id`` is the profile identity
    resolution put the interaction in (null while none of its values can join anything).
    ``external_id`` is unique per tenant: a retried batch stores nothing twice.
    """

    __tablename__ = "journey_interactions"
    __table_args__ = (
        sa.UniqueConstraint("tenant", "external_id", name="uq_journey_interactions_external_id"),
        sa.Index("ix_journey_interactions_customer", "tenant", "customer_id", "occurred_at"),
        sa.Index("ix_journey_interactions_time", "tenant", "occurred_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    tenant: str = Field(sa_type=sa.String(64), nullable=False)
    external_id: str = Field(sa_type=sa.String(255), nullable=False)
    occurred_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    received_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    channel: str = Field(sa_type=sa.String(64), nullable=False)
    activity: str = Field(sa_type=sa.String(255), nullable=False)
    team: str | None = Field(default=None, sa_type=sa.String(128), nullable=True)
    stage: str | None = Field(default=None, sa_type=sa.String(128), nullable=True)
    identifiers: dict[str, Any] = Field(sa_type=sa.JSON, nullable=False)
    attributes: dict[str, Any] = Field(sa_type=sa.JSON, nullable=False)
    customer_id: str | None = Field(default=None, sa_type=sa.String(64), nullable=True)


class InteractionIdentifier(JourneyTable, table=True):
    """One normalised identifier value an interaction carries: what resolution follows from an
    arriving interaction to the others it may join."""

    __tablename__ = "journey_interaction_identifiers"
    __table_args__ = (
        sa.Index("ix_journey_interaction_identifiers_value", "tenant", "type", "value"),
    )

    interaction_id: uuid.UUID = Field(primary_key=True)
    type: str = Field(sa_type=sa.String(64), primary_key=True)
    value: str = Field(sa_type=sa.String(320), primary_key=True)
    tenant: str = Field(sa_type=sa.String(64), nullable=False)


class Customer(JourneyTable, table=True):
    """A resolved customer profile, named by a hash of its smallest identifier.

    ``identifiers`` are ``[{type, value}]``; ``merges`` and ``refusals`` are the records of the
    joins (the value and the interaction that linked them) and of the joins a cap or a split
    refused, as :mod:`cxops.journey.schemas` shows them. A profile is rewritten whenever the
    interactions of its component change; one that stops existing (joined into another) is
    deleted. A profile may hold no interaction (yet): a value a split put apart, whose
    interactions all went to the profile holding their other values; its times are then null.
    """

    __tablename__ = "journey_customers"

    tenant: str = Field(sa_type=sa.String(64), primary_key=True)
    id: str = Field(sa_type=sa.String(64), primary_key=True)
    identifiers: list[dict[str, Any]] = Field(sa_type=sa.JSON, nullable=False)
    merges: list[dict[str, Any]] = Field(sa_type=sa.JSON, nullable=False)
    refusals: list[dict[str, Any]] = Field(sa_type=sa.JSON, nullable=False)
    interactions: int = Field(nullable=False)
    first_seen: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    last_seen: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class CustomerIdentifier(JourneyTable, table=True):
    """Which profile holds an identifier value: the lookup by ``email:ana@…``, and by the
    ``crm_id`` other services call ``customer_ref``."""

    __tablename__ = "journey_customer_identifiers"
    __table_args__ = (
        sa.Index("ix_journey_customer_identifiers_customer", "tenant", "customer_id"),
    )

    tenant: str = Field(sa_type=sa.String(64), primary_key=True)
    type: str = Field(sa_type=sa.String(64), primary_key=True)
    value: str = Field(sa_type=sa.String(320), primary_key=True)
    customer_id: str = Field(sa_type=sa.String(64), nullable=False)


class CustomerAlias(JourneyTable, table=True):
    """A profile id that ceased, and the profile holding its interactions now: two profiles
    joined, or a smaller identifier renamed one. A desk or a CRM that kept the old id still
    finds the customer; an id that names a profile again (after a split) is no alias."""

    __tablename__ = "journey_customer_aliases"
    __table_args__ = (sa.Index("ix_journey_customer_aliases_target", "tenant", "customer_id"),)

    tenant: str = Field(sa_type=sa.String(64), primary_key=True)
    id: str = Field(sa_type=sa.String(64), primary_key=True)
    customer_id: str = Field(sa_type=sa.String(64), nullable=False)
    since: datetime = Field(sa_type=UTCDateTime, nullable=False)


class CommonValue(JourneyTable, table=True):
    """A value found too common to join anything (a shared inbox): blocked for good, since the
    values it is seen with only grow."""

    __tablename__ = "journey_common_values"

    tenant: str = Field(sa_type=sa.String(64), primary_key=True)
    type: str = Field(sa_type=sa.String(64), primary_key=True)
    value: str = Field(sa_type=sa.String(320), primary_key=True)
    detail: str = Field(sa_type=sa.Text, nullable=False)


class IdentitySplit(JourneyTable, table=True):
    """A person's undoing of a wrong merge: no profile may again hold a value of ``left`` and
    one of ``right`` (each ``[{type, value}]``)."""

    __tablename__ = "journey_identity_splits"
    __table_args__ = (sa.Index("ix_journey_identity_splits_tenant", "tenant", "created_at"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    tenant: str = Field(sa_type=sa.String(64), nullable=False)
    customer_id: str = Field(sa_type=sa.String(64), nullable=False)
    left: list[dict[str, Any]] = Field(sa_type=sa.JSON, nullable=False)
    right: list[dict[str, Any]] = Field(sa_type=sa.JSON, nullable=False)
    reason: str | None = Field(default=None, sa_type=sa.Text, nullable=True)
    by: str = Field(sa_type=sa.String(128), nullable=False)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class IdentityLock(JourneyTable, table=True):
    """One row per tenant, updated by every resolution: two replicas resolving the same
    tenant's interactions take turns, so neither rewrites a profile the other just changed."""

    __tablename__ = "journey_identity_locks"

    tenant: str = Field(sa_type=sa.String(64), primary_key=True)
    version: int = Field(nullable=False)


class DecisionLock(JourneyTable, table=True):
    """One row per tenant, updated by every trigger decision: two replicas deciding for the
    same tenant take turns, so a frequency cap or a gesture budget counts what the other just
    did instead of both spending its last unit."""

    __tablename__ = "journey_decision_locks"

    tenant: str = Field(sa_type=sa.String(64), primary_key=True)
    version: int = Field(nullable=False)


class CustomerFact(JourneyTable, table=True):
    """What other services' events say about a customer, as journey keeps it (it reads no other
    service's tables): a feedback ``response``, a closed-loop ``case`` or a routing ``task``.

    ``customer_ref`` is the events' reference for the customer, the ``crm_id`` identifier of
    journey's profiles. ``state`` is the case's or task's current state; ``payload`` is
    ``{"fields", "versions", "breaches"}``: the fields the timeline and the context show, the
    time of the event that set each (an older event arriving late never overwrites a newer
    value), and a case's breached clocks. ``last_event_at`` orders the state the same way.
    """

    __tablename__ = "journey_customer_facts"
    __table_args__ = (
        sa.UniqueConstraint("tenant", "kind", "ref_id", name="uq_journey_customer_facts_ref"),
        sa.Index("ix_journey_customer_facts_customer", "tenant", "customer_ref", "occurred_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    tenant: str = Field(sa_type=sa.String(64), nullable=False)
    kind: str = Field(sa_type=sa.String(16), nullable=False)
    ref_id: str = Field(sa_type=sa.String(64), nullable=False)
    customer_ref: str = Field(sa_type=sa.String(255), nullable=False)
    occurred_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    state: str = Field(sa_type=sa.String(32), nullable=False)
    payload: dict[str, Any] = Field(sa_type=sa.JSON, nullable=False)
    last_event_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class ProactiveAction(JourneyTable, table=True):
    """The customer's proactive action log: every time a trigger matched them, what happened.

    ``outcome`` is ``taken`` (the actions ran), ``held_out`` (the trigger's holdout: nothing
    done, on purpose), ``capped`` (the frequency cap stopped it), ``quiet`` (quiet hours) or
    ``duplicate`` (already done for this ``dedupe_key``). ``actions`` lists what was done
    (``[{"type": "notify" | "create_task" | "invite_survey" | "offer_gesture", ...}]``).
    """

    __tablename__ = "journey_proactive_actions"
    __table_args__ = (
        sa.Index("ix_journey_proactive_actions_customer", "tenant", "customer_id", "at"),
        sa.Index("ix_journey_proactive_actions_trigger", "tenant", "trigger_key", "at"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    tenant: str = Field(sa_type=sa.String(64), nullable=False)
    customer_id: str = Field(sa_type=sa.String(64), nullable=False)
    trigger_key: str = Field(sa_type=sa.String(64), nullable=False)
    trigger_version: int = Field(nullable=False)
    outcome: str = Field(sa_type=sa.String(16), nullable=False)
    dedupe_key: str = Field(sa_type=sa.String(255), nullable=False)
    actions: list[dict[str, Any]] = Field(sa_type=sa.JSON, nullable=False)
    interaction_id: uuid.UUID | None = Field(default=None, nullable=True)
    at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class JourneyMapVersion(JourneyTable, table=True):
    """One version of a tenant's journey map ``key``: the ``--map`` format with each stage's
    owning team and RACI. A change is a new version; conformance records the version it used."""

    __tablename__ = "journey_maps"

    tenant: str = Field(sa_type=sa.String(64), primary_key=True)
    key: str = Field(sa_type=sa.String(64), primary_key=True)
    version: int = Field(primary_key=True)
    body: dict[str, Any] = Field(sa_type=sa.JSON, nullable=False)
    by: str = Field(sa_type=sa.String(128), nullable=False)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


# ---------------------------------------------------------------------- journey maps, live


class MapProgress(JourneyTable, table=True):
    """Where a customer is in a tenant's journey map ``map_key``, as the interactions seen so
    far place them: the stage and when they entered it (the first interaction in it), and the
    time of the latest interaction counted (an older one arriving late moves nothing).
    ``version`` goes up with every change: a change is written only at the version it read."""

    __tablename__ = "journey_map_progress"

    tenant: str = Field(sa_type=sa.String(64), primary_key=True)
    map_key: str = Field(sa_type=sa.String(64), primary_key=True)
    customer_id: str = Field(sa_type=sa.String(64), primary_key=True)
    map_version: int = Field(nullable=False)
    stage: str = Field(sa_type=sa.Text, nullable=False)
    entered_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    last_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    version: int = Field(nullable=False)


class HandoffDeadline(JourneyTable, table=True):
    """A handoff SLA running for one customer: armed when they entered ``from_stage``, due at
    ``due_at``. ``state`` is ``armed``, ``cleared`` (``to_stage``, or a stage after it, was
    reached in time) or ``fired`` (``cx.journey.handoff.delayed.v1`` was published); only an
    armed deadline may change, so it is settled once whoever (a timer, a consumer, a replica)
    gets there first."""

    __tablename__ = "journey_handoff_deadlines"
    __table_args__ = (
        sa.Index("ix_journey_handoff_deadlines_due", "state", "due_at"),
        sa.Index(
            "ix_journey_handoff_deadlines_customer", "tenant", "map_key", "customer_id", "state"
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    tenant: str = Field(sa_type=sa.String(64), nullable=False)
    map_key: str = Field(sa_type=sa.String(64), nullable=False)
    map_version: int = Field(nullable=False)
    customer_id: str = Field(sa_type=sa.String(64), nullable=False)
    from_stage: str = Field(sa_type=sa.Text, nullable=False)
    to_stage: str = Field(sa_type=sa.Text, nullable=False)
    owner_team: str | None = Field(default=None, sa_type=sa.Text, nullable=True)
    entered_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    due_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    sla_seconds: float = Field(nullable=False)
    state: str = Field(sa_type=sa.String(16), nullable=False)
    settled_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


# --- proactive triggers ----------------------------------------------------------------------


class TriggerVersion(JourneyTable, table=True):
    """One version of a tenant's proactive trigger ``key``: its ``when``, ``then``, holdout and
    gesture budget as :class:`cxops.journey.schemas.TriggerPut` reads them. A change is a new
    version; each action log row names the version that decided it."""

    __tablename__ = "journey_triggers"

    tenant: str = Field(sa_type=sa.String(64), primary_key=True)
    key: str = Field(sa_type=sa.String(64), primary_key=True)
    version: int = Field(primary_key=True)
    body: dict[str, Any] = Field(sa_type=sa.JSON, nullable=False)
    by: str = Field(sa_type=sa.String(128), nullable=False)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class TriggerSettings(JourneyTable, table=True):
    """A tenant's limits on proactive contact, across all its triggers; a tenant without a row
    has the service's defaults (``CXOPS_JOURNEY_TRIGGER_*``)."""

    __tablename__ = "journey_trigger_settings"

    tenant: str = Field(sa_type=sa.String(64), primary_key=True)
    max_contacts: int = Field(nullable=False)
    per_days: int = Field(nullable=False)
    quiet_start: str = Field(sa_type=sa.String(5), nullable=False)
    quiet_end: str = Field(sa_type=sa.String(5), nullable=False)
    timezone: str = Field(sa_type=sa.String(64), nullable=False)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


#: One treatment (or deliberate non-treatment) per customer and dedupe key: two replicas
#: deciding the same delayed shipment at once cannot both act; the loser retries and finds it.
sa.Index(
    "uq_journey_proactive_actions_settled",
    ProactiveAction.__table__.c.tenant,  # type: ignore[attr-defined]
    ProactiveAction.__table__.c.customer_id,  # type: ignore[attr-defined]
    ProactiveAction.__table__.c.dedupe_key,  # type: ignore[attr-defined]
    unique=True,
    sqlite_where=sa.text("outcome IN ('taken', 'held_out')"),
    postgresql_where=sa.text("outcome IN ('taken', 'held_out')"),
)


# --- Event logs and jobs (mining and simulation as jobs) ---------------------------------------


class EventLogFile(JourneyTable, table=True):
    """An uploaded event log: the file under the service's data directory (``path``, relative
    to it), what it holds and which of its columns hold the case, activity, time, team and
    channel (``columns``: the names of ``cxops journey mine``'s options, team and channel null
    when the log has none)."""

    __tablename__ = "journey_event_logs"
    __table_args__ = (sa.Index("ix_journey_event_logs_tenant", "tenant", "created_at"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    tenant: str = Field(sa_type=sa.String(64), nullable=False)
    filename: str = Field(sa_type=sa.String(255), nullable=False)
    format: str = Field(sa_type=sa.String(16), nullable=False)
    size: int = Field(sa_type=sa.BigInteger, nullable=False)
    sha256: str = Field(sa_type=sa.String(64), nullable=False)
    columns: dict[str, Any] = Field(sa_type=sa.JSON, nullable=False)
    path: str = Field(sa_type=sa.String(512), nullable=False)
    by: str = Field(sa_type=sa.String(128), nullable=False)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class Job(JourneyTable, table=True):
    """A mining or simulation job (``kind``) and where it stands.

    ``request`` is what was asked (the mining source and map, or the simulation model and the
    command's options), ``source_kind`` the mining source (``event_log`` or ``interactions``;
    ``model`` for a simulation). ``attempts`` counts the workers that took it (more than one
    after a worker died). ``cases`` and ``events`` size a finished mining run.
    """

    __tablename__ = "journey_jobs"
    __table_args__ = (sa.Index("ix_journey_jobs_tenant", "tenant", "kind", "created_at"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    tenant: str = Field(sa_type=sa.String(64), nullable=False)
    kind: str = Field(sa_type=sa.String(16), nullable=False)
    state: str = Field(sa_type=sa.String(16), nullable=False)
    progress: float = Field(nullable=False)
    source_kind: str = Field(sa_type=sa.String(16), nullable=False)
    request: dict[str, Any] = Field(sa_type=sa.JSON, nullable=False)
    error: str | None = Field(default=None, sa_type=sa.Text, nullable=True)
    attempts: int = Field(nullable=False)
    cases: int | None = Field(default=None, nullable=True)
    events: int | None = Field(default=None, nullable=True)
    by: str = Field(sa_type=sa.String(128), nullable=False)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class JobResult(JourneyTable, table=True):
    """A succeeded job's result: the command's JSON as text, kept as it was printed (it can be
    megabytes; it is served as it is, never parsed again)."""

    __tablename__ = "journey_job_results"

    job_id: uuid.UUID = Field(primary_key=True)
    tenant: str = Field(sa_type=sa.String(64), nullable=False)
    body: str = Field(sa_type=sa.Text, nullable=False)
