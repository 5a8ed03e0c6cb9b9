"""The journey a stress simulation runs: arrivals, stages with servers and service times,
routing probabilities, patience, SLAs, and an optional intervention to compare.

The model is the engine's own input and the shape of ``MODEL.json`` alike (a pydantic model
that refuses unknown fields), and :meth:`JourneyModel.problems` holds what its field types cannot
say; :func:`cxops.journey.formats.simulation.load_model` reads a file into it and refuses it
whole, every problem with its place, so a typo cannot quietly simulate a different journey.
"""

import math
from collections.abc import Iterator, Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: The route target that ends a journey; no stage may take this name.
EXIT = "exit"
#: Probabilities must sum to 1 within this, so that "0.1, 0.2, 0.7" written by hand is accepted.
PROBABILITY_TOLERANCE = 1e-6

Name = Annotated[str, Field(min_length=1)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Probability = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExponentialService(_Spec):
    distribution: Literal["exponential"]
    mean_seconds: Positive


class LognormalService(_Spec):
    """Right-skewed handle times; the spread is a coefficient of variation (standard deviation
    over mean, what an ops analyst reads off a report) or the log-scale ``sigma`` of a fit."""

    distribution: Literal["lognormal"]
    mean_seconds: Positive
    cv: Positive | None = None
    sigma: Positive | None = None

    @model_validator(mode="after")
    def _one_spread(self) -> "LognormalService":
        if (self.cv is None) == (self.sigma is None):
            raise ValueError("give exactly one of cv or sigma")
        return self

    @property
    def log_sigma(self) -> float:
        if self.sigma is not None:
            return self.sigma
        assert self.cv is not None
        return math.sqrt(math.log1p(self.cv**2))


class FixedService(_Spec):
    distribution: Literal["fixed"]
    mean_seconds: Positive


Service = Annotated[
    ExponentialService | LognormalService | FixedService, Field(discriminator="distribution")
]


class SlaSpec(_Spec):
    """A stage meets its SLA when its wait (``p90`` or ``mean`` of served customers) is at most
    ``wait_seconds`` and, if given, no more than ``max_abandoned_share`` of arrivals hang up."""

    wait_seconds: NonNegative
    measure: Literal["p90", "mean"] = "p90"
    max_abandoned_share: Probability | None = None


class StageSpec(_Spec):
    name: Name
    servers: Annotated[int, Field(ge=1)]
    service: Service
    patience_seconds: Positive | None = None
    sla: SlaSpec | None = None
    routes: dict[Name, Probability] = {EXIT: 1.0}


class StagePatch(_Spec):
    """What an intervention changes in one stage; what it leaves out stays as it was."""

    servers: Annotated[int, Field(ge=1)] | None = None
    service: Service | None = None
    patience_seconds: Positive | None = None
    routes: dict[Name, Probability] | None = None


class InterventionSpec(_Spec):
    name: Name
    stages: dict[Name, StagePatch] = Field(min_length=1)


class JourneyModel(_Spec):
    name: Name = "journey"
    #: One rate, or a rate per hour of the run (repeated when the run is longer).
    arrivals_per_hour: Positive | Annotated[list[NonNegative], Field(min_length=1)]
    entry: Name | dict[Name, Probability]
    stages: list[StageSpec] = Field(min_length=1)
    hours: Positive = 8.0
    warmup_hours: NonNegative = 1.0
    replications: Annotated[int, Field(ge=1, le=1000)] = 5
    seed: Annotated[int, Field(ge=0)] = 1
    intervention: InterventionSpec | None = None

    @property
    def hourly_rates(self) -> list[float]:
        rates = self.arrivals_per_hour
        return [rates] if isinstance(rates, float) else list(rates)

    @property
    def entry_probabilities(self) -> dict[str, float]:
        return {self.entry: 1.0} if isinstance(self.entry, str) else dict(self.entry)

    def stage_names(self) -> list[str]:
        return [stage.name for stage in self.stages]

    def with_intervention(self) -> "JourneyModel":
        """The intervention's variant: the same journey with its patches applied."""
        if self.intervention is None:
            raise ValueError("the model has no intervention")
        patches = self.intervention.stages
        stages = [
            StageSpec.model_validate(
                {**stage.model_dump(), **patches[stage.name].model_dump(exclude_none=True)}
            )
            if stage.name in patches
            else stage
            for stage in self.stages
        ]
        return self.model_copy(update={"stages": stages, "intervention": None})

    def problems(self) -> Iterator[tuple[str, str]]:
        """What the field types cannot say: names, references, sums, and ways out."""
        names = self.stage_names()
        seen: set[str] = set()
        for i, name in enumerate(names):
            if name == EXIT:
                yield f"stages[{i}].name", f"{EXIT!r} is reserved for leaving the journey"
            elif name in seen:
                yield f"stages[{i}].name", f"duplicate stage name {name!r}"
            seen.add(name)
        if not any(rate > 0 for rate in self.hourly_rates):
            yield "arrivals_per_hour", "at least one hour must have arrivals"
        yield from _distribution_problems("entry", self.entry_probabilities, seen, exit_ok=False)
        for i, stage in enumerate(self.stages):
            yield from _distribution_problems(f"stages[{i}].routes", stage.routes, seen)
        yield from (
            (f"stages[{names.index(name)}].routes", message)
            for name, message in _dead_ends(self.stages)
        )
        if self.intervention is not None:
            yield from self._intervention_problems(seen)

    def _intervention_problems(self, names: set[str]) -> Iterator[tuple[str, str]]:
        assert self.intervention is not None
        valid = True
        for name, patch in self.intervention.stages.items():
            place = f"intervention.stages.{name}"
            if name not in names:
                valid = False
                yield place, f"unknown stage {name!r} (stages: {', '.join(sorted(names))})"
            elif patch.routes is not None:
                route_problems = list(
                    _distribution_problems(f"{place}.routes", patch.routes, names)
                )
                valid = valid and not route_problems
                yield from route_problems
        if valid:
            for name, message in _dead_ends(self.with_intervention().stages):
                yield f"intervention.stages.{name}.routes", message


def _distribution_problems(
    place: str, probabilities: Mapping[str, float], names: set[str], *, exit_ok: bool = True
) -> Iterator[tuple[str, str]]:
    for target in probabilities:
        if not (target in names or (exit_ok and target == EXIT)):
            known = ", ".join(sorted(names | ({EXIT} if exit_ok else set())))
            yield f"{place}.{target}", f"unknown stage {target!r} (known: {known})"
    total = sum(probabilities.values())
    if abs(total - 1) > PROBABILITY_TOLERANCE:
        yield place, f"probabilities must sum to 1, not {total:g}"


def _dead_ends(stages: list[StageSpec]) -> Iterator[tuple[str, str]]:
    """Stages from which no route with a chance leads to the exit: their customers would go
    round forever."""
    leaving = {stage.name for stage in stages if stage.routes.get(EXIT, 0) > PROBABILITY_TOLERANCE}
    grew = True
    while grew:
        before = len(leaving)
        leaving |= {
            stage.name
            for stage in stages
            if any(p > 0 and target in leaving for target, p in stage.routes.items())
        }
        grew = len(leaving) > before
    for stage in stages:
        if stage.name not in leaving:
            yield stage.name, "no route from this stage ever reaches exit"
