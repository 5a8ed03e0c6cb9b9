"""What a user asks of a journey model: its figures at a load, the load at which a stage first
breaks its SLA, and whether an intervention makes a real difference.

All three run the same customers (the same seed gives the same streams, see ``engine``), so a
change in the figures comes from the load or the intervention, not from luck of the draw.
"""

import statistics
from collections.abc import Callable
from dataclasses import dataclass, replace

from cxops.journey.domain.simulation.engine import Replication, compile_plan, run_replication
from cxops.journey.domain.simulation.measures import (
    JourneyFigures,
    SimulationFigures,
    StageFigures,
    summarise,
)
from cxops.journey.domain.simulation.model import JourneyModel
from cxops.stats.inference import mean_interval

#: Load multipliers the breaking-point search steps by before bisecting.
LOAD_STEP = 1.25
#: The breaking-point search gives up above this multiplier, or below its inverse.
MAX_LOAD = 10.0
CONFIDENCE = 0.95


@dataclass(frozen=True, slots=True)
class RunSettings:
    load: float
    hours: float
    warmup_hours: float
    replications: int
    seed: int

    @classmethod
    def of(
        cls,
        model: JourneyModel,
        *,
        load: float = 1.0,
        hours: float | None = None,
        warmup_hours: float | None = None,
        replications: int | None = None,
        seed: int | None = None,
    ) -> "RunSettings":
        """The model's own settings, with whatever the caller overrides."""
        settings = cls(
            load=load,
            hours=model.hours if hours is None else hours,
            warmup_hours=model.warmup_hours if warmup_hours is None else warmup_hours,
            replications=model.replications if replications is None else replications,
            seed=model.seed if seed is None else seed,
        )
        if settings.load <= 0:
            raise ValueError("load must be positive")
        if settings.hours <= 0:
            raise ValueError("hours must be positive")
        if settings.warmup_hours < 0:
            raise ValueError("warmup_hours must not be negative")
        if settings.replications < 1:
            raise ValueError("replications must be at least 1")
        if settings.seed < 0:
            raise ValueError("seed must not be negative")
        return settings


def replicate(model: JourneyModel, settings: RunSettings) -> list[Replication]:
    plan = compile_plan(model)
    return [
        run_replication(
            plan,
            load=settings.load,
            warmup_seconds=settings.warmup_hours * 3600,
            measured_seconds=settings.hours * 3600,
            seed=settings.seed,
            replication=replication,
        )
        for replication in range(settings.replications)
    ]


def figures(
    model: JourneyModel, settings: RunSettings, replications: list[Replication]
) -> SimulationFigures:
    slas = [stage.sla for stage in model.stages]
    return summarise(compile_plan(model), slas, replications, load=settings.load)


def simulate(model: JourneyModel, settings: RunSettings) -> SimulationFigures:
    return figures(model, settings, replicate(model, settings))


@dataclass(frozen=True, slots=True)
class BreakingPoint:
    """``load`` is the lowest multiplier found at which a stage misses its SLA (to within the
    search's tolerance), ``highest_load_met`` the highest at which all met theirs; either is
    ``None`` when the search ran out of range. ``breaches`` are the stages missing at ``load``.
    ``tried`` lists every (load, all SLAs met) evaluated, in order."""

    load: float | None
    highest_load_met: float | None
    breaches: dict[str, tuple[str, ...]]
    tried: tuple[tuple[float, bool], ...]


def find_breaking_point(
    model: JourneyModel, settings: RunSettings, *, tolerance: float = 0.01
) -> BreakingPoint:
    """Step the load multiplier up (or down) by ``LOAD_STEP`` from ``settings.load`` until the
    SLAs change from met to missed, then bisect to ``tolerance``. Every load runs the same
    customers, so the SLA measures move smoothly with the load rather than jumping with noise.
    """
    if not any(stage.sla for stage in model.stages):
        raise ValueError("no stage has an sla, so nothing can break")
    tried: list[tuple[float, bool]] = []
    missed: dict[float, dict[str, tuple[str, ...]]] = {}

    def breaks(load: float) -> bool:
        result = simulate(model, replace(settings, load=load)).breaches
        tried.append((round(load, 6), not result))
        missed[load] = result
        return bool(result)

    met, broken = _bracket(settings.load, breaks)
    if broken is None:
        return BreakingPoint(None, met, {}, tuple(tried))
    if met is None:
        return BreakingPoint(broken, None, missed[broken], tuple(tried))
    while broken - met > tolerance:
        middle = (met + broken) / 2
        if breaks(middle):
            broken = middle
        else:
            met = middle
    return BreakingPoint(broken, met, missed[broken], tuple(tried))


