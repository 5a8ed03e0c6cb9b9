"""What callers send and what they get back; the tables in :mod:`cxops.journey.models` are
never exposed as they are."""

# ---------------------------------------------------------------------- journey maps

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from cxops.journey.formats.journey_map import JourneyMapSpec

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
