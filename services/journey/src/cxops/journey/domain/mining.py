"""Process mining of an event log: the journeys customers really take, where they wait, where
they loop, and how far they drift from the designed journey.

Discovery (activities, start and end activities, the directly-follows graph and its
performance, variants) gives the same figures as pm4py on the same log. Durations are summed in
whole microseconds, so totals are exact and no figure depends on the order of the source rows.

Statistics: a median is the middle value, or the mean of the two middle values (numpy's and
pandas' median, which pm4py uses); p90 interpolates linearly between the two nearest ranks
(numpy's default percentile).
"""

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

from cxops.journey.domain.conformance import Conformance, check_conformance
from cxops.journey.domain.journey_map import UNMAPPED, JourneyMap
from cxops.journey.domain.log import ACTIVITY, CASE, CHANNEL, TEAM, TIMESTAMP, EventLog

_MICROS = "micros"
_STAGE = "stage"
_SECOND = 1_000_000
#: Categorical codes are 32-bit: two side by side fit in one 64-bit integer.
_PAIR = 2**32
#: from, to, count, mean, median, max and total seconds.
_Switch = tuple[str, str, int, float, float, float, float]


@dataclass(frozen=True)
class Edge:
    """Directly-follows: ``target`` is the next event after ``source`` in ``count`` cases'
    sequences; the seconds are between the two events."""

    source: str
    target: str
    count: int
    mean_seconds: float
    median_seconds: float
    min_seconds: float
    max_seconds: float
    total_seconds: float


@dataclass(frozen=True)
class Variant:
    activities: tuple[str, ...]
    count: int


@dataclass(frozen=True)
class Handoff:
    """Consecutive events of a case done by different teams."""

    from_team: str
    to_team: str
    count: int
    mean_seconds: float
    median_seconds: float
    max_seconds: float
    total_seconds: float


@dataclass(frozen=True)
class ChannelSwitch:
    """Consecutive events of a case on different channels."""

    from_channel: str
    to_channel: str
    count: int
    mean_seconds: float
    median_seconds: float
    max_seconds: float
    total_seconds: float


@dataclass(frozen=True)
class Durations:
    mean: float
    median: float
    p90: float
    max: float


@dataclass(frozen=True)
class StageTime:
    """Time in a stage, per visit: from a case's first event in the stage to its first event
    in the next stage (or, if the case ends there, to its last event). A stage is a stage of
    the map, or without one an activity."""

    stage: str
    visits: int
    cases: int
    total_seconds: float
    mean_seconds: float
    median_seconds: float
    max_seconds: float


@dataclass(frozen=True)
class Contribution:
    """One edge or stage's part of all the waiting in the log (the sum of case durations)."""

    name: str
    total_seconds: float
    share: float


@dataclass(frozen=True)
class Bottlenecks:
    edges: list[Contribution]
    stages: list[Contribution]


@dataclass(frozen=True)
class ReworkActivity:
    """An activity done more than once in ``cases`` cases, ``repeats`` times beyond the first."""

    activity: str
    cases: int
    repeats: int
    example_cases: list[str]


@dataclass(frozen=True)
class Rework:
    cases: int
    share: float
    activities: list[ReworkActivity]


@dataclass(frozen=True)
class Mining:
    """Everything a mining run finds; ``dataclasses.asdict`` gives the JSON the command prints
    (lists are ordered most frequent or largest first, ties by name)."""

    cases: int
    events: int
    activities: dict[str, int]
    start_activities: dict[str, int]
    end_activities: dict[str, int]
    dfg: list[Edge]
    variants: list[Variant]
    handoffs: list[Handoff]
    channel_switches: list[ChannelSwitch]
    case_duration_seconds: Durations
    stages: list[StageTime]
    bottlenecks: Bottlenecks
    rework: Rework
    conformance: Conformance | None


def mine(log: EventLog, *, journey_map: JourneyMap | None = None, top: int = 10) -> Mining:
    """Mine ``log``; with a map, stages are the map's and the log is checked against it.
    ``top`` bounds the bottleneck lists and the example cases."""
    events = log.events.with_columns(_stage_column(log, journey_map))
    steps = _steps(log)
    activities = log.labels(ACTIVITY)
    firsts = events.filter(_first_of_case())
    lasts = events.filter(_last_of_case())
    spans = lasts[TIMESTAMP] - firsts[TIMESTAMP]
    waiting_micros = int(spans.dt.total_microseconds().sum())
    dfg = _dfg(steps, activities)
    stages = _stage_times(events, waiting_micros=waiting_micros)
    sequences = _sequences(log)
    return Mining(
        cases=firsts.height,
        events=events.height,
        activities=_counts(events[ACTIVITY]),
        start_activities=_counts(firsts[ACTIVITY]),
        end_activities=_counts(lasts[ACTIVITY]),
        dfg=dfg,
        variants=_variants(sequences, activities),
        handoffs=(
            [Handoff(*row) for row in _switches(steps, TEAM, log.labels(TEAM))]
            if log.has_team
            else []
        ),
        channel_switches=(
            [ChannelSwitch(*row) for row in _switches(steps, CHANNEL, log.labels(CHANNEL))]
            if log.has_channel
            else []
        ),
        case_duration_seconds=_durations(spans),
        stages=stages,
        bottlenecks=Bottlenecks(
            edges=_largest(
                ((f"{e.source} -> {e.target}", e.total_seconds) for e in dfg), waiting_micros, top
            ),
            stages=_largest(((s.stage, s.total_seconds) for s in stages), waiting_micros, top),
        ),
        rework=_rework(sequences, activities, cases=firsts.height, examples=top),
        conformance=(check_conformance(log, journey_map) if journey_map is not None else None),
    )


