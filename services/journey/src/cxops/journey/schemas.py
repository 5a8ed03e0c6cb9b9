"""What callers send and what they get back; the tables in :mod:`cxops.journey.models` are
never exposed as they are."""

import re
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Path
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from cxops.common.validation import DATE_TIME_PATTERN, SingleLine, UtcDateTime, parse_utc_datetime
from cxops.journey.domain.triggers import Operator
from cxops.journey.formats.journey_map import JourneyMapSpec

#: Interactions one call takes.
MAX_BATCH = 1_000

_OFFSET = re.compile(r"(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$")


def _with_offset(value: Any) -> datetime:
    """An interaction's time must say its offset: a platform in Madrid and one in Lima would
    otherwise both be read as UTC."""
    if isinstance(value, str) and not _OFFSET.search(value.strip()):
        raise PydanticCustomError(
            "datetime_offset",
            "must carry its offset (Z or ±hh:mm), such as {example}",
            {"example": "2026-11-30T09:30:00+01:00"},
        )
    return parse_utc_datetime(value)


OffsetDateTime = Annotated[
    datetime,
    BeforeValidator(_with_offset),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": DATE_TIME_PATTERN,
            "description": "An RFC 3339 date-time with its offset (Z or ±hh:mm).",
            "examples": ["2026-11-30T09:30:00+01:00"],
        }
    ),
]
#: An identifier type: ``email``, ``phone``, ``crm_id``, ``mobile``...
IdentifierType = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
IdentifierValue = Annotated[str, SingleLine(320)]
Name = Annotated[str, SingleLine(64)]
#: A customer's id in a path: ``p_`` and 16 hex digits as resolution names profiles; anything
#: else of this shape is simply not found.
CustomerId = Annotated[
    str,
    Path(
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="The profile's id, such as `p_20bd4fe867593f4f`.",
    ),
]
ExternalId = Annotated[str, SingleLine(255)]


class InteractionIn(BaseModel):
    """One interaction as a platform reports it."""

    model_config = ConfigDict(extra="forbid")

    external_id: ExternalId = Field(
        description="The platform's id for it, unique per tenant: a retry stores nothing twice."
    )
    occurred_at: OffsetDateTime
    identifiers: dict[IdentifierType, IdentifierValue] = Field(
        min_length=1,
        max_length=16,
        description="How the customer was known here: `email`, `phone`, `crm_id` or any other "
        "type (a type naming a phone, such as `mobile`, is read as a phone number).",
    )
    channel: Name
    activity: Annotated[str, SingleLine(255)]
    team: Annotated[str, SingleLine(128)] | None = None
    stage: Annotated[str, SingleLine(128)] | None = None
    attributes: dict[Annotated[str, StringConstraints(min_length=1, max_length=64)], JsonValue] = (
        Field(default_factory=dict, max_length=64)
    )


INTERACTIONS_BODY_SCHEMA: dict[str, Any] = {
    "oneOf": [
        InteractionIn.model_json_schema(),
        {
            "type": "array",
            "items": InteractionIn.model_json_schema(),
            "minItems": 1,
            "maxItems": MAX_BATCH,
        },
    ]
}


class InteractionPublic(BaseModel):
    id: uuid.UUID
    external_id: str
    occurred_at: datetime
    received_at: datetime
    identifiers: dict[str, str]
    channel: str
    activity: str
    team: str | None
    stage: str | None
    attributes: dict[str, Any]
    customer_id: str | None


class ItemError(BaseModel):
    field: str
    message: str
    code: str


class InteractionOutcome(BaseModel):
    """What became of one item of a batch: ``created``, ``duplicate`` (its ``external_id`` was
    stored before: ``id`` is the stored one) or ``rejected`` (``errors`` say why)."""

    index: int
    status: Literal["created", "duplicate", "rejected"]
    external_id: str | None = None
    id: uuid.UUID | None = None
    customer_id: str | None = None
    errors: list[ItemError] = []


class BatchResult(BaseModel):
    created: int
    duplicates: int
    rejected: int
    items: list[InteractionOutcome]


class IdentifierPublic(BaseModel):
    type: str
    value: str


class MergePublic(BaseModel):
    """Two identifiers seen together joined two groups: in how many interactions, and the first
    of them."""

    step: int
    left: IdentifierPublic
    right: IdentifierPublic
    interactions: int
    first_interaction: str
    sizes: tuple[int, int]


class RefusalPublic(BaseModel):
    """A join refused: by a ``cap`` (``type`` would hold ``would_hold`` values, ``limit``
    allowed) or by a ``split`` (``split_id``)."""

    reason: Literal["cap", "split"]
    step: int
    left: IdentifierPublic
    right: IdentifierPublic
    first_interaction: str
    profiles: tuple[str, str]
    type: str | None = None
    would_hold: int | None = None
    limit: int | None = None
    split_id: uuid.UUID | None = None


class IdentifierIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: IdentifierType
    value: IdentifierValue


class SplitPublic(BaseModel):
    id: uuid.UUID
    customer_id: str
    left: list[IdentifierPublic]
    right: list[IdentifierPublic]
    reason: str | None
    by: str
    created_at: datetime


class CustomerPublic(BaseModel):
    id: str
    identifiers: list[IdentifierPublic]
    interactions: int
    first_seen: datetime | None
    last_seen: datetime | None
    merges: list[MergePublic]
    refusals: list[RefusalPublic]
    splits: list[SplitPublic] = []


class CustomerList(BaseModel):
    items: list[CustomerPublic]


class SplitIn(BaseModel):
    """Undo a wrong merge: ``identifiers`` go apart from the rest of the profile, for good."""

    model_config = ConfigDict(extra="forbid")

    identifiers: list[IdentifierIn] = Field(min_length=1, max_length=64)
    reason: Annotated[str, SingleLine(500)] | None = None


class SplitResult(BaseModel):
    split: SplitPublic
    customers: list[CustomerPublic]


# ---------------------------------------------------------------------- journey maps

MAP_KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
MapKey = Annotated[str, StringConstraints(pattern=MAP_KEY_PATTERN)]


class JourneyMapPublic(JourneyMapSpec):
    """One version of a journey map: the map as it was put, and which version it is."""

    key: str
    version: int = Field(description="1 when created, one more at each change.")
    created_at: datetime = Field(description="When this version was put.")
    created_by: str = Field(description="The key that put this version.")


class JourneyMapList(BaseModel):
    items: list[JourneyMapPublic] = Field(description="The latest version of each map, by key.")


class MapVersionRef(BaseModel):
    key: str
    version: int


class StageDeviationPublic(BaseModel):
    cases: int = Field(description="Customers with the deviation.")
    stages: dict[str, int] = Field(description="Per stage, the customers it concerns.")


class UnmappedActivitiesPublic(BaseModel):
    cases: int
    activities: dict[str, int] = Field(description="Per activity no stage claims, customers.")


class DeviationsPublic(BaseModel):
    skipped_stage: StageDeviationPublic
    out_of_order: StageDeviationPublic
    loop: StageDeviationPublic
    unmapped_activity: UnmappedActivitiesPublic


class SlaPublic(BaseModel):
    from_stage: str
    to_stage: str
    sla_seconds: float
    owner_team: str | None = Field(description="The owner of `from_stage`.")
    handoffs: int
    breaches: int
    breach_share: float
    mean_seconds: float | None
    median_seconds: float | None
    max_seconds: float | None


class OwnerConformance(BaseModel):
    """One stage owner's share of the deviations: each counted per stage (as in
    ``deviations``) and added up over the owner's stages, and the handoffs that leave them."""

    owner_team: str | None = Field(description="null for the stages no team owns.")
    stages: list[str]
    skipped_stage: int
    out_of_order: int
    loop: int
    handoffs: int
    sla_breaches: int


class ConformancePublic(BaseModel):
    map: MapVersionRef = Field(description="The map version held against the interactions.")
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    interactions: int = Field(description="Interactions of known customers in the range.")
    interactions_without_customer: int = Field(
        description="Interactions in the range with no resolved customer: left out."
    )
    cases: int = Field(description="Customers with interactions in the range.")
    fitting_cases: int
    fitness: float | None = Field(description="Share of fitting customers; null for none.")
    deviations: DeviationsPublic
    sla: list[SlaPublic]
    owners: list[OwnerConformance]


# --- proactive triggers ----------------------------------------------------------------------

TRIGGER_KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
TriggerKey = Annotated[str, Field(pattern=TRIGGER_KEY_PATTERN)]
Scalar = StrictInt | StrictFloat | StrictStr | StrictBool
Money = Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=2, allow_inf_nan=False)]
ClockTime = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["21:00"])]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InteractionWhen(_Body):
    """An interaction of ``activity`` whose attributes meet each comparison:
    ``{"delay_hours": {">=": 24}}``."""

    activity: Annotated[str, SingleLine(255)]
    attributes: Annotated[
        dict[Name, Annotated[dict[Operator, Scalar | list[Scalar]], Field(min_length=1)]],
        Field(max_length=20),
    ] = Field(default_factory=dict)

    @field_validator("attributes")
    @classmethod
    def _in_takes_a_list(cls, value: dict[str, dict[Operator, Any]]) -> dict[str, Any]:
        for name, comparisons in value.items():
            for op, operand in comparisons.items():
                if (op is Operator.IN) != isinstance(operand, list):
                    raise PydanticCustomError(
                        "operand",
                        "{name}: 'in' takes a list, every other operator one value",
                        {"name": name},
                    )
                ordering = op in (Operator.GT, Operator.GE, Operator.LT, Operator.LE)
                if ordering and (isinstance(operand, bool) or not isinstance(operand, int | float)):
                    raise PydanticCustomError(
                        "operand", "{name}: {op} compares numbers", {"name": name, "op": op.value}
                    )
        return value


