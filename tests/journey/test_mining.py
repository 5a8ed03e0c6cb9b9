"""Journey mining on hand-checked logs: the directly-follows graph and its performance, start
and end activities, variants, handoffs, durations, stages, bottlenecks and rework; the same
figures from CSV and Parquet; and properties on random logs (row order changes nothing, mining
the parts of a log split by case adds up to the whole).

The hand-checked figures were also compared with pm4py 2.7 (in a scratch environment, not a
dependency): its DFG, performance DFG, start and end activities and variants are the same."""

import random
from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxops.journey.domain.journey_map import HandoffSla, JourneyMap, Stage
from cxops.journey.domain.log import Columns, LogError, prepare_log
from cxops.journey.domain.mining import Mining, mine
from tests.journey.mining_logs import HAND_LOG

ALL_COLUMNS = Columns(team="team", channel="channel")


def mine_csv(text: str, columns: Columns = ALL_COLUMNS, **options: Any) -> Mining:
    return mine(prepare_log(pl.read_csv(text.encode(), infer_schema=False), columns), **options)


def test_discovery_by_hand() -> None:
    result = mine_csv(HAND_LOG)
    assert (result.cases, result.events) == (3, 12)
    assert result.activities == {"bill": 4, "close": 3, "open": 3, "triage": 2}
    assert list(result.activities) == ["bill", "close", "open", "triage"]
    assert result.start_activities == {"open": 3}
    assert result.end_activities == {"close": 3}
    assert [(v.activities, v.count) for v in result.variants] == [
        (("open", "triage", "bill", "close"), 2),
        (("open", "bill", "bill", "close"), 1),
    ]


def test_directly_follows_performance_by_hand() -> None:
    edges = {
        (e.source, e.target): (
            e.count,
            e.mean_seconds,
            e.median_seconds,
            e.min_seconds,
            e.max_seconds,
        )
        for e in mine_csv(HAND_LOG).dfg
    }
    assert edges == {
        ("bill", "close"): (3, 1400.0, 1200.0, 1200.0, 1800.0),
        ("open", "triage"): (2, 900.0, 900.0, 600.0, 1200.0),
        ("triage", "bill"): (2, 3600.0, 3600.0, 3600.0, 3600.0),
        ("bill", "bill"): (1, 3600.0, 3600.0, 3600.0, 3600.0),
        ("open", "bill"): (1, 1800.0, 1800.0, 1800.0, 1800.0),
    }
    order = [(e.source, e.target) for e in mine_csv(HAND_LOG).dfg]
    assert order == [
        ("bill", "close"),
        ("open", "triage"),
        ("triage", "bill"),
        ("bill", "bill"),
        ("open", "bill"),
    ]


def test_handoffs_and_channel_switches_by_hand() -> None:
    result = mine_csv(HAND_LOG)
    assert [
        (h.from_team, h.to_team, h.count, h.mean_seconds, h.median_seconds) for h in result.handoffs
    ] == [
        ("billing", "front", 3, 1400.0, 1200.0),
        ("front", "billing", 3, 3000.0, 3600.0),
    ]
    assert [(s.from_channel, s.to_channel, s.count) for s in result.channel_switches] == [
        ("chat", "email", 1),
        ("phone", "email", 1),
    ]


def test_case_durations_stages_and_bottlenecks_by_hand() -> None:
    result = mine_csv(HAND_LOG)
    # durations 5400, 7200, 6000; p90 by linear interpolation: 6000 + 0.8 * 1200
    assert asdict(result.case_duration_seconds) == {
        "mean": 6200.0,
        "median": 6000.0,
        "p90": 6960.0,
        "max": 7200.0,
    }
    stages = {
        s.stage: (s.visits, s.cases, s.total_seconds, s.median_seconds) for s in result.stages
    }
    assert stages == {
        "bill": (3, 3, 7800.0, 1200.0),  # c2's two bill events are one visit of 5400 s
        "close": (3, 3, 0.0, 0.0),
        "open": (3, 3, 3600.0, 1200.0),
        "triage": (2, 2, 7200.0, 3600.0),
    }
    edges = [(b.name, b.total_seconds) for b in result.bottlenecks.edges]
    assert edges == [
        ("triage -> bill", 7200.0),
        ("bill -> close", 4200.0),
        ("bill -> bill", 3600.0),
        ("open -> bill", 1800.0),
        ("open -> triage", 1800.0),
    ]
    assert result.bottlenecks.edges[0].share == pytest.approx(7200 / 18600)
    assert [b.name for b in result.bottlenecks.stages] == ["bill", "triage", "open", "close"]


