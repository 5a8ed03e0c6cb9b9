"""What callers send and what they get back; the tables in :mod:`cxops.journey.models` are
never exposed as they are."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

# ------------------------------------------------- the customer's timeline and context


class TimelineInteraction(BaseModel):
    at: datetime = Field(description="When it happened (`occurred_at`).")
    kind: Literal["interaction"] = "interaction"
    id: uuid.UUID
    external_id: str
    channel: str
    activity: str
    team: str | None
    stage: str | None
    attributes: dict[str, Any]


class TimelineResponse(BaseModel):
    """A feedback answer; ``comment`` (redacted by feedback) and ``sentiment`` once it has been
    enriched."""

    at: datetime
    kind: Literal["response"] = "response"
    response_id: str
    survey_kind: str = Field(description="`nps`, `csat` or `ces`.")
    score: int
    channel: str | None
    comment: str | None
    sentiment: dict[str, Any] | None = Field(description="`{label, score, confidence}`.")
    agent_id: str | None
    task_id: str | None
    enriched: bool


class CaseClock(BaseModel):
    """One SLA clock of the case's current round."""

    clock: Literal["acknowledge", "action", "close"]
    due_at: datetime
    done_at: datetime | None
    breached: bool
    due_soon: bool


class CaseBreach(BaseModel):
    clock: str
    deadline: datetime
    round: int


class TimelineCase(BaseModel):
    """A closed-loop case; ``at`` is when it opened."""

    at: datetime
    kind: Literal["case"] = "case"
    case_id: str
    state: str
    team: str | None
    owner: str | None
    topic: str | None
    round: int | None
    clocks: list[CaseClock]
    breaches: list[CaseBreach] = Field(description="Every clock feedback reported breached.")


class TaskOutcome(BaseModel):
    resolved: bool | None
    handle_seconds: float | None
    wait_seconds: float | None
    csat: int | None


class TimelineTask(BaseModel):
    """A routing task; ``at`` is when it was created, ``outcome`` once it was completed."""

    at: datetime
    kind: Literal["task"] = "task"
    task_id: str
    state: str
    queue: str | None
    channel: str | None
    agent_id: str | None
    team: str | None
    case_id: str | None
    outcome: TaskOutcome | None
    ended_at: datetime | None
    reason: str | None = Field(description="Why a canceled task was (`canceled`, `timed_out`).")


class TimelineAction(BaseModel):
    """A proactive action from the customer's action log."""

    at: datetime
    kind: Literal["action"] = "action"
    action_id: uuid.UUID
    trigger_key: str
    outcome: str
    dedupe_key: str
    actions: list[dict[str, Any]]


TimelineItem = Annotated[
    TimelineInteraction | TimelineResponse | TimelineCase | TimelineTask | TimelineAction,
    Field(discriminator="kind"),
]


class Timeline(BaseModel):
    customer_id: str
    items: list[TimelineItem] = Field(description="Oldest first.")
    truncated: bool = Field(
        description="More items lie before the first one: ask again with `to` set to its `at`."
    )


class ContextIdentifier(BaseModel):
    type: str
    value: str


class ContextCustomer(BaseModel):
    id: str
    identifiers: list[ContextIdentifier]
    first_seen: datetime
    last_seen: datetime


class CustomerContext(BaseModel):
    """Everything the agent desktop shows about a customer, as of ``as_of``."""

    as_of: datetime
    customer: ContextCustomer
    stage: str | None = Field(
        description="The `stage` of the customer's latest interaction; null when it gave none."
    )
    last_interactions: list[TimelineInteraction] = Field(description="The last 10, newest first.")
    contacts_last_7_days: int = Field(
        description="Interactions in the 7 days up to `as_of`: the repeat-contact count."
    )
    open_cases: list[TimelineCase]
    last_feedback: TimelineResponse | None
    open_tasks: list[TimelineTask]
    proactive_actions: list[TimelineAction] = Field(
        description="The last 30 days' proactive actions, whatever their outcome, newest first."
    )
