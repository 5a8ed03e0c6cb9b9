"""What callers send and what they get back; the tables in :mod:`cxops.journey.models` are
never exposed as they are."""

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from cxops.common.validation import SingleLine, UtcDateTime
from cxops.journey.domain.triggers import Operator

# --- proactive triggers ----------------------------------------------------------------------

TRIGGER_KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
TriggerKey = Annotated[str, Field(pattern=TRIGGER_KEY_PATTERN)]
Name = Annotated[str, SingleLine(64)]
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