def test_rework_by_hand() -> None:
    rework = mine_csv(HAND_LOG).rework
    assert (rework.cases, rework.share) == (1, 1 / 3)
    assert [asdict(a) for a in rework.activities] == [
        {"activity": "bill", "cases": 1, "repeats": 1, "example_cases": ["c2"]}
    ]


def test_ties_keep_the_order_of_the_file() -> None:
    tied = "case_id,activity,timestamp\nk,b,2024-01-01T10:00:00Z\nk,a,2024-01-01T10:00:00Z\n"
    tied += "k,c,2024-01-01T09:00:00Z\n"
    result = mine_csv(tied, Columns())
    assert [v.activities for v in result.variants] == [("c", "b", "a")]


def test_team_and_channel_are_optional() -> None:
    result = mine_csv(HAND_LOG, Columns())
    assert result.handoffs == [] and result.channel_switches == []
    assert result.dfg == mine_csv(HAND_LOG).dfg


def test_parquet_datetimes_give_the_same_result(tmp_path: Any) -> None:
    frame = pl.read_csv(HAND_LOG.encode(), infer_schema=False)
    aware = frame.with_columns(
        pl.col("timestamp")
        .str.to_datetime("%Y-%m-%dT%H:%M:%S%#z", strict=False, time_zone="UTC")
        .fill_null(datetime(2024, 1, 1, 10, tzinfo=UTC))
        .dt.convert_time_zone("Europe/Paris")
    )
    naive = aware.with_columns(
        pl.col("timestamp").dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    )
    expected = asdict(mine_csv(HAND_LOG))
    for frame in (aware, naive):
        path = tmp_path / "log.parquet"
        frame.write_parquet(path)
        assert asdict(mine(prepare_log(pl.scan_parquet(path), ALL_COLUMNS))) == expected


# ------------------------------------------------------------------------------- conformance

DESIGN = JourneyMap(
    stages=(
        Stage("intake", ("open", "triage")),
        Stage("billing", ("bill",)),
        Stage("closure", ("close",)),
    ),
    handoffs=(HandoffSla("intake", "billing", 3000), HandoffSla("billing", "closure", 1500)),
)


def test_conformance_sla_by_hand() -> None:
    conformance = mine_csv(HAND_LOG, journey_map=DESIGN).conformance
    assert conformance is not None
    assert (conformance.cases, conformance.fitting_cases, conformance.fitness) == (3, 3, 1.0)
    # intake -> billing: 3600 (c1, from triage 09:10 to bill 10:10), 1800 (c2), 3600 (c3)
    # billing -> closure: 1200 (c1), 1800 (c2, from its last bill), 1200 (c3)
    assert [
        (s.from_stage, s.to_stage, s.handoffs, s.breaches, s.mean_seconds, s.max_seconds)
        for s in conformance.sla
    ] == [
        ("intake", "billing", 3, 2, 3000.0, 3600.0),
        ("billing", "closure", 3, 1, 1400.0, 1800.0),
    ]


def test_stages_follow_the_map() -> None:
    stages = mine_csv(HAND_LOG, journey_map=DESIGN).stages
    # c1: intake 09:00 -> bill 10:10, 4200 s; c2: 1800 s; c3: 00:00 -> 01:20, 4800 s
    assert [(s.stage, s.visits, s.total_seconds) for s in stages] == [
        ("intake", 3, 10800.0),
        ("billing", 3, 7800.0),
        ("closure", 3, 0.0),
    ]


DEVIATING_CASES = {
    "fits": ["open", "triage", "bill", "close"],
    "on-its-way": ["open", "triage"],  # has not reached billing yet: skips nothing
    "skips-billing": ["open", "close"],
    "loops": ["open", "bill", "triage", "bill", "close"],
    "out-of-order": ["bill", "open", "close"],
    "unmapped": ["open", "escalate", "bill", "close"],
}


def events_of(cases: dict[str, list[str]]) -> pl.DataFrame:
    start = datetime(2024, 3, 1, tzinfo=UTC)
    rows = [
        (case, activity, start + timedelta(minutes=10 * step))
        for case, activities in cases.items()
        for step, activity in enumerate(activities)
    ]
    return pl.DataFrame(rows, schema=["case_id", "activity", "timestamp"], orient="row")


