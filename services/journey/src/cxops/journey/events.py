"""The event catalogue of the journey service: every event it publishes and its payload, and the
other services' events it reads.

``cx.journey.interaction.recorded.v1`` (payload :class:`InteractionRecordedV1`)
    An interaction was stored: once per ``external_id``, never again for a retried batch. It
    carries the interaction as the platform reported it and the profile identity resolution
    put it in at that moment (``customer_id``; null while none of its values joins anything).

``cx.journey.identities.merged.v1`` (payload :class:`IdentitiesMergedV1`)
    Two profiles became one: the surviving ``customer_id``, the profiles that ceased, the
    identifier *types* that linked them and the interaction that linked them first. The values
    stay in the service (``GET /v1/journey/customers/{id}``): the stream carries no emails.

``cx.journey.stage.completed.v1`` (payload :class:`StageCompletedV1`)
    A customer moved on from a stage of a journey map to a later one: the map and the version
    that placed them, the stage, the next stage, when they entered the one and reached the
    other, and the team that owns the stage left.

``cx.journey.handoff.delayed.v1`` (payload :class:`HandoffDelayedV1`)
    A handoff broke its map's SLA: the customer entered ``from_stage`` at ``entered_at`` and
    had not reached ``to_stage`` at ``deadline`` (``entered_at`` plus ``sla_seconds``).
    Published when the deadline passes, once, not when the next interaction happens to arrive;
    ``owner_team`` owns the stage the customer is waiting in.

``cx.journey.trigger.fired.v1`` (payload :class:`TriggerFiredV1`)
    A proactive trigger acted for a customer: the trigger's key and version, the customer, the
    actions to carry out (``notify``: send the outreach; ``invite_survey``; ``offer_gesture``
    with ``offered`` false when its budget was spent), the interaction that fired it and the
    dedupe key. The platform receives it by webhook (the gateway delivers ``cx.journey.*``).

``cx.journey.task.requested.v1`` (payload :class:`TaskRequestedV1`)
    A trigger's ``create_task`` action: routing creates the task in ``queue``, once per
    ``action_id`` (the task's external id is ``journey-<action_id>``).

Journey consumes its own ``cx.journey.interaction.recorded.v1`` (triggers evaluated for each)
and ``cx.journey.handoff.delayed.v1`` (``stage_overdue`` triggers).

**Other services' facts** (journey's own projection of them, :mod:`cxops.journey.projections`):
journey reads feedback's ``cx.feedback.response.received.v1``, ``response.enriched.v1`` and every
``cx.feedback.case.*.v1``, and routing's ``cx.routing.task.created|assigned|completed|canceled|
abandoned.v1``, each with a model in :data:`CONSUMED` that names the fields it uses.

``cx.journey.mining_job.completed.v1`` (payload :class:`MiningJobCompletedV1`)
    A mining job ended: ``succeeded``, ``failed`` or ``canceled``, with its source kind
    (``event_log`` or ``interactions``), the cases and events mined (null unless it
    succeeded) and the seconds it ran. The result stays in the service
    (``GET /v1/journey/mining-jobs/{id}/result``).

``cx.journey.simulation_job.completed.v1`` (payload :class:`SimulationJobCompletedV1`)
    A simulation job ended, likewise, with the simulated events.

Every event travels on the ``CX_JOURNEY`` stream as a CloudEvent in binary mode
(:class:`cxops.common.events.Event`): ``ce-source`` is :data:`EVENT_SOURCE`, ``ce-tenant`` the
tenant (the payload does not repeat it), ``Nats-Msg-Id`` the ``ce-id``. Payloads only ever gain
fields; a breaking change is a new ``.v2`` subject published beside ``.v1``.
"""

import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, JsonValue

from cxops.common.events import Event

EVENT_SOURCE = "/cxops/journey"

INTERACTION_RECORDED = "cx.journey.interaction.recorded.v1"
IDENTITIES_MERGED = "cx.journey.identities.merged.v1"


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InteractionRecordedV1(_Payload):
    interaction_id: uuid.UUID
    external_id: str
    occurred_at: AwareDatetime
    identifiers: dict[str, str]
    channel: str
    activity: str
    team: str | None
    stage: str | None
    attributes: dict[str, JsonValue]
    customer_id: str | None
    received_at: AwareDatetime


