"""What callers send and what they get back; the tables in :mod:`cxops.journey.models` are
never exposed as they are."""

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from cxops.common.validation import DATE_TIME_PATTERN, SingleLine, parse_utc_datetime
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