def test_deviations_by_hand() -> None:
    log = prepare_log(events_of(DEVIATING_CASES), Columns())
    conformance = mine(log, journey_map=DESIGN).conformance
    assert conformance is not None
    assert (conformance.cases, conformance.fitting_cases) == (6, 2)
    deviations = asdict(conformance.deviations)
    assert deviations == {
        "skipped_stage": {"cases": 1, "stages": {"billing": 1}},
        "out_of_order": {"cases": 1, "stages": {"intake": 1}},
        "loop": {"cases": 1, "stages": {"billing": 1, "intake": 1}},
        "unmapped_activity": {"cases": 1, "activities": {"escalate": 1}},
    }
    assert [s.stage for s in mine(log, journey_map=DESIGN).stages] == [
        "intake",
        "billing",
        "closure",
        "(unmapped)",
    ]


def test_an_optional_stage_may_be_skipped() -> None:
    optional = JourneyMap(
        stages=(DESIGN.stages[0], Stage("billing", ("bill",), optional=True), DESIGN.stages[2])
    )
    log = prepare_log(events_of({"skips-billing": ["open", "close"]}), Columns())
    conformance = mine(log, journey_map=optional).conformance
    assert conformance is not None and conformance.fitting_cases == 1


def test_an_sla_never_exercised_reports_no_times() -> None:
    log = prepare_log(events_of({"direct": ["open", "close"]}), Columns())
    conformance = mine(log, journey_map=DESIGN).conformance
    assert conformance is not None
    assert asdict(conformance.sla[0]) == {
        "from_stage": "intake",
        "to_stage": "billing",
        "sla_seconds": 3000,
        "handoffs": 0,
        "breaches": 0,
        "breach_share": 0.0,
        "mean_seconds": None,
        "median_seconds": None,
        "max_seconds": None,
    }


# --------------------------------------------------------------------------------- bad logs


@pytest.mark.parametrize(
    ("text", "columns", "expected"),
    [
        ("case_id,activity,when\nc,a,2024-01-01\n", Columns(), "column 'timestamp' is not"),
        ("case_id,activity,timestamp\n", Columns(), "no events"),
        (
            "case_id,activity,timestamp\nc,a,2024-01-01T10:00:00Z\nc,b,yesterday\nc,c,never\n",
            Columns(),
            "row 2, column 'timestamp': not a date-time: 'yesterday' (and 1 more rows)",
        ),
        (
            "case_id,activity,timestamp\nc,a,2024-01-01T10:00:00Z\nc,,2024-01-01T11:00:00Z\n",
            Columns(),
            "row 2, column 'activity': empty",
        ),
        (
            "case_id,activity,timestamp\nc,a,2024-01-01T10:00:00Z\nc,b,\n",
            Columns(),
            "row 2, column 'timestamp': empty",
        ),
        ("id,act,ts\nc,a,2024-01-01\n", Columns(case="id", activity="act", timestamp="x"), "'x'"),
    ],
)
def test_bad_logs_name_the_column_and_row(text: str, columns: Columns, expected: str) -> None:
    with pytest.raises(LogError) as refused:
        prepare_log(pl.read_csv(text.encode(), infer_schema=False), columns)
    assert expected in str(refused.value)


def test_mixed_time_zones_are_normalised_to_utc() -> None:
    text = "case_id,activity,timestamp\n"
    text += "c,a,2024-06-01T12:00:00+02:00\nc,b,2024-06-01 10:30\nc,c,2024-06-01T11:00:00.5Z\n"
    text += "c,d,2024-06-01T07:00:00-05:00\nc,e,2024-06-02\n"
    result = mine_csv(text, Columns())
    assert [e.mean_seconds for e in result.dfg if e.source == "a"] == [1800.0]
    assert [v.activities for v in result.variants] == [("a", "b", "c", "d", "e")]
    assert result.case_duration_seconds.max == 14 * 3600


# ------------------------------------------------------------------------------- properties

ACTIVITIES = st.sampled_from(["open", "triage", "bill", "refund", "close"])
TEAMS = st.sampled_from(["front", "billing", "finance", None])
CASES = st.dictionaries(
    keys=st.text("abcdef0123", min_size=1, max_size=4),
    values=st.lists(st.tuples(ACTIVITIES, st.integers(0, 4000), TEAMS), min_size=1, max_size=8),
    min_size=1,
    max_size=10,
)
START = datetime(2024, 1, 1, tzinfo=UTC)


def frame_of(
    cases: dict[str, list[tuple[str, int, str | None]]], *, distinct: bool
) -> pl.DataFrame:
    """One row per event. With ``distinct``, times within a case strictly increase (steps of
    at least a second), so no order of the rows can be ambiguous; without, steps may be 0."""
    rows = []
    for case, events in cases.items():
        clock = START
        for activity, step, team in events:
            clock += timedelta(seconds=step + (1 if distinct else 0))
            rows.append((case, activity, clock, team))
    return pl.DataFrame(rows, schema=["case_id", "activity", "timestamp", "team"], orient="row")


