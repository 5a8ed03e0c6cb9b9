"""Journey mining speed and memory on a log like a real export: about 10 events per case over 15
activities, 6 teams and 4 channels, loops and rework, time stamps to the second in UTC ('Z')
mixed with local offsets, rows in time order (so every case must be gathered).

The whole of ``cxops journey mine`` (reading the CSV, parsing, sorting, every analysis, the
JSON) runs in a child process, whose peak memory is its own maximum resident set size
(``os.wait4``); a second child runs the command itself, Python's start and imports included.
The baseline, in the same run, is a straightforward pure-Python implementation (csv module,
dicts) of the directly-follows graph with its performance and the variants, run on up to a
million events' worth of cases and scaled to the whole log; its figures must equal ours.

Goals: 1M events in at most 2 s and 500 MB; 10M events in at most 30 s and 8 GB.

    uv run python bench/mining.py                      # 1,000,000 events, 100,000 cases
    uv run python bench/mining.py --events 10000000    # about 10 minutes with the baseline
"""

import argparse
import csv
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import polars as pl

ACTIVITIES = (
    "case opened",
    "identity verified",
    "triaged",
    "handed to billing",
    "invoice checked",
    "refund requested",
    "refund approved",
    "refund issued",
    "technical check",
    "field visit scheduled",
    "field visit done",
    "customer called back",
    "escalated",
    "case resolved",
    "survey sent",
)
TEAMS = ("frontline", "billing", "finance", "tech support", "field ops", "escalations")
#: The team that usually does each activity (8% of events are done by another team).
OWNER = (0, 0, 0, 1, 1, 1, 2, 2, 3, 4, 4, 0, 5, 0, 0)
CHANNELS = ("phone", "email", "chat", "web")
#: Median minutes before each activity happens (log-normal around it).
MEDIAN_MINUTES = (1, 2, 15, 120, 60, 240, 480, 60, 90, 1440, 2880, 30, 360, 10, 60)
END = len(ACTIVITIES)
#: activity -> {next activity (END: the case ends): probability}; about 10 events per case.
FLOW = {
    0: {1: 0.85, 2: 0.15},
    1: {2: 0.95, 11: 0.05},
    2: {3: 0.55, 8: 0.35, 12: 0.05, 13: 0.05},
    3: {4: 0.9, 2: 0.1},
    4: {5: 0.6, 11: 0.25, 4: 0.1, 13: 0.05},
    5: {6: 0.85, 4: 0.15},
    6: {7: 0.95, 12: 0.05},
    7: {11: 0.6, 13: 0.4},
    8: {9: 0.35, 11: 0.35, 8: 0.1, 13: 0.2},
    9: {10: 0.9, 11: 0.1},
    10: {11: 0.5, 13: 0.5},
    11: {13: 0.5, 2: 0.3, 12: 0.2},
    12: {13: 0.6, 3: 0.2, 8: 0.2},
    13: {14: 0.85, END: 0.1, 11: 0.05},
    14: {END: 1.0},
}
PM4PY_REFERENCE = (
    "pm4py 2.7 reference (from the issue, the same kind of machine, 2 cores; not run here):\n"
    "  1M events: frame preparation 1.2 s, frequency DFG 0.93 s, performance DFG 1.09 s,\n"
    "  variants 0.25 s, team handoff delays 6.06 s at 1.0 GB peak, case durations 0.33 s\n"
    "  (9.9 s for these analyses alone, the CSV not read); 10M events: the DFG alone 19.8 s\n"
    "  at 2.3 GB"
)


