"""Identity resolution speed: a million events from 300,000 customers (emails on the web, phones
on calls, CRM ids on cases, a few shared inboxes and placeholder numbers), against a baseline in
the same run: plain union-find over the raw values in row order, with no normalisation,
blocking, caps or records (order-dependent, and it joins through shared inboxes).

- ``command``: ``cxops journey identities EVENTS.csv --json`` end to end in a process of its
  own, on the log written as a CSV file (shuffled rows): reading, resolving and writing the JSON
  to a file; its wall time, CPU time and peak memory (RSS). Goal: at most 5 s and 1 GB.
- ``resolve``: the domain call on the events in memory, in shuffled and in sorted order (the
  same resolution for any row order).
- ``small``: ``resolve`` on the few to few thousand events the journey service resolves at a
  time (10, 100 and 5,000 interactions of the intake bench), the median of repeated calls.

    uv run python bench/identities.py [command] [resolve] [small]
"""

import csv
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from journey_intake import interactions

from cxops.journey.domain.identity import Event, Resolution, Rules, resolve

CUSTOMERS = 300_000
EVENTS = 1_000_000
START = datetime(2024, 1, 1, tzinfo=UTC)
#: The CSV's identifier columns: a shared inbox, an event's second email, has a column of its own.
COLUMNS = ("email", "inbox", "phone", "crm_id")
GOAL_SECONDS = 5.0
GOAL_BYTES = 1_000_000_000
SMALL_CALLS = ((10, 2000), (100, 300), (5000, 10))


def event_log(seed: int = 7) -> list[Event]:
    """Customers with one or two emails, a phone and a CRM id; each event carries what its
    channel sees; one event in 200 comes through a shared inbox, one in 500 a placeholder phone."""
    rng = random.Random(seed)
    events = []
    for number in range(EVENTS):
        customer = rng.randrange(CUSTOMERS)
        email = f"c{customer}.{rng.randrange(2) if customer % 5 == 0 else 0}@mail.test-cx.com"
        phone = f"+44 7{customer:09d}"
        crm = f"CRM-{customer:07d}"
        channel = rng.random()
        if channel < 0.4:
            identifiers: tuple[tuple[str, str], ...] = (("email", email),)
        elif channel < 0.7:
            identifiers = (("phone", phone), ("email", email))
        else:
            identifiers = (("phone", phone), ("crm_id", crm))
        if number % 200 == 0:
            identifiers += (("email", f"support@{rng.choice(['acme', 'shop'])}.com"),)
        if number % 500 == 0:
            identifiers = (("phone", "0000000000"), ("email", email))
        when = START + timedelta(seconds=rng.randrange(90 * 86_400))
        events.append(Event(f"e{number}", identifiers, when))
    return events


def naive(events: list[Event]) -> int:
    """Union-find over raw values in row order: the profiles it finds."""
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def find(key: tuple[str, str]) -> tuple[str, str]:
        while parent.setdefault(key, key) != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for event in events:
        first, *others = event.identifiers
        for other in others:
            parent[find(other)] = find(first)
    return len({find(key) for key in parent})


def write_csv(events: list[Event], path: Path) -> None:
    """One row per event; an event's second email (a shared inbox) goes in the inbox column."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("event_id", "timestamp", *COLUMNS))
        for event in events:
            cells: dict[str, str] = {}
            for kind, raw in event.identifiers:
                cells["inbox" if kind == "email" and "email" in cells else kind] = raw
            stamp = event.timestamp.isoformat().replace("+00:00", "Z") if event.timestamp else ""
            writer.writerow((event.event_id, stamp, *(cells.get(name, "") for name in COLUMNS)))


#: Runs the command and prints its status, CPU seconds and peak RSS (KB): the command is a child
#: of this small process, since Linux counts in a child's peak the image it was forked with
#: (this bench's million events) until it executes the command.
_MEASURE = """
import os, subprocess, sys
with open(sys.argv[1], "wb") as output:
    process = subprocess.Popen(sys.argv[2:], stdout=output)
    _, status, usage = os.wait4(process.pid, 0)
