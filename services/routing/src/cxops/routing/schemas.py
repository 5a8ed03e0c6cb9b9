"""What callers send and what they get back; the tables in :mod:`cxops.routing.models` are never
exposed as they are.

The policy shapes (skills, relaxation steps, escalation rules) are those of the replay scenario
(:mod:`cxops.routing.formats`): one definition, for the file and the API.
"""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cxops.common.validation import SingleLine, UtcDateTime
from cxops.routing.formats import Proficiency, RelaxationSpec, RuleSpec

Name = Annotated[str, SingleLine(64)]
ExternalId = Annotated[str, SingleLine(128)]
Skills = dict[Name, Proficiency]
#: Units of work an agent takes at once on a channel (voice 1, chat 3...).
Capacity = Annotated[int, Field(ge=1, le=100)]
#: How many skills, channels or languages one agent or task may list.
MAX_ENTRIES = 50


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------------------------ agents


class AgentStatus(StrEnum):
    """What the agent declared. ``away`` and ``break`` both stop offers; the engine also sets
    ``away`` after too many offers in a row let time out."""

    AVAILABLE = "available"
    AWAY = "away"
    BREAK = "break"
    OFFLINE = "offline"


class AgentCreate(_Body):
    external_id: ExternalId = Field(description="The platform's id for the agent; unique.")
    name: Annotated[str, SingleLine(200)]
    team: Name | None = None
    skills: Annotated[Skills, Field(max_length=MAX_ENTRIES)] = Field(
        default_factory=dict, description="Skill name to proficiency, 1 (novice) to 5 (expert)."
    )
    channels: Annotated[dict[Name, Capacity], Field(min_length=1, max_length=MAX_ENTRIES)] = Field(
        description="Channel to capacity: how many tasks of it at once."
    )
    languages: Annotated[list[Name], Field(max_length=MAX_ENTRIES)] = Field(default_factory=list)
    status: AgentStatus = Field(
        default=AgentStatus.OFFLINE, description="Agents start offline unless told otherwise."
    )


class AgentPatch(_Body):
    """A JSON merge patch (RFC 7396) of an agent: ``skills`` and ``channels`` are merged, a
    ``null`` value removes that skill or channel. A skill set here is the supervisor's value:
    it is pinned, and proficiency learning leaves it alone."""

    name: Annotated[str, SingleLine(200)] | None = None
    team: Name | None = None
    skills: Annotated[dict[Name, Proficiency | None], Field(max_length=MAX_ENTRIES)] | None = None
    channels: Annotated[dict[Name, Capacity | None], Field(max_length=MAX_ENTRIES)] | None = None
    languages: Annotated[list[Name], Field(max_length=MAX_ENTRIES)] | None = None


class StatusUpdate(_Body):
    status: AgentStatus
    reason: Annotated[str, SingleLine(200)] | None = None


class AgentPublic(BaseModel):
    id: uuid.UUID
    external_id: str
    name: str
    team: str | None
    skills: dict[str, int]
    pinned_skills: list[str]
    channels: dict[str, int]
    languages: list[str]
    status: AgentStatus
    status_reason: str | None
    status_changed_at: datetime
    load: dict[str, int] = Field(description="Pending offers and accepted tasks per channel.")
    created_at: datetime
    updated_at: datetime


# ------------------------------------------------------------------------------------ queues


class ServiceLevel(_Body):
    answer_within_seconds: Annotated[float, Field(gt=0, le=86_400, allow_inf_nan=False)]
    target: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]


class QueueCreate(_Body):
    name: Name
    channel: Name
    requires: Annotated[Skills, Field(max_length=MAX_ENTRIES)] = Field(default_factory=dict)
    optional: Annotated[Skills, Field(max_length=MAX_ENTRIES)] = Field(default_factory=dict)
    priority: Annotated[int, Field(ge=-1000, le=1000)] = Field(
        default=0, description="The priority of its tasks unless a task states its own."
    )
    service_level: ServiceLevel = ServiceLevel(answer_within_seconds=20, target=0.8)
    relaxation: Annotated[list[RelaxationSpec], Field(max_length=20)] = Field(
        default_factory=list, description="Steps as in the replay scenario, for this queue."
    )
    escalation: Annotated[list[RuleSpec], Field(max_length=50)] = Field(
        default_factory=list,
        description="Rules as in the replay scenario; they apply to this queue's tasks.",
    )


class QueuePatch(_Body):
    """Any field of the queue but its name (tasks name their queue)."""

    channel: Name | None = None
    requires: Annotated[Skills, Field(max_length=MAX_ENTRIES)] | None = None
    optional: Annotated[Skills, Field(max_length=MAX_ENTRIES)] | None = None
    priority: Annotated[int, Field(ge=-1000, le=1000)] | None = None
    service_level: ServiceLevel | None = None
    relaxation: Annotated[list[RelaxationSpec], Field(max_length=20)] | None = None
    escalation: Annotated[list[RuleSpec], Field(max_length=50)] | None = None


class QueuePublic(BaseModel):
    id: uuid.UUID
    name: str
    channel: str
    requires: dict[str, int]
    optional: dict[str, int]
    priority: int
    service_level: ServiceLevel
    relaxation: list[RelaxationSpec]
    escalation: list[RuleSpec]
    created_at: datetime
    updated_at: datetime