def generate(events: int, seed: int = 7) -> pl.DataFrame:
    """``events // 10`` cases walking the flow from 'case opened', rows sorted by time."""
    import numpy as np  # here, so that the measured child does not load it

    rng = np.random.default_rng(seed)
    cases = events // 10
    chances = np.zeros((END, END + 1))
    for source, targets in FLOW.items():
        for target, chance in targets.items():
            chances[source, target] = chance
    cumulative = chances.cumsum(axis=1)
    activity = np.zeros(cases, dtype=np.int64)
    clock = 1_704_067_200 + rng.uniform(0, 90 * 86400, cases)  # opened during 90 days of 2024
    alive = np.arange(cases)
    parts = []
    while alive.size:
        parts.append((alive, activity[alive], clock[alive]))
        draw = rng.random(alive.size)
        following = (draw[:, None] > cumulative[activity[alive]]).sum(axis=1)
        going_on = following != END
        alive, following = alive[going_on], following[going_on]
        activity[alive] = following
        wait = rng.lognormal(np.log(np.array(MEDIAN_MINUTES)[following] * 60.0), 0.8)
        clock[alive] += wait
    case_ids, activities, seconds = (np.concatenate(column) for column in zip(*parts, strict=True))
    teams = np.array(OWNER)[activities]
    elsewhere = rng.random(teams.size) < 0.08
    teams[elsewhere] = rng.integers(0, len(TEAMS), int(elsewhere.sum()))
    order = np.argsort(seconds, kind="stable")
    utc = pl.from_epoch(pl.Series(seconds[order].astype(np.int64)), time_unit="s")
    utc = utc.dt.replace_time_zone("UTC")
    local = rng.random(order.size) < 0.3  # a third of the systems write local time
    return pl.DataFrame(
        {
            "case_id": pl.Series(case_ids[order]).cast(pl.String).str.zfill(7),
            "activity": pl.Series(activities[order]).replace_strict(
                list(range(END)), ACTIVITIES, return_dtype=pl.String
            ),
            "timestamp": pl.select(
                pl.when(pl.Series(local))
                .then(utc.dt.convert_time_zone("Europe/Paris").dt.strftime("%Y-%m-%dT%H:%M:%S%:z"))
                .otherwise(utc.dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
            ).to_series(),
            "team": pl.Series(teams[order]).replace_strict(
                list(range(len(TEAMS))), TEAMS, return_dtype=pl.String
            ),
            "channel": pl.Series(rng.integers(0, len(CHANNELS), order.size)).replace_strict(
                list(range(len(CHANNELS))), CHANNELS, return_dtype=pl.String
            ),
        }
    ).with_columns(pl.format("C{}", "case_id").alias("case_id"))


def mine_in_this_process(path: Path) -> dict[str, float]:
    """What ``cxops journey mine LOG --json`` does, timed by phase (run in the child)."""
    from cxops.journey.domain.log import Columns, prepare_log
    from cxops.journey.domain.mining import mine
    from cxops.journey.formats.log import scan_log
    from cxops.journey.runs import mining_json

    started = time.perf_counter()
    log = prepare_log(scan_log(path), Columns(team="team", channel="channel"))
    prepared = time.perf_counter()
    result = mine(log)
    mined = time.perf_counter()
    text = mining_json(result)
    encoded = time.perf_counter()
    return {
        "prepare": prepared - started,
        "analyses": mined - prepared,
        "json": encoded - mined,
        "total": encoded - started,
        "variants": len(result.variants),
        "json_bytes": len(text),
    }


def write_logs(events: int, workdir: Path) -> dict[str, float]:
    """The log, and the sample of its cases the baseline runs on (all of it up to 1M events)."""
    frame = generate(events)
    frame.write_csv(workdir / "log.csv")
    share = min(1.0, 1_000_000 / events)
    number = pl.col("case_id").str.slice(1).cast(pl.Int64)
    frame.filter(number < share * (events // 10)).write_csv(workdir / "sample.csv")
    return {"events": frame.height, "cases": frame["case_id"].n_unique(), "sample_share": share}


def run_child(command: list[str]) -> tuple[str, float, int]:
    """Run ``command``; its stdout, wall seconds and peak resident memory in bytes.

    Linux carries a process's high-water mark across ``exec``, so a child's figure starts from
    its parent's resident size when it was started: the parent holds nothing large while the
    measured children run (the log is generated in a child of its own, the baseline runs
    after them)."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE)
    assert child.stdout is not None
    output = child.stdout.read().decode()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"{command} failed with {child.returncode}")
    return output, time.perf_counter() - started, usage.ru_maxrss * 1024


Edges = dict[tuple[str, str], tuple[int, float, float, float, float]]


def baseline(path: Path) -> tuple[Edges, Counter[tuple[str, ...]], float]:
    """The straightforward way: read with csv, group per case in dicts, sort each case, walk
    the pairs. The DFG (count, mean, median, min, max seconds), the variants, and the seconds
    it took."""
    started = time.perf_counter()
    per_case: dict[str, list[tuple[datetime, int, str]]] = defaultdict(list)
    with path.open(newline="") as handle:
        for row_number, row in enumerate(csv.DictReader(handle)):
            when = datetime.fromisoformat(row["timestamp"])
            per_case[row["case_id"]].append((when, row_number, row["activity"]))
    delays: dict[tuple[str, str], list[float]] = defaultdict(list)
    variants: Counter[tuple[str, ...]] = Counter()
    for events in per_case.values():
        events.sort()
        variants[tuple(activity for _, _, activity in events)] += 1
        for (before, _, source), (after, _, target) in itertools.pairwise(events):
            delays[(source, target)].append((after - before).total_seconds())
    edges = {
        edge: (len(d), statistics.fmean(d), statistics.median(d), min(d), max(d))
        for edge, d in delays.items()
    }
    return edges, variants, time.perf_counter() - started


def check_against_ours(path: Path, edges: Edges, variants: Counter[tuple[str, ...]]) -> None:
    from cxops.journey.domain.log import Columns, prepare_log
    from cxops.journey.domain.mining import mine
    from cxops.journey.formats.log import scan_log

    ours = mine(prepare_log(scan_log(path), Columns()))
    for edge in ours.dfg:
        count, mean, median, low, high = edges[(edge.source, edge.target)]
        assert (edge.count, edge.median_seconds, edge.min_seconds, edge.max_seconds) == (
            count,
            median,
            low,
            high,
        ), f"{edge} differs from the baseline"
        assert abs(edge.mean_seconds - mean) <= 1e-9 * max(1.0, mean), f"{edge} mean differs"
    assert len(ours.dfg) == len(edges), "the DFGs have different edges"
    assert Counter({v.activities: v.count for v in ours.variants}) == variants, "variants differ"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--write-to", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(mine_in_this_process(args.child)))
        return
    if args.write_to:
        print(json.dumps(write_logs(args.events, args.write_to)))
        return

    workdir = Path(tempfile.mkdtemp(prefix="cxops-mining-"))
    path, sample_path = workdir / "log.csv", workdir / "sample.csv"
    written, seconds, _ = run_child(
        [sys.executable, __file__, "--events", str(args.events), "--write-to", str(workdir)]
    )
    log = json.loads(written)
    share = log["sample_share"]
    print(
        f"log: {log['events']:,} events, {log['cases']:,} cases, {len(ACTIVITIES)} activities, "
        f"{len(TEAMS)} teams, {len(CHANNELS)} channels; CSV {path.stat().st_size / 1e6:.0f} MB "
        f"(generated in {seconds:.1f} s)"
    )

    output, wall, peak = run_child([sys.executable, __file__, "--child", str(path)])
    phases = json.loads(output)
    goal_seconds, goal_bytes = (2.0, 500e6) if args.events <= 1_000_000 else (30.0, 8e9)
    print("cxops journey mine, in a child process (reading the CSV included):")
    json_label = f"JSON ({phases['json_bytes'] / 1e6:.1f} MB)"
    print(f"  {'read, parse, check, sort':<25}{phases['prepare']:7.2f} s")
    print(f"  {'all analyses':<25}{phases['analyses']:7.2f} s")
    print(f"  {json_label:<25}{phases['json']:7.2f} s")
    print(
        f"  {'total':<25}{phases['total']:7.2f} s   (goal <= {goal_seconds:g} s)   "
        f"peak memory {peak / 1e6:,.0f} MB (goal <= {goal_bytes / 1e6:,.0f} MB)"
    )
    print(f"  the child's wall time, Python's start and imports included: {wall:.2f} s")
    command = [sys.executable, "-m", "cxops.cli", "journey", "mine", str(path), "--json"]
    _, command_wall, command_peak = run_child(command)
    print(
        f"  `cxops journey mine LOG --json` as a whole: {command_wall:.2f} s, peak memory "
        f"{command_peak / 1e6:,.0f} MB (Python's start and the imports included)"
    )

    edges, variants, naive = baseline(sample_path)
    check_against_ours(sample_path, edges, variants)
    scaled = naive / share
    print(
        f"baseline, pure Python (csv + dicts: DFG with performance, variants) on {share:.0%} of "
        f"the cases: {naive:.2f} s, scaled to the log {scaled:.1f} s; "
        f"ratio {scaled / phases['total']:.1f}x (the same DFG, performance included, and variants)"
    )
    print(PM4PY_REFERENCE)
    for leftover in (path, sample_path):
        leftover.unlink()
    workdir.rmdir()


if __name__ == "__main__":
    main()