class IdentitiesMergedV1(_Payload):
    customer_id: str
    merged: list[str]
    linked_by: list[str]
    interaction_id: uuid.UUID | None
    merged_at: AwareDatetime


#: Every subject this service publishes, and the model of its payload.
PUBLISHED: dict[str, type[BaseModel]] = {
    INTERACTION_RECORDED: InteractionRecordedV1,
    IDENTITIES_MERGED: IdentitiesMergedV1,
}


def journey_event(
    subject: str, *, tenant: str, trace: Mapping[str, str] | None = None, **fields: Any
) -> Event:
    """The event ``subject`` of ``tenant``, its payload validated by the subject's model;
    ``trace`` as for :meth:`Event.new`."""
    payload = PUBLISHED[subject].model_validate(fields)
    return Event.new(
        subject=subject,
        source=EVENT_SOURCE,
        tenant=tenant,
        data=payload.model_dump(mode="json"),
        trace=trace,
    )


# ---------------------------------------------------------------------- journey maps, live
# The events of the journey maps' live progress (:mod:`cxops.journey.maps_live`).

STAGE_COMPLETED = "cx.journey.stage.completed.v1"
HANDOFF_DELAYED = "cx.journey.handoff.delayed.v1"


class StageCompletedV1(_Payload):
    map_key: str
    map_version: int
    customer_id: str
    stage: str
    next_stage: str
    entered_at: AwareDatetime
    completed_at: AwareDatetime
    seconds: float
    owner_team: str | None


class HandoffDelayedV1(_Payload):
    map_key: str
    map_version: int
    customer_id: str
    from_stage: str
    to_stage: str
    entered_at: AwareDatetime
    deadline: AwareDatetime
    sla_seconds: float
    owner_team: str | None


PUBLISHED[STAGE_COMPLETED] = StageCompletedV1
PUBLISHED[HANDOFF_DELAYED] = HandoffDelayedV1

# --- proactive triggers ----------------------------------------------------------------------

TRIGGER_FIRED = "cx.journey.trigger.fired.v1"
TASK_REQUESTED = "cx.journey.task.requested.v1"


class FiringInteraction(_Payload):
    """The interaction a trigger fired on, as the outreach needs it."""

    interaction_id: uuid.UUID | None
    external_id: str | None
    activity: str | None
    channel: str | None
    occurred_at: AwareDatetime
    attributes: dict[str, Any]


class TriggerFiredV1(_Payload):
    action_id: uuid.UUID
    trigger_key: str
    trigger_version: int
    customer_id: str
    #: The customer's ``crm_id``, what other services call ``customer_ref`` (null if none).
    customer_ref: str | None
    actions: list[dict[str, Any]]
    interaction: FiringInteraction
    dedupe_key: str
    fired_at: AwareDatetime


class TaskRequestedV1(_Payload):
    action_id: uuid.UUID
    trigger_key: str
    trigger_version: int
    customer_id: str
    customer_ref: str | None
    queue: str
    priority: int | None
    skills: dict[str, int]
    dedupe_key: str
    requested_at: AwareDatetime


