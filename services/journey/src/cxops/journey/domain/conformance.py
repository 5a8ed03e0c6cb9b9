"""How far reality drifts from the designed journey.

A case's stage sequence is its events mapped to the map's stages (events of activities no stage
claims are left out of it, and reported), with consecutive events in one stage forming one
visit. Against that sequence:

- a **loop** is a stage visited again after the case left it;
- a stage is **out of order** when the case first reaches it after a later stage (in the map's
  order) was already reached;
- a required stage is **skipped** when the case never visits it but reaches a later stage (a
  case still on its way, that has not reached the later stages yet, skips nothing);
- an **unmapped activity** is one no stage of the map claims.

A case **fits** when it has none of these. SLA breaches are reported per handoff and do not
make a case unfit: a handoff is the move from one visit to the next, and its time runs from the
last event of the one to the first event of the other.
"""

from dataclasses import dataclass

import polars as pl

from cxops.journey.domain.journey_map import JourneyMap
from cxops.journey.domain.log import ACTIVITY, CASE, TIMESTAMP, EventLog

_STAGE = "stage_index"
_REACHED = "reached"
_SECOND = 1_000_000


@dataclass(frozen=True)
class StageDeviation:
    """Cases with the deviation, and per stage the cases it concerns."""

    cases: int
    stages: dict[str, int]


@dataclass(frozen=True)
class UnmappedActivities:
    cases: int
    activities: dict[str, int]


@dataclass(frozen=True)
class Deviations:
    skipped_stage: StageDeviation
    out_of_order: StageDeviation
    loop: StageDeviation
    unmapped_activity: UnmappedActivities


@dataclass(frozen=True)
class SlaAttainment:
    """The handoffs from one stage to the next seen in the log, and those over the SLA. The
    seconds are ``None`` when the log has no such handoff."""

    from_stage: str
    to_stage: str
    sla_seconds: float
    handoffs: int
    breaches: int
    breach_share: float
    mean_seconds: float | None
    median_seconds: float | None
    max_seconds: float | None


@dataclass(frozen=True)
class Conformance:
    cases: int
    fitting_cases: int
    fitness: float
    deviations: Deviations
    sla: list[SlaAttainment]


def check_conformance(log: EventLog, journey_map: JourneyMap) -> Conformance:
    """Compare every case of ``log`` with ``journey_map``."""
    names = [stage.name for stage in journey_map.stages]
    events = log.events.select(CASE, ACTIVITY, TIMESTAMP, _stage_index(log, journey_map))
    unmapped = events.filter(pl.col(_STAGE).is_null())
    visits = _visits(events.filter(pl.col(_STAGE).is_not_null()))
    visited = visits.group_by(CASE, _STAGE).len("visits")
    loops = visited.filter(pl.col("visits") > 1)
    late = _out_of_order(visits)
    skips, skipping_cases = _skipped(visited, journey_map)
    deviating = pl.concat([loops[CASE], late[CASE], skipping_cases, unmapped[CASE]]).n_unique()
    cases = log.cases
    return Conformance(
        cases=cases,
        fitting_cases=cases - deviating,
        fitness=(cases - deviating) / cases,
        deviations=Deviations(
            skipped_stage=StageDeviation(skipping_cases.len(), skips),
            out_of_order=_per_stage(late, names),
            loop=_per_stage(loops, names),
            unmapped_activity=UnmappedActivities(
                cases=unmapped[CASE].n_unique(),
                activities=_cases_per(unmapped, ACTIVITY),
            ),
        ),
        sla=_sla(visits, journey_map),
    )


def _stage_index(log: EventLog, journey_map: JourneyMap) -> pl.Expr:
    """Each event's stage as its position in the map (null when unmapped)."""
    position = {stage.name: index for index, stage in enumerate(journey_map.stages)}
    stage_of = journey_map.stage_of()
    names = log.labels(ACTIVITY)
    return (
        pl.col(ACTIVITY)
        .to_physical()
        .replace_strict(
            list(names),
            [position[stage_of[name]] if name in stage_of else None for name in names.values()],
            return_dtype=pl.Int32,
        )
        .alias(_STAGE)
    )


def _visits(events: pl.DataFrame) -> pl.DataFrame:
    """Runs of consecutive events of a case in one stage: the case, the stage, and the times
    of the run's first and last events, in case order."""
    case, stage = pl.col(CASE), pl.col(_STAGE)
    starts = ((case != case.shift(1)) | (stage != stage.shift(1))).fill_null(True)
    ends = ((case != case.shift(-1)) | (stage != stage.shift(-1))).fill_null(True)
    entered = events.filter(starts)
    left = events.filter(ends)
    return entered.select(CASE, _STAGE, pl.col(TIMESTAMP).alias("entered")).with_columns(
        left=left[TIMESTAMP]
    )


