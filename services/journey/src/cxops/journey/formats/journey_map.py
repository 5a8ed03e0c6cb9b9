"""The journey map format (``MAP.json`` of ``cxops journey mine --map``, and the body of
``PUT /v1/journey/maps/{key}``), validated into
:class:`cxops.journey.domain.journey_map.JourneyMap`.

Validation is all-or-nothing and names every problem's place the way a user would find it in
the file (``stages[2].activities[0]``); nothing is mined until the whole map is valid.

The models are strict, as every request body of the API is (``"optional": "yes"`` or
``"sla_seconds": "60"`` is refused); a map file is read as it always was, leniently
(:func:`load_journey_map`), so that maps written for earlier versions of the command still load.
Each stage's owner, RACI, touchpoints and channels are optional, so every older map is valid.
"""

from collections.abc import Iterator
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from cxops.common.validation import no_control_characters
from cxops.journey.domain.journey_map import UNMAPPED, HandoffSla, JourneyMap, Raci, Stage
from cxops.journey.formats import place

#: A stage, activity, team or touchpoint: any text but control characters (a caller's bug, and
#: PostgreSQL refuses NUL outright).
Name = Annotated[str, Field(min_length=1), AfterValidator(no_control_characters)]
#: The longest handoff SLA, ten years: beyond it a deadline would fall off the calendar.
MAX_SLA_SECONDS = 10 * 36525 * 86400 // 100
#: Where a problem is: ``("stages", 1, "activities", 0)``.
Location = tuple[int | str, ...]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class RaciSpec(_Spec):
    responsible: list[Name] = []
    accountable: Name | None = None
    consulted: list[Name] = []
    informed: list[Name] = []


class StageSpec(_Spec):
    name: Name
    activities: list[Name] = Field(min_length=1)
    optional: bool = False
    owner_team: Name | None = None
    raci: RaciSpec | None = None
    touchpoints: list[Name] = []
    channels: list[Name] = []


class HandoffSpec(_Spec):
    from_stage: Name = Field(alias="from")
    to_stage: Name = Field(alias="to")
    sla_seconds: Annotated[float, Field(gt=0, le=MAX_SLA_SECONDS, allow_inf_nan=False)]


class JourneyMapSpec(_Spec):
    name: str | None = None
    stages: list[StageSpec] = Field(min_length=1)
    handoffs: list[HandoffSpec] = []

    def problems(self) -> Iterator[tuple[Location, str]]:
        """What the types alone cannot say: names that clash, activities claimed twice, SLAs
        on stages that do not exist or that run backwards."""
        position: dict[str, int] = {}
        owner: dict[str, str] = {}
        for index, stage in enumerate(self.stages):
            if stage.name == UNMAPPED:
                yield ("stages", index, "name"), f"{UNMAPPED!r} is reserved"
            if stage.name in position:
                yield ("stages", index, "name"), f"stage {stage.name!r} is already declared"
            position.setdefault(stage.name, index)
            for at, activity in enumerate(stage.activities):
                if activity in owner:
                    yield (
                        ("stages", index, "activities", at),
                        f"activity {activity!r} already belongs to stage {owner[activity]!r}",
                    )
                owner.setdefault(activity, stage.name)
        pairs: set[tuple[str, str]] = set()
        for index, handoff in enumerate(self.handoffs):
            ends = {"from": handoff.from_stage, "to": handoff.to_stage}
            unknown = [key for key, stage in ends.items() if stage not in position]
            for key in unknown:
                yield ("handoffs", index, key), f"no stage is named {ends[key]!r}"
            if unknown:
                continue
            if position[handoff.from_stage] >= position[handoff.to_stage]:
                yield (
                    ("handoffs", index),
                    f"stage {handoff.to_stage!r} does not come after {handoff.from_stage!r}",
                )
            if (handoff.from_stage, handoff.to_stage) in pairs:
                yield ("handoffs", index), "this handoff already has an SLA"
            pairs.add((handoff.from_stage, handoff.to_stage))

    def to_domain(self) -> JourneyMap:
        """The map itself, for a spec without :meth:`problems`."""
        return JourneyMap(
            stages=tuple(
                Stage(
                    name=s.name,
                    activities=tuple(s.activities),
                    optional=s.optional,
                    owner_team=s.owner_team,
                    raci=None
                    if s.raci is None
                    else Raci(
                        responsible=tuple(s.raci.responsible),
                        accountable=s.raci.accountable,
                        consulted=tuple(s.raci.consulted),
                        informed=tuple(s.raci.informed),
                    ),
                    touchpoints=tuple(s.touchpoints),
                    channels=tuple(s.channels),
                )
                for s in self.stages
            ),
            handoffs=tuple(
                HandoffSla(h.from_stage, h.to_stage, h.sla_seconds) for h in self.handoffs
            ),
        )


class JourneyMapError(ValueError):
    """Every problem of a map, each as (place, message)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{where}: {message}" for where, message in problems))


def load_journey_map(data: object) -> JourneyMap:
    """Validate decoded JSON from a map file into a journey map, or raise
    :class:`JourneyMapError`. Files are read leniently (see the module's documentation)."""
    try:
        spec = JourneyMapSpec.model_validate(data, strict=False)
    except ValidationError as exc:
        raise JourneyMapError(
            [(place(error["loc"], whole="map"), error["msg"]) for error in exc.errors()]
        ) from None
    problems = [(place(loc, whole="map"), message) for loc, message in spec.problems()]
    if problems:
        raise JourneyMapError(problems)
    return spec.to_domain()