# ------------------------------------------------------------------------------------- tasks


class TaskState(StrEnum):
    PENDING = "pending"
    RESERVED = "reserved"
    ASSIGNED = "assigned"
    WRAPPING = "wrapping"
    COMPLETED = "completed"
    CANCELED = "canceled"
    ABANDONED = "abandoned"
    TIMED_OUT = "timed_out"


LIVE_STATES = (TaskState.PENDING, TaskState.RESERVED)
WORKING_STATES = (TaskState.ASSIGNED, TaskState.WRAPPING)

AttributeValue = Annotated[str, SingleLine(500)] | int | float | bool


class TaskAttributes(BaseModel):
    """What escalation rules and agents read about the contact; other attributes (strings,
    numbers, booleans) are kept and shown to the agent."""

    model_config = ConfigDict(extra="allow")

    sentiment: Annotated[float, Field(ge=-1, le=1, allow_inf_nan=False)] | None = None
    repeat_contacts: Annotated[int, Field(ge=0)] | None = None
    sla_deadline: UtcDateTime | None = Field(
        default=None, description="When the work must be done (a closed-loop case's deadline)."
    )
    language: Name | None = None
    case_id: ExternalId | None = None

    @model_validator(mode="after")
    def _extra_are_scalars(self) -> Self:
        extra = self.model_extra or {}
        if len(extra) > MAX_ENTRIES:
            raise ValueError(f"at most {MAX_ENTRIES} attributes")
        for name, value in extra.items():
            if not isinstance(value, str | int | float | bool) or len(name) > 64:
                raise ValueError(f"attribute {name!r} must be a string, number or boolean")
            if isinstance(value, str) and (len(value) > 500 or not value.isprintable()):
                raise ValueError(f"attribute {name!r} must be printable, up to 500 characters")
        return self


class TaskCreate(_Body):
    external_id: ExternalId | None = Field(
        default=None, description="The platform's id; a repeat returns the first task."
    )
    channel: Name | None = Field(default=None, description="Defaults to the queue's channel.")
    queue: Name | None = Field(default=None, description="A queue, or `requires`, not both.")
    requires: Annotated[Skills, Field(max_length=MAX_ENTRIES)] | None = None
    optional: Annotated[Skills, Field(max_length=MAX_ENTRIES)] | None = None
    priority: Annotated[int, Field(ge=-1000, le=1000)] | None = Field(
        default=None, description="Higher first; defaults to the queue's priority, else 0."
    )
    tier: Name = "standard"
    customer_ref: ExternalId | None = None
    attributes: TaskAttributes = Field(default_factory=TaskAttributes)
    timeout_seconds: Annotated[float, Field(gt=0, le=7 * 86_400, allow_inf_nan=False)] | None = (
        Field(default=None, description="Time to live: still unanswered then, it is timed out.")
    )

    @model_validator(mode="after")
    def _queue_or_requirements(self) -> Self:
        if self.queue is not None and self.requires is not None:
            raise ValueError("give a queue or requires, not both")
        if self.queue is None and self.channel is None:
            raise ValueError("a task without a queue needs a channel")
        return self


class CancelBody(_Body):
    reason: Literal["canceled", "abandoned"] = Field(
        default="canceled", description="`abandoned`: the customer hung up or left."
    )


class CompleteBody(_Body):
    handle_seconds: Annotated[float, Field(ge=0, le=7 * 86_400, allow_inf_nan=False)]
    resolved: bool = Field(description="Resolved on this contact (first-contact resolution).")
    csat: Annotated[int, Field(ge=1, le=5)] | None = None


class CsatBody(_Body):
    csat: Annotated[int, Field(ge=1, le=5)] = Field(
        description="The customer's satisfaction with the contact, 1-5."
    )


class ReservationState(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    TIMEOUT = "timeout"
    CANCELED = "canceled"
    RESCINDED = "rescinded"


class ReservationPublic(BaseModel):
    id: uuid.UUID
    task_id: uuid.UUID
    agent_id: uuid.UUID
    channel: str
    state: ReservationState
    offered_at: datetime
    expires_at: datetime
    ended_at: datetime | None


class TaskPublic(BaseModel):
    id: uuid.UUID
    external_id: str | None
    state: TaskState
    reason: str | None
    channel: str
    queue: str
    requires: dict[str, int]
    optional: dict[str, int]
    priority: int
    tier: str
    customer_ref: str | None
    attributes: dict[str, Any]
    timeout_seconds: float | None
    agent_id: uuid.UUID | None
    created_at: datetime
    expires_at: datetime | None
    assigned_at: datetime | None
    wrapping_at: datetime | None
    ended_at: datetime | None
    wait_seconds: float | None
    handle_seconds: float | None
    resolved: bool | None
    csat: int | None


class TaskHistoryEntry(BaseModel):
    kind: str
    at: datetime
    agent_id: uuid.UUID | None
    detail: str


class TaskDetail(TaskPublic):
    offers: list[ReservationPublic]
    escalations: list[TaskHistoryEntry]
    relaxations: list[TaskHistoryEntry]
    history: list[TaskHistoryEntry]


class Offer(BaseModel):
    """What an agent desktop receives: the reservation and the task it offers."""

    reservation: ReservationPublic
    task: TaskPublic
