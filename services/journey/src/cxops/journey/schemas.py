"""What callers send and what they get back; the tables in :mod:`cxops.journey.models` are
never exposed as they are."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    model_validator,
)

from cxops.common.validation import UtcDateTime

# --- Event logs and jobs (mining and simulation as jobs) ---------------------------------------

JobKind = Literal["mining", "simulation"]
JobStateName = Literal["queued", "running", "succeeded", "failed", "canceled"]
MapKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
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
    map: MapKey | None = None
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
