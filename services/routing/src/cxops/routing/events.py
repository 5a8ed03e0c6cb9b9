"""The event catalogue of the routing service: every event it publishes and its payload.

Every event travels on the ``CX_ROUTING`` stream as a CloudEvent in binary mode; ``ce-tenant``
is the tenant (payloads do not repeat it). Each is queued in the outbox in the transaction that
stored the change it announces. Payloads only ever gain fields.

``cx.routing.task.created.v1``      a task was accepted into a queue.
``cx.routing.task.offered.v1``      a reservation offered it to an agent.
``cx.routing.task.assigned.v1``     the agent accepted; ``wait_seconds`` is the speed of answer.
``cx.routing.task.completed.v1``    the work is done: queue, team, agent, channel, wait, handle
                                    time, resolved (first-contact resolution), CSAT if given.
``cx.routing.task.canceled.v1``     withdrawn before it was answered (``reason``: ``canceled``
                                    by the platform, or ``timed_out`` at its time to live).
``cx.routing.task.abandoned.v1``    the customer left before it was answered.
``cx.routing.task.escalated.v1``    an escalation rule fired for it.
``cx.routing.agent.status_changed.v1``  an agent's declared status changed (by the agent, a
                                    supervisor, or the engine after offers timed out).
``cx.routing.proficiency.changed.v1``   a skill level changed (a supervisor, or learning).

Routing consumes ``cx.feedback.case.opened.v1`` (each case becomes a task),
``cx.feedback.response.received.v1`` (a CSAT naming a task is learned from) and
``cx.journey.task.requested.v1`` (a proactive trigger's task); see
:mod:`cxops.routing.consumers`. :class:`CaseOpened`, :class:`ResponseReceived` and
:class:`TaskRequested` name the fields routing reads.
"""

import uuid
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

from cxops.common.events import Event
from cxops.routing.schemas import ExternalId, Name

EVENT_SOURCE = "/cxops/routing"

TASK_CREATED = "cx.routing.task.created.v1"
TASK_OFFERED = "cx.routing.task.offered.v1"
TASK_ASSIGNED = "cx.routing.task.assigned.v1"
TASK_COMPLETED = "cx.routing.task.completed.v1"
TASK_CANCELED = "cx.routing.task.canceled.v1"
TASK_ABANDONED = "cx.routing.task.abandoned.v1"
TASK_ESCALATED = "cx.routing.task.escalated.v1"
AGENT_STATUS_CHANGED = "cx.routing.agent.status_changed.v1"
PROFICIENCY_CHANGED = "cx.routing.proficiency.changed.v1"


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskCreatedV1(_Payload):
    task_id: uuid.UUID
    external_id: str | None
    queue: str
    channel: str
    priority: int
    tier: str
    customer_ref: str | None
    case_id: str | None
    created_at: AwareDatetime


class TaskOfferedV1(_Payload):
    task_id: uuid.UUID
    reservation_id: uuid.UUID
    agent_id: uuid.UUID
    queue: str
    channel: str
    offered_at: AwareDatetime
    expires_at: AwareDatetime


class TaskAssignedV1(_Payload):
    task_id: uuid.UUID
    reservation_id: uuid.UUID
    agent_id: uuid.UUID
    team: str | None
    queue: str
    channel: str
    wait_seconds: float
    assigned_at: AwareDatetime


class TaskCompletedV1(_Payload):
    task_id: uuid.UUID
    agent_id: uuid.UUID
    team: str | None
    queue: str
    channel: str
    tier: str
    customer_ref: str | None
    case_id: str | None
    wait_seconds: float
    handle_seconds: float
    resolved: bool
    csat: int | None
    completed_at: AwareDatetime


class TaskCanceledV1(_Payload):
    task_id: uuid.UUID
    queue: str
    channel: str
    reason: Literal["canceled", "timed_out"]
    waited_seconds: float
    canceled_at: AwareDatetime


class TaskAbandonedV1(_Payload):
    task_id: uuid.UUID
    queue: str
    channel: str
    waited_seconds: float
    abandoned_at: AwareDatetime


class TaskEscalatedV1(_Payload):
    task_id: uuid.UUID
    queue: str
    priority: int
    detail: str
    escalated_at: AwareDatetime


class AgentStatusChangedV1(_Payload):
    agent_id: uuid.UUID
    external_id: str
    team: str | None
    status: Literal["available", "away", "break", "offline"]
    previous: Literal["available", "away", "break", "offline"] | None
    reason: str | None
    changed_at: AwareDatetime


class ProficiencyChangedV1(_Payload):
    agent_id: uuid.UUID
    skill: str
    old_level: int | None
    new_level: int | None
    source: Literal["supervisor", "learning"]
    reason: str
    changed_at: AwareDatetime


#: Every subject this service publishes, and the model of its payload.
PUBLISHED: dict[str, type[BaseModel]] = {
    TASK_CREATED: TaskCreatedV1,
    TASK_OFFERED: TaskOfferedV1,
    TASK_ASSIGNED: TaskAssignedV1,
    TASK_COMPLETED: TaskCompletedV1,
    TASK_CANCELED: TaskCanceledV1,
    TASK_ABANDONED: TaskAbandonedV1,
    TASK_ESCALATED: TaskEscalatedV1,
    AGENT_STATUS_CHANGED: AgentStatusChangedV1,
    PROFICIENCY_CHANGED: ProficiencyChangedV1,
}


def routing_event(subject: str, *, tenant: str, **fields: Any) -> Event:
    """The event ``subject`` of ``tenant``, its payload validated by the subject's model."""
    payload = PUBLISHED[subject].model_validate(fields)
    return Event.new(
        subject=subject, source=EVENT_SOURCE, tenant=tenant, data=payload.model_dump(mode="json")
    )


CASE_OPENED = "cx.feedback.case.opened.v1"


class CaseOpened(BaseModel):
    """Routing's reading of ``cx.feedback.case.opened.v1``: the fields it uses, the rest
    ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    case_id: ExternalId
    #: The owning team: its queue takes the case.
    team: Name | None = None
    topic: Name | None = None
    customer_ref: ExternalId | None = None
    tier: Name | None = None
    #: When the corrective action must be documented: the task's ``sla_deadline``.
    action_due_at: AwareDatetime | None = None


RESPONSE_RECEIVED = "cx.feedback.response.received.v1"


class ResponseReceived(BaseModel):
    """Routing's reading of ``cx.feedback.response.received.v1``: a CSAT that names a task."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    response_id: uuid.UUID
    kind: str
    score: int
    task_id: uuid.UUID | None = None


TASK_REQUESTED = "cx.journey.task.requested.v1"


class TaskRequested(BaseModel):
    """Routing's reading of ``cx.journey.task.requested.v1``: a proactive trigger's
    ``create_task`` action, once per ``action_id``. Read as sent: what a task cannot carry is
    refused when the task is made (:func:`cxops.routing.consumers.requested_task`)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    action_id: uuid.UUID
    trigger_key: str
    customer_id: str
    customer_ref: str | None = None
    queue: str
    priority: int | None = None
    #: Preferred, not required, skills of the agent; none keeps the queue's.
    skills: dict[str, int] = {}


#: Every subject this service consumes, and the model it reads the payload with.
CONSUMED: dict[str, type[BaseModel]] = {
    CASE_OPENED: CaseOpened,
    RESPONSE_RECEIVED: ResponseReceived,
    TASK_REQUESTED: TaskRequested,
}