class RepeatContactsWhen(_Body):
    count: Annotated[StrictInt, Field(ge=2, le=100)]
    days: Annotated[StrictInt, Field(ge=1, le=365)]


class NegativeFeedbackWhen(_Body):
    """A negative answer (sentiment, or an NPS detractor's or unsatisfied CSAT score) given
    while one of the customer's closed-loop cases is open."""


class StageOverdueWhen(_Body):
    map: TriggerKey


class TriggerWhen(_Body):
    """Exactly one condition."""

    interaction: InteractionWhen | None = None
    repeat_contacts: RepeatContactsWhen | None = None
    negative_feedback_while_case_open: NegativeFeedbackWhen | None = None
    stage_overdue: StageOverdueWhen | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [name for name, value in self if value is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of interaction, repeat_contacts, "
                "negative_feedback_while_case_open, stage_overdue"
            )
        return self


class NotifyAction(_Body):
    """Publish ``cx.journey.trigger.fired.v1`` for the platform to reach out."""

    type: Literal["notify"]


class CreateTaskAction(_Body):
    """A routing task in ``queue`` (through ``cx.journey.task.requested.v1``)."""

    type: Literal["create_task"]
    queue: Name
    priority: Annotated[StrictInt, Field(ge=-1000, le=1000)] | None = None
    skills: Annotated[dict[Name, Annotated[StrictInt, Field(ge=1, le=5)]], Field(max_length=50)] = (
        Field(default_factory=dict, description="Skills preferred, not required, of the agent.")
    )


class InviteSurveyAction(_Body):
    """Carried in the fired event for the platform; see the service's README."""

    type: Literal["invite_survey"]
    survey: TriggerKey


class OfferGestureAction(_Body):
    type: Literal["offer_gesture"]
    kind: Name
    value: Money


Action = Annotated[
    NotifyAction | CreateTaskAction | InviteSurveyAction | OfferGestureAction,
    Field(discriminator="type"),
]


class BudgetBody(_Body):
    """At most ``value`` of gestures per ``days`` days."""

    value: Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2, allow_inf_nan=False)]
    days: Annotated[StrictInt, Field(ge=1, le=366)]


class TriggerPut(_Body):
    when: TriggerWhen
    then: Annotated[list[Action], Field(min_length=1, max_length=10)]
    holdout_percent: Annotated[StrictInt | StrictFloat, Field(ge=0, le=50)] = Field(
        default=0, description="Share of eligible customers deliberately left untreated."
    )
    budget: BudgetBody | None = Field(
        default=None, validate_default=True, description="Required with an offer_gesture."
    )
    enabled: StrictBool = Field(
        default=True, description="A disabled trigger decides nothing; its history stays."
    )

    @field_validator("budget")
    @classmethod
    def _gestures_need_a_budget(
        cls, value: BudgetBody | None, info: ValidationInfo
    ) -> BudgetBody | None:
        actions = info.data.get("then") or []
        if value is None and any(isinstance(a, OfferGestureAction) for a in actions):
            raise PydanticCustomError("missing", "an offer_gesture needs a budget")
        return value


class TriggerPublic(TriggerPut):
    model_config = ConfigDict(extra="ignore", frozen=True)

    key: str
    version: int
    by: str
    created_at: datetime


class TriggerList(BaseModel):
    items: list[TriggerPublic]


class QuietHoursBody(_Body):
    start: ClockTime
    end: ClockTime


class TriggerSettingsPut(_Body):
    """At most ``max_contacts`` proactive contacts per customer in ``per_days`` days, across
    all triggers; none in ``quiet_hours`` of the customer's zone (the interaction's
    ``timezone`` attribute, else ``timezone``)."""

    max_contacts: Annotated[StrictInt, Field(ge=1, le=100)]
    per_days: Annotated[StrictInt, Field(ge=1, le=365)]
    quiet_hours: QuietHoursBody
    timezone: Annotated[str, SingleLine(64)]

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise PydanticCustomError("timezone", "not a known time zone") from exc
        return value