class HandoffDelayed(BaseModel):
    """Triggers' reading of ``cx.journey.handoff.delayed.v1``: the fields a ``stage_overdue``
    trigger uses, the rest ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    map_key: str
    customer_id: str | None = None
    from_stage: str
    to_stage: str


PUBLISHED[TRIGGER_FIRED] = TriggerFiredV1
PUBLISHED[TASK_REQUESTED] = TaskRequestedV1

#: Every subject this service consumes, and the model it reads the payload with.
CONSUMED: dict[str, type[BaseModel]] = {
    INTERACTION_RECORDED: InteractionRecordedV1,
    HANDOFF_DELAYED: HandoffDelayed,
}


# ----------------------------------------------------- other services' facts (the projection)
#: How journey reads the events it keeps customer facts from: the fields it uses, the rest
#: ignored (publishers only ever add fields).

RESPONSE_RECEIVED = "cx.feedback.response.received.v1"
RESPONSE_ENRICHED = "cx.feedback.response.enriched.v1"
CASE_SUBJECTS = tuple(
    f"cx.feedback.case.{name}.v1"
    for name in (
        "opened",
        "assigned",
        "acknowledged",
        "action_documented",
        "closed",
        "reopened",
        "breached",
        "escalated",
    )
)
CASE_BREACHED = "cx.feedback.case.breached.v1"
CASE_CLOSED = "cx.feedback.case.closed.v1"
TASK_CREATED = "cx.routing.task.created.v1"
TASK_ASSIGNED = "cx.routing.task.assigned.v1"
TASK_COMPLETED = "cx.routing.task.completed.v1"
TASK_CANCELED = "cx.routing.task.canceled.v1"
TASK_ABANDONED = "cx.routing.task.abandoned.v1"
FEEDBACK_FACT_SUBJECTS = (RESPONSE_RECEIVED, RESPONSE_ENRICHED, *CASE_SUBJECTS)
ROUTING_FACT_SUBJECTS = (TASK_CREATED, TASK_ASSIGNED, TASK_COMPLETED, TASK_CANCELED, TASK_ABANDONED)


class _Reading(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ResponseReceived(_Reading):
    response_id: str
    kind: str
    score: int
    customer_ref: str
    channel: str
    task_id: str | None = None
    agent_id: str | None = None
    occurred_at: AwareDatetime


class Sentiment(_Reading):
    label: str
    score: float
    confidence: float


class ResponseEnriched(ResponseReceived):
    """``comment`` is redacted by feedback before it is published."""

    comment: str | None
    language: str
    sentiment: Sentiment | None


class CaseChanged(_Reading):
    case_id: str
    state: str
    team: str
    owner: str | None = None
    topic: str | None = None
    customer_ref: str
    round: int
    feedback_at: AwareDatetime
    opened_at: AwareDatetime
    acknowledge_due_at: AwareDatetime
    action_due_at: AwareDatetime
    close_due_at: AwareDatetime
    seconds_since_open: float
    acknowledged_after_seconds: float | None = None
    action_documented_after_seconds: float | None = None
    closed_after_seconds: float | None = None


class CaseClosed(CaseChanged):
    customer_contacted: bool


class CaseBreached(CaseChanged):
    clock: str
    deadline: AwareDatetime
    breach_round: int


class TaskCreated(_Reading):
    task_id: str
    queue: str
    channel: str
    customer_ref: str | None
    case_id: str | None
    created_at: AwareDatetime


class TaskAssigned(_Reading):
    task_id: str
    agent_id: str
    team: str | None
    queue: str
    wait_seconds: float
    assigned_at: AwareDatetime


class TaskCompleted(_Reading):
    task_id: str
    agent_id: str
    team: str | None
    queue: str
    channel: str
    customer_ref: str | None
    wait_seconds: float
    handle_seconds: float
    resolved: bool
    csat: int | None
    completed_at: AwareDatetime


class TaskCanceled(_Reading):
    task_id: str
    reason: str
    waited_seconds: float
    canceled_at: AwareDatetime


class TaskAbandoned(_Reading):
    task_id: str
    waited_seconds: float
    abandoned_at: AwareDatetime


CONSUMED.update(
    {
        RESPONSE_RECEIVED: ResponseReceived,
        RESPONSE_ENRICHED: ResponseEnriched,
        **{subject: CaseChanged for subject in CASE_SUBJECTS},
        CASE_CLOSED: CaseClosed,
        CASE_BREACHED: CaseBreached,
        TASK_CREATED: TaskCreated,
        TASK_ASSIGNED: TaskAssigned,
        TASK_COMPLETED: TaskCompleted,
        TASK_CANCELED: TaskCanceled,
        TASK_ABANDONED: TaskAbandoned,
    }
)


# --- Mining and simulation jobs ----------------------------------------------------------------

MINING_JOB_COMPLETED = "cx.journey.mining_job.completed.v1"
SIMULATION_JOB_COMPLETED = "cx.journey.simulation_job.completed.v1"


class MiningJobCompletedV1(_Payload):
    job_id: uuid.UUID
    state: str
    source_kind: str
    cases: int | None
    events: int | None
    seconds: float | None


class SimulationJobCompletedV1(_Payload):
    job_id: uuid.UUID
    state: str
    events: int | None
    seconds: float | None


PUBLISHED[MINING_JOB_COMPLETED] = MiningJobCompletedV1
PUBLISHED[SIMULATION_JOB_COMPLETED] = SimulationJobCompletedV1
