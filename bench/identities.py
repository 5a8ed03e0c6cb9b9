"""Identity resolution speed: a million events from 300,000 customers (emails on the web, phones
on calls, CRM ids on cases, a few shared inboxes and placeholder numbers), resolved in a shuffled
order, against a baseline in the same run: plain union-find over the rows in file order, with no
normalisation, blocking, caps or records (order-dependent, and it joins through shared inboxes).
Goals: the same resolution for any row order; a million events in under 20 s with the cycle
collector paused, as ``cxops journey identities`` runs it.

    uv run python bench/identities.py
"""

import gc
import random
import time
from datetime import UTC, datetime, timedelta

from cxops.journey.domain.identity import Event, Rules, resolve

CUSTOMERS = 300_000
EVENTS = 1_000_000
START = datetime(2024, 1, 1, tzinfo=UTC)


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


def main() -> None:
    events = event_log()
    shuffled = events[:]
    random.Random(11).shuffle(shuffled)

    started = time.perf_counter()
    baseline_profiles = naive(events)
    baseline = time.perf_counter() - started

    started = time.perf_counter()
    result = resolve(shuffled, Rules())
    ours = time.perf_counter() - started

    gc.disable()
    started = time.perf_counter()
    again = resolve(events, Rules())
    paused = time.perf_counter() - started
    gc.enable()
    assert again == result, "row order changed the resolution"
    print(
        f"{EVENTS:,} events, {CUSTOMERS:,} customers: {len(result.profiles):,} profiles, "
        f"{len(result.merges):,} merges, {len(result.refusals):,} refused by caps, "
        f"{len(result.blocked):,} values blocked, {len(result.unresolved_events):,} unresolved"
    )
    print(f"baseline (row-order union-find, no rules): {baseline:.2f} s, {baseline_profiles:,}")
    print(f"resolve (order-independent, blocking, caps, records): {ours:.2f} s")
    print(f"resolve with the cycle collector paused, as the command runs it: {paused:.2f} s")
    print(f"ratio: {paused / baseline:.1f}x the baseline; goal under 20 s: {paused < 20}")


if __name__ == "__main__":
    main()