def _bracket(start: float, breaks: Callable[[float], bool]) -> tuple[float | None, float | None]:
    """A load at which all SLAs are met and a higher one at which one is missed, stepping
    geometrically from ``start``; ``None`` on the side the range ran out."""
    if breaks(start):
        broken = start
        while broken / LOAD_STEP >= 1 / MAX_LOAD:
            if not breaks(broken / LOAD_STEP):
                return broken / LOAD_STEP, broken
            broken /= LOAD_STEP
        return None, broken
    met = start
    while met * LOAD_STEP <= MAX_LOAD:
        if breaks(met * LOAD_STEP):
            return met, met * LOAD_STEP
        met *= LOAD_STEP
    return met, None


@dataclass(frozen=True, slots=True)
class Difference:
    """Intervention minus baseline, the mean over replications and its confidence interval;
    each replication's difference is paired (same customers in both)."""

    baseline: float
    intervention: float
    difference: float
    low: float
    high: float
    significant: bool


@dataclass(frozen=True, slots=True)
class Comparison:
    name: str
    confidence: float
    baseline: SimulationFigures
    intervention: SimulationFigures
    journey: dict[str, Difference]
    stages: dict[str, dict[str, Difference]]


JOURNEY_MEASURES = ("total_seconds_mean", "total_seconds_p90", "abandoned_share")
STAGE_MEASURES = ("wait_seconds_mean", "wait_seconds_p90", "abandoned_share", "utilisation")


def compare(model: JourneyModel, settings: RunSettings) -> Comparison:
    """Run the baseline and the model's intervention with common random numbers, replication
    by replication, and put a t interval on the paired differences."""
    if model.intervention is None:
        raise ValueError("the model has no intervention to compare")
    if settings.replications < 2:
        raise ValueError("a comparison needs at least 2 replications")
    variant = model.with_intervention()
    baseline_runs, variant_runs = replicate(model, settings), replicate(variant, settings)
    before = [figures(model, settings, [run]) for run in baseline_runs]
    after = [figures(variant, settings, [run]) for run in variant_runs]
    return Comparison(
        name=model.intervention.name,
        confidence=CONFIDENCE,
        baseline=figures(model, settings, baseline_runs),
        intervention=figures(variant, settings, variant_runs),
        journey=_differences(
            [f.journey for f in before], [f.journey for f in after], JOURNEY_MEASURES
        ),
        stages={
            name: _differences(
                [f.stages[s] for f in before], [f.stages[s] for f in after], STAGE_MEASURES
            )
            for s, name in enumerate(model.stage_names())
        },
    )


def _differences(
    baseline: list[JourneyFigures] | list[StageFigures],
    intervention: list[JourneyFigures] | list[StageFigures],
    measures: tuple[str, ...],
) -> dict[str, Difference]:
    """Paired differences for every measure that every replication of both variants has (a
    stage nobody reached has no wait to compare)."""
    differences = {}
    for measure in measures:
        before = [getattr(f, measure) for f in baseline]
        after = [getattr(f, measure) for f in intervention]
        if None in before or None in after:
            continue
        paired = [a - b for a, b in zip(after, before, strict=True)]
        mean = statistics.fmean(paired)
        interval = mean_interval(mean, statistics.stdev(paired), len(paired), CONFIDENCE)
        differences[measure] = Difference(
            baseline=sum(before) / len(before),
            intervention=sum(after) / len(after),
            difference=mean,
            low=interval.low,
            high=interval.high,
            significant=interval.low > 0 or interval.high < 0,
        )
    return differences