class TriggerSettingsPublic(TriggerSettingsPut):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Period(_Body):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    start: UtcDateTime = Field(alias="from")
    end: UtcDateTime = Field(alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise PydanticCustomError("period", "'to' must be after 'from'")
        return self


class DryRunDay(BaseModel):
    day: date
    fired: int
    capped: int
    quiet: int
    held_out: int
    duplicate: int


class DryRunPublic(BaseModel):
    """What the trigger would have done over stored interactions: ``customers`` it would have
    acted for, and the matches each check stopped."""

    trigger_key: str
    trigger_version: int
    customers: int
    fired: int
    capped: int
    quiet: int
    held_out: int
    duplicate: int
    by_day: list[DryRunDay]


class IntervalPublic(BaseModel):
    low: float
    high: float
    level: float


class ComparisonPublic(BaseModel):
    """Treated against held out; ``difference`` is treated minus held out."""

    held_out: float
    treated: float
    difference: float
    interval: IntervalPublic
    p_value: float
    significant: bool
    too_small: bool
    test: str


class EffectPublic(BaseModel):
    trigger_key: str
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    follow_up_days: int
    treated: int
    held_out: int
    complaints: ComparisonPublic | None = Field(description="Share who complained after.")
    repeat_contacts: ComparisonPublic | None = Field(description="Interactions after, a mean.")
    nps: ComparisonPublic | None = Field(description="NPS of the first answer after.")
    gesture_cost: Decimal
    complaints_avoided: float | None
    cost_per_complaint_avoided: Decimal | None


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


# --- Event logs and jobs (mining and simulation as jobs) ---------------------------------------

JobKind = Literal["mining", "simulation"]
JobStateName = Literal["queued", "running", "succeeded", "failed", "canceled"]
JobMapKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
FilterValue = Annotated[str, StringConstraints(min_length=1, max_length=255)]


class _JobInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LogColumns(BaseModel):
    """Which of the log's columns hold each field (``cxops journey mine``'s options)."""

    case: str
    activity: str
    timestamp: str
    team: str | None
    channel: str | None


class EventLogPublic(BaseModel):
    id: uuid.UUID
    filename: str
    format: Literal["csv", "parquet"]
    size: int
    sha256: str
    columns: LogColumns
    created_at: datetime


class EventLogList(BaseModel):
    items: list[EventLogPublic]


class InteractionFilter(_JobInput):
    """Keep only the interactions on these channels and of these activities (each list: any
    of its values; absent: no restriction)."""

    channel: list[FilterValue] | None = Field(default=None, min_length=1, max_length=100)
    activity: list[FilterValue] | None = Field(default=None, min_length=1, max_length=1000)


class InteractionsSource(_JobInput):
    """The tenant's stored interactions that occurred in ``[from, to)``: one case per resolved
    customer (interactions not yet resolved to a customer are left out)."""

    from_: UtcDateTime = Field(alias="from")
    to: UtcDateTime
    filter: InteractionFilter = InteractionFilter()

    @model_validator(mode="after")
    def _ordered(self) -> "InteractionsSource":
        if self.to <= self.from_:
            raise ValueError("'to' must come after 'from'")
        return self


class MiningSource(_JobInput):
    """Exactly one of an uploaded log and the stored interactions."""

    event_log: uuid.UUID | None = None
    interactions: InteractionsSource | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "MiningSource":
        if (self.event_log is None) == (self.interactions is None):
            raise ValueError("give exactly one of 'event_log' and 'interactions'")
        return self

    @property
    def kind(self) -> Literal["event_log", "interactions"]:
        return "event_log" if self.event_log is not None else "interactions"


class MiningJobCreate(_JobInput):
    source: MiningSource
    #: The key of one of the tenant's journey maps: its latest version is held against the log.
    map: JobMapKey | None = None
    #: Length of the bottleneck lists (``--top``).
    top: StrictInt = Field(default=10, ge=1, le=1000)


class SimulationJobCreate(_JobInput):
    """The model (``MODEL.json`` of ``cxops journey simulate``) and the command's options."""

    model: dict[str, Any]
    load: StrictFloat | StrictInt = Field(default=1.0, ge=0.001)
    hours: StrictFloat | StrictInt | None = Field(default=None, ge=0.001)
    warmup_hours: StrictFloat | StrictInt | None = Field(default=None, ge=0)
    replications: StrictInt | None = Field(default=None, ge=1, le=1000)
    seed: StrictInt | None = Field(default=None, ge=0)
    breaking_point: StrictBool = False


class JobPublic(BaseModel):
    id: uuid.UUID
    kind: JobKind
    state: JobStateName
    #: The share of the work done, 0..1.
    progress: float
    #: ``event_log`` or ``interactions`` for a mining job, ``model`` for a simulation.
    source_kind: str
    request: dict[str, Any]
    error: str | None
    #: How many workers took the job: more than one when a worker died with it.
    attempts: int
    cases: int | None
    events: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    #: Where the result is, once the job succeeded.
    result: str | None