print(status, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)
"""


def run_command(events_csv: Path, output: Path) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and peak RSS bytes of the command, in a process of its own (on
    a busy machine the CPU time says more than the wall time)."""
    command = [
        str(Path(sys.executable).with_name("cxops")),
        "journey",
        "identities",
        str(events_csv),
        *(f"--identifier={name}" for name in COLUMNS if name != "inbox"),
        "--identifier=inbox=email",
        "--json",
    ]
    started = time.perf_counter()
    measured = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(output), *command],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - started
    status, cpu, peak = measured.stdout.split()
    if status != "0":
        raise SystemExit(f"the command failed: {command}")
    return seconds, float(cpu), int(peak) * 1024


def totals(result: Resolution) -> dict[str, int]:
    return {
        "events": result.events,
        "profiles": len(result.profiles),
        "merges": len(result.merges),
        "refused_by_cap": len(result.refusals),
        "blocked_values": len(result.blocked),
        "unresolved_events": len(result.unresolved_events),
    }


def measure_command(shuffled: list[Event], baseline: float) -> dict[str, int]:
    """The command's figures; its totals."""
    with tempfile.TemporaryDirectory() as directory:
        events_csv, output = Path(directory) / "events.csv", Path(directory) / "out.json"
        write_csv(shuffled, events_csv)
        seconds, cpu, peak = run_command(events_csv, output)
        size = output.stat().st_size
        found = json.loads(output.read_bytes())["totals"]
    print(
        f"command, {EVENTS:,} rows of CSV to {size / 1e6:.0f} MB of JSON: {seconds:.2f} s "
        f"({cpu:.2f} s of CPU), peak {peak / 1e9:.2f} GB; {seconds / baseline:.1f}x the "
        f"baseline; goal at most {GOAL_SECONDS:.0f} s and {GOAL_BYTES / 1e9:.0f} GB: "
        f"{seconds <= GOAL_SECONDS and peak <= GOAL_BYTES}"
    )
    return dict(found)


def measure_resolve(events: list[Event], shuffled: list[Event], baseline: float) -> Resolution:
    gc.disable()
    started = time.perf_counter()
    result = resolve(shuffled, Rules())
    ours = time.perf_counter() - started
    again = resolve(events, Rules())
    gc.enable()
    assert again == result, "row order changed the resolution"
    print(
        f"resolve in memory: {len(result.profiles):,} profiles, {len(result.merges):,} merges, "
        f"{len(result.refusals):,} refused by caps, {len(result.blocked):,} values blocked, "
        f"{len(result.unresolved_events):,} unresolved; {ours:.2f} s with the cycle collector "
        f"paused ({ours / baseline:.1f}x the baseline), the same for sorted rows"
    )
    return result


def measure_small_calls() -> None:
    """What the journey service pays per batch it resolves."""
    for count, repeats in SMALL_CALLS:
        events = []
        for item in interactions(count, max(1, count // 3)):
            identifiers = item["identifiers"]
            assert isinstance(identifiers, dict)
            when = datetime.fromisoformat(str(item["occurred_at"]))
            events.append(Event(str(item["external_id"]), tuple(identifiers.items()), when))
        rounds = []
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(repeats):
                resolve(events, Rules())
            rounds.append((time.perf_counter() - started) / repeats)
        print(f"resolve on {count:,} events: {statistics.median(rounds) * 1e3:.2f} ms (median)")


def main() -> None:
    modes = sys.argv[1:] or ["command", "resolve", "small"]
    events = event_log()
    shuffled = events[:]
    random.Random(11).shuffle(shuffled)
    started = time.perf_counter()
    baseline_profiles = naive(events)
    baseline = time.perf_counter() - started
    print(f"baseline (row-order union-find, no rules): {baseline:.2f} s, {baseline_profiles:,}")
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    found = measure_command(shuffled, baseline) if "command" in modes else None
    if "resolve" in modes:
        expected = totals(measure_resolve(events, shuffled, baseline))
        if found is not None:
            same = {key: found[key] for key in expected} == expected
            assert same, "the command and the domain call disagree"
    del events, shuffled
    if "small" in modes:
        measure_small_calls()


if __name__ == "__main__":
    main()