def mined(frame: pl.DataFrame) -> dict[str, Any]:
    return asdict(mine(prepare_log(frame, Columns(team="team")), journey_map=DESIGN))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases=CASES, seed=st.integers(0, 2**32))
def test_shuffling_rows_changes_nothing(cases: Any, seed: int) -> None:
    frame = frame_of(cases, distinct=True)
    order = list(range(frame.height))
    random.Random(seed).shuffle(order)
    assert mined(frame[order]) == mined(frame)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases=CASES, seed=st.integers(0, 2**32))
def test_shuffling_whole_cases_changes_nothing_even_with_ties(cases: Any, seed: int) -> None:
    names = list(cases)
    random.Random(seed).shuffle(names)
    shuffled = {name: cases[name] for name in names}
    assert mined(frame_of(shuffled, distinct=False)) == mined(frame_of(cases, distinct=False))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases=CASES, cut=st.integers(1, 9))
def test_mining_parts_split_by_case_adds_up_to_the_whole(cases: Any, cut: int) -> None:
    names = sorted(cases)
    if len(names) < 2:
        return
    cut = min(cut, len(names) - 1)
    parts = [{n: cases[n] for n in names[:cut]}, {n: cases[n] for n in names[cut:]}]
    whole = mined(frame_of(cases, distinct=False))
    pieces = [mined(frame_of(part, distinct=False)) for part in parts]

    for key in ("cases", "events"):
        assert whole[key] == sum(piece[key] for piece in pieces)
    for key in ("activities", "start_activities", "end_activities"):
        assert Counter(whole[key]) == sum((Counter(piece[key]) for piece in pieces), Counter())
    assert _variants(whole) == sum((_variants(piece) for piece in pieces), Counter())
    assert _edges(whole) == _sum_edges(pieces)
    handoffs = [
        Counter({(h["from_team"], h["to_team"]): h["count"] for h in p["handoffs"]}) for p in pieces
    ]
    assert Counter({(h["from_team"], h["to_team"]): h["count"] for h in whole["handoffs"]}) == sum(
        handoffs, Counter()
    )
    assert whole["rework"]["cases"] == sum(piece["rework"]["cases"] for piece in pieces)
    assert whole["case_duration_seconds"]["max"] == max(
        piece["case_duration_seconds"]["max"] for piece in pieces
    )
    stage_totals = Counter({s["stage"]: s["total_seconds"] for s in whole["stages"]})
    assert stage_totals == sum(
        (Counter({s["stage"]: s["total_seconds"] for s in p["stages"]}) for p in pieces), Counter()
    )
    conformance = [piece["conformance"] for piece in pieces]
    assert whole["conformance"]["fitting_cases"] == sum(c["fitting_cases"] for c in conformance)
    for sla, *sla_parts in zip(
        whole["conformance"]["sla"], *(c["sla"] for c in conformance), strict=True
    ):
        assert sla["breaches"] == sum(part["breaches"] for part in sla_parts)


def _variants(result: dict[str, Any]) -> Counter[tuple[str, ...]]:
    return Counter({tuple(v["activities"]): v["count"] for v in result["variants"]})


def _edges(result: dict[str, Any]) -> dict[tuple[str, str], tuple[int, float, float, float]]:
    return {
        (e["source"], e["target"]): (
            e["count"],
            e["total_seconds"],
            e["min_seconds"],
            e["max_seconds"],
        )
        for e in result["dfg"]
    }


def _sum_edges(
    pieces: list[dict[str, Any]],
) -> dict[tuple[str, str], tuple[int, float, float, float]]:
    summed: dict[tuple[str, str], tuple[int, float, float, float]] = {}
    for piece in pieces:
        for key, (count, total, low, high) in _edges(piece).items():
            if key in summed:
                c, t, lo, hi = summed[key]
                summed[key] = (c + count, t + total, min(lo, low), max(hi, high))
            else:
                summed[key] = (count, total, low, high)
    return summed


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases=CASES)
def test_all_waiting_is_accounted_for(cases: Any) -> None:
    """Edge totals, stage totals and case durations are three views of the same time."""
    result = mined(frame_of(cases, distinct=False))
    durations = sum(step for events in cases.values() for _, step, _ in events[1:])
    assert sum(e["total_seconds"] for e in result["dfg"]) == durations
    assert sum(s["total_seconds"] for s in result["stages"]) == durations