def _first_of_case() -> pl.Expr:
    return (pl.col(CASE) != pl.col(CASE).shift(1)).fill_null(True)


def _last_of_case() -> pl.Expr:
    return (pl.col(CASE) != pl.col(CASE).shift(-1)).fill_null(True)


def _micros_to_next() -> pl.Expr:
    return (pl.col(TIMESTAMP).shift(-1) - pl.col(TIMESTAMP)).dt.total_microseconds()


def _pair(field: str) -> pl.Expr:
    """The categorical codes of an event's ``field`` and of the next event's, side by side in
    one 64-bit key (null when either is): grouping on one integer takes about half the time
    and memory of grouping on two columns."""
    code = pl.col(field).to_physical().cast(pl.UInt64)
    return code * _PAIR + code.shift(-1)


def _steps(log: EventLog) -> pl.DataFrame:
    """Each event with the next event of its case, the pairs every performance figure is made
    of: a key per field (activity, and team and channel when the log has them) and the
    microseconds between the two events."""
    fields = [ACTIVITY] + [
        field for field, present in ((TEAM, log.has_team), (CHANNEL, log.has_channel)) if present
    ]
    return (
        log.events.lazy()
        .select(
            *(_pair(field).alias(field) for field in fields),
            _micros_to_next().alias(_MICROS),
            _last_of_case().alias("last"),
        )
        .filter(~pl.col("last"))
        .drop("last")
        .collect()
    )


