"""The journey map format (``MAP.json`` of ``cxops journey mine --map``, and later of the
journey API), validated into :class:`cxops.journey.domain.journey_map.JourneyMap`.

Validation is all-or-nothing and names every problem's place the way a user would find it in
the file (``stages[2].activities[0]``); nothing is mined until the whole map is valid.
"""

from collections.abc import Iterator
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cxops.journey.domain.journey_map import UNMAPPED, HandoffSla, JourneyMap, Stage
from cxops.journey.formats import place

Name = Annotated[str, Field(min_length=1)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StageSpec(_Spec):
    name: Name
    activities: list[Name] = Field(min_length=1)
    optional: bool = False


class HandoffSpec(_Spec):
    from_stage: Name = Field(alias="from")
    to_stage: Name = Field(alias="to")
    sla_seconds: Annotated[float, Field(gt=0, allow_inf_nan=False)]


class JourneyMapSpec(_Spec):
    name: str | None = None
    stages: list[StageSpec] = Field(min_length=1)
    handoffs: list[HandoffSpec] = []

    def problems(self) -> Iterator[tuple[str, str]]:
        """What the types alone cannot say: names that clash, activities claimed twice, SLAs
        on stages that do not exist or that run backwards."""
        position: dict[str, int] = {}
        owner: dict[str, str] = {}
        for index, stage in enumerate(self.stages):
            if stage.name == UNMAPPED:
                yield f"stages[{index}].name", f"{UNMAPPED!r} is reserved"
            if stage.name in position:
                yield f"stages[{index}].name", f"stage {stage.name!r} is already declared"
            position.setdefault(stage.name, index)
            for at, activity in enumerate(stage.activities):
                if activity in owner:
                    yield (
                        f"stages[{index}].activities[{at}]",
                        f"activity {activity!r} already belongs to stage {owner[activity]!r}",
                    )
                owner.setdefault(activity, stage.name)
        pairs: set[tuple[str, str]] = set()
        for index, handoff in enumerate(self.handoffs):
            ends = {"from": handoff.from_stage, "to": handoff.to_stage}
            unknown = [key for key, stage in ends.items() if stage not in position]
            for key in unknown:
                yield f"handoffs[{index}].{key}", f"no stage is named {ends[key]!r}"
            if unknown:
                continue
            if position[handoff.from_stage] >= position[handoff.to_stage]:
                yield (
                    f"handoffs[{index}]",
                    f"stage {handoff.to_stage!r} does not come after {handoff.from_stage!r}",
                )
            if (handoff.from_stage, handoff.to_stage) in pairs:
                yield f"handoffs[{index}]", "this handoff already has an SLA"
            pairs.add((handoff.from_stage, handoff.to_stage))


class JourneyMapError(ValueError):
    """Every problem of a map, each as (place, message)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{where}: {message}" for where, message in problems))


def load_journey_map(data: object) -> JourneyMap:
    """Validate decoded JSON into a journey map, or raise :class:`JourneyMapError`."""
    try:
        spec = JourneyMapSpec.model_validate(data)
    except ValidationError as exc:
        raise JourneyMapError(
            [(place(error["loc"], whole="map"), error["msg"]) for error in exc.errors()]
        ) from None
    problems = list(spec.problems())
    if problems:
        raise JourneyMapError(problems)
    return JourneyMap(
        stages=tuple(Stage(s.name, tuple(s.activities), s.optional) for s in spec.stages),
        handoffs=tuple(HandoffSla(h.from_stage, h.to_stage, h.sla_seconds) for h in spec.handoffs),
    )