def _out_of_order(visits: pl.DataFrame) -> pl.DataFrame:
    """First visits to a stage made after a later stage was reached."""
    firsts = visits.filter(pl.struct(CASE, _STAGE).is_first_distinct())
    reached_before = pl.col(_STAGE).cum_max().shift(1).over(CASE)
    return firsts.filter(pl.col(_STAGE) < reached_before)


def _skipped(visited: pl.DataFrame, journey_map: JourneyMap) -> tuple[dict[str, int], pl.Series]:
    """Per required stage, the cases that went beyond it without visiting it; and every case
    that did so for some stage."""
    required = [i for i, stage in enumerate(journey_map.stages) if not stage.optional]
    reached = visited.group_by(CASE).agg(pl.col(_STAGE).max().alias(_REACHED))
    passed = visited.join(reached, on=CASE).filter(pl.col(_STAGE) < pl.col(_REACHED))
    skips: dict[str, int] = {}
    for index in required:
        beyond = reached.filter(pl.col(_REACHED) > index).height
        skipped = beyond - passed.filter(pl.col(_STAGE) == index).height
        if skipped:
            skips[journey_map.stages[index].name] = skipped
    stages = range(len(journey_map.stages))
    required_before = pl.col(_REACHED).replace_strict(
        stages, [sum(1 for i in required if i < limit) for limit in stages]
    )
    seen = passed.filter(pl.col(_STAGE).is_in(required)).group_by(CASE).len("seen")
    skipping = (
        reached.join(seen, on=CASE, how="left")
        .filter(required_before > pl.col("seen").fill_null(0))
        .get_column(CASE)
    )
    return dict(sorted(skips.items(), key=lambda item: (-item[1], item[0]))), skipping


def _per_stage(deviations: pl.DataFrame, names: list[str]) -> StageDeviation:
    per_stage = deviations.group_by(_STAGE).agg(pl.col(CASE).n_unique().alias("cases"))
    counts = {names[index]: cases for index, cases in per_stage.iter_rows()}
    return StageDeviation(
        cases=deviations[CASE].n_unique(),
        stages=dict(sorted(counts.items(), key=lambda item: (-item[1], item[0]))),
    )


def _cases_per(events: pl.DataFrame, field: str) -> dict[str, int]:
    counts = events.group_by(field).agg(pl.col(CASE).n_unique().alias("cases"))
    ordered = counts.select(pl.col(field).cast(pl.String), "cases").sort(
        ["cases", field], descending=[True, False]
    )
    return dict(ordered.iter_rows())


def _sla(visits: pl.DataFrame, journey_map: JourneyMap) -> list[SlaAttainment]:
    position = {stage.name: index for index, stage in enumerate(journey_map.stages)}
    limits = pl.DataFrame(
        {
            "from": [position[sla.from_stage] for sla in journey_map.handoffs],
            "to": [position[sla.to_stage] for sla in journey_map.handoffs],
            "limit": [round(sla.sla_seconds * _SECOND) for sla in journey_map.handoffs],
        },
        schema={"from": pl.Int32, "to": pl.Int32, "limit": pl.Int64},
    )
    micros = pl.col("micros")
    moves = (
        visits.select(
            pl.col(_STAGE).alias("from"),
            pl.col(_STAGE).shift(-1).alias("to"),
            (pl.col("entered").shift(-1) - pl.col("left")).dt.total_microseconds().alias("micros"),
            (pl.col(CASE) == pl.col(CASE).shift(-1)).alias("same_case"),
        )
        .filter("same_case")
        .join(limits, on=["from", "to"])
        .group_by("from", "to")
        .agg(
            pl.len().alias("handoffs"),
            (micros > pl.col("limit")).sum().alias("breaches"),
            micros.sum().alias("total"),
            micros.median().alias("median"),
            micros.max().alias("max"),
        )
    )
    seen = {(row[0], row[1]): row[2:] for row in moves.iter_rows()}
    results = []
    for sla in journey_map.handoffs:
        key = (position[sla.from_stage], position[sla.to_stage])
        count, breaches, total, median, largest = seen.get(key, (0, 0, 0, None, None))
        results.append(
            SlaAttainment(
                from_stage=sla.from_stage,
                to_stage=sla.to_stage,
                sla_seconds=sla.sla_seconds,
                handoffs=count,
                breaches=breaches,
                breach_share=breaches / count if count else 0.0,
                mean_seconds=total / count / _SECOND if count else None,
                median_seconds=None if median is None else median / _SECOND,
                max_seconds=None if largest is None else largest / _SECOND,
            )
        )
    return results