def _transitions(
    steps: pl.DataFrame, field: str, names: dict[int, str], *, changes_only: bool
) -> list[tuple[str, str, int, int, float, int, int]]:
    """Per (from, to) pair of ``field``'s values: count, and the total, median, min and max
    microseconds; most frequent first, ties by name."""
    pairs = steps.select(field, _MICROS).drop_nulls(field)
    if changes_only:
        key = pl.col(field)
        pairs = pairs.filter(key // _PAIR != key % _PAIR)
    micros = pl.col(_MICROS)
    per_pair = pairs.group_by(field).agg(
        pl.len(),
        micros.sum().alias("total"),
        micros.median().alias("median"),
        micros.min().alias("min"),
        micros.max().alias("max"),
    )
    rows = [
        (names[key // _PAIR], names[key % _PAIR], *figures)
        for key, *figures in per_pair.iter_rows()
    ]
    return sorted(rows, key=lambda row: (-row[2], row[0], row[1]))


def _dfg(steps: pl.DataFrame, names: dict[int, str]) -> list[Edge]:
    return [
        Edge(
            source=source,
            target=target,
            count=count,
            mean_seconds=total / count / _SECOND,
            median_seconds=median / _SECOND,
            min_seconds=low / _SECOND,
            max_seconds=high / _SECOND,
            total_seconds=total / _SECOND,
        )
        for source, target, count, total, median, low, high in _transitions(
            steps, ACTIVITY, names, changes_only=False
        )
    ]


def _switches(steps: pl.DataFrame, field: str, names: dict[int, str]) -> list[_Switch]:
    """Consecutive events whose ``field`` differs (both known): count, mean, median, max and
    total seconds per (from, to)."""
    return [
        (
            source,
            target,
            count,
            total / count / _SECOND,
            median / _SECOND,
            high / _SECOND,
            total / _SECOND,
        )
        for source, target, count, total, median, _, high in _transitions(
            steps, field, names, changes_only=True
        )
    ]


def _counts(values: pl.Series) -> dict[str, int]:
    counted = values.value_counts(name="count").with_columns(pl.col(values.name).cast(pl.String))
    ordered = counted.sort(["count", values.name], descending=[True, False])
    return dict(ordered.iter_rows())


def _sequences(log: EventLog) -> pl.DataFrame:
    """One row per variant: its activities' codes in order, how many cases follow it, and
    which. Variants and rework are both read from it."""
    return (
        log.events.group_by(CASE)
        .agg(pl.col(ACTIVITY).to_physical().alias("codes"))
        .group_by("codes")
        .agg(pl.len().alias("count"), pl.col(CASE))
    )


def _variants(sequences: pl.DataFrame, names: dict[int, str]) -> list[Variant]:
    variants = [
        Variant(tuple(names[code] for code in codes), count)
        for codes, count in sequences.select("codes", "count").iter_rows()
    ]
    return sorted(variants, key=lambda v: (-v.count, v.activities))


def _durations(spans: pl.Series) -> Durations:
    micros = pl.col(_MICROS)
    total, count, median, p90, largest = (
        pl.DataFrame({_MICROS: spans.dt.total_microseconds()})
        .select(
            micros.sum().alias("total"),
            micros.len().alias("count"),
            micros.median().alias("median"),
            micros.quantile(0.9, interpolation="linear").alias("p90"),
            micros.max().alias("max"),
        )
        .row(0)
    )
    return Durations(
        mean=total / count / _SECOND,
        median=median / _SECOND,
        p90=p90 / _SECOND,
        max=largest / _SECOND,
    )


def _stage_column(log: EventLog, journey_map: JourneyMap | None) -> pl.Expr:
    """Each event's stage, an enum in the stages' order: the map's stage that claims the
    event's activity, or without a map the activity itself (in the order of the names)."""
    names = log.labels(ACTIVITY)
    if journey_map is None:
        stage_of = {name: name for name in names.values()}
        order = sorted(stage_of)
    else:
        stage_of = journey_map.stage_of()
        order = [stage.name for stage in journey_map.stages] + [UNMAPPED]
    return (
        pl.col(ACTIVITY)
        .to_physical()
        .replace_strict(
            list(names),
            [stage_of.get(name, UNMAPPED) for name in names.values()],
            return_dtype=pl.Enum(order),
        )
        .alias(_STAGE)
    )


def _stage_times(events: pl.DataFrame, *, waiting_micros: int) -> list[StageTime]:
    """Per stage, in the stages' order (the map's, or the activities' names).

    Visits are runs of consecutive events of a case in one stage, so they tile the log. The
    time to the next event of the case (none after its last), summed from the log's start, is
    a running total that ends at ``waiting_micros``; a visit's time is the running total at the
    next visit's start minus the one at its own, with no grouping per visit."""
    gap = pl.when(_last_of_case()).then(0).otherwise(_micros_to_next())
    visit_start = _first_of_case() | (pl.col(_STAGE) != pl.col(_STAGE).shift(1)).fill_null(True)
    before = pl.col("before")
    visits = (
        events.lazy()
        .select(CASE, _STAGE, (gap.cum_sum() - gap).alias("before"), visit_start.alias("start"))
        .filter("start")
        .select(CASE, _STAGE, (before.shift(-1, fill_value=waiting_micros) - before).alias("time"))
    )
    time = pl.col("time")
    per_stage = (
        visits.group_by(_STAGE)
        .agg(
            pl.len().alias("visits"),
            pl.col(CASE).n_unique().alias("cases"),
            time.sum().alias("total"),
            time.median().alias("median"),
            time.max().alias("max"),
        )
        .sort(_STAGE)
        .with_columns(pl.col(_STAGE).cast(pl.String))
        .collect()
    )
    return [
        StageTime(
            stage=stage,
            visits=count,
            cases=cases,
            total_seconds=total / _SECOND,
            mean_seconds=total / count / _SECOND,
            median_seconds=median / _SECOND,
            max_seconds=largest / _SECOND,
        )
        for stage, count, cases, total, median, largest in per_stage.iter_rows()
    ]


def _largest(
    totals: Iterable[tuple[str, float]], waiting_micros: int, top: int
) -> list[Contribution]:
    waiting = waiting_micros / _SECOND
    ranked = sorted(totals, key=lambda item: (-item[1], item[0]))[:top]
    return [
        Contribution(name, total, total / waiting if waiting else 0.0) for name, total in ranked
    ]


def _rework(sequences: pl.DataFrame, names: dict[int, str], *, cases: int, examples: int) -> Rework:
    """Read from the variants: a case repeats an activity when its variant does."""
    reworked = 0
    cases_per: Counter[int] = Counter()
    repeats_per: Counter[int] = Counter()
    variants_per: dict[int, list[int]] = defaultdict(list)
    for row, (codes, count) in enumerate(sequences.select("codes", "count").iter_rows()):
        repeated = {code: seen - 1 for code, seen in Counter(codes).items() if seen > 1}
        reworked += count if repeated else 0
        for code, extra in repeated.items():
            cases_per[code] += count
            repeats_per[code] += extra * count
            variants_per[code].append(row)
    activities = [
        ReworkActivity(
            activity=names[code],
            cases=cases_per[code],
            repeats=repeats_per[code],
            example_cases=_first_cases(sequences[rows], examples),
        )
        for code, rows in variants_per.items()
    ]
    return Rework(
        cases=reworked,
        share=reworked / cases,
        activities=sorted(activities, key=lambda item: (-item.cases, item.activity)),
    )


def _first_cases(variants: pl.DataFrame, count: int) -> list[str]:
    """The first ``count`` case ids, in the order of their names, that follow ``variants``."""
    cases = variants[CASE].explode().cast(pl.String)
    return cases.sort().head(count).to_list()
