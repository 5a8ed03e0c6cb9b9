"""Journey simulation speed: simulated events per second on the example support journey
(examples/journey-model.json: five stages, fixed, exponential and lognormal service, patience,
loops back), counting every stage arrival, service start, service completion and hang-up.
Goal: at least 300,000 events per second.

The baseline, measured in the same run on the same model, is the textbook way to write it: every
event (arrivals and service starts included) an object on the heap, the next arrival scheduled
by the previous one, and one numpy call per random draw. Both must agree on the journey's mean
time, so the ratio compares two simulations of the same thing.

Last, the agreement with Erlang C: an M/M/4 queue at 80% for a million customers.

    uv run python bench/simulation.py
"""

import heapq
import json
import math
import statistics
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cxops.journey.domain.simulation.engine import (
    EXPONENTIAL,
    LOGNORMAL,
    Plan,
    compile_plan,
    run_replication,
)
from cxops.journey.formats.simulation import load_model
from cxops.routing.domain.staffing import erlang_c

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "journey-model.json"
GOAL = 300_000


@dataclass(order=True)
class Event:
    time: float
    order: int
    kind: str = field(compare=False)
    stage: int = field(compare=False)
    customer: "Customer" = field(compare=False)
    visit: int = field(compare=False, default=0)


@dataclass
class Customer:
    born: float
    visits: int = 0
    waiting: bool = False


def textbook(plan: Plan, *, hours: float, seed: int) -> tuple[int, list[float]]:
    """The baseline: events processed and the journey times of customers who completed."""
    rng = np.random.default_rng(seed)
    rate = plan.hourly_rates[0] / 3600
    heap: list[Event] = []
    order = 0
    free = list(plan.servers)
    queues: list[deque[Customer]] = [deque() for _ in plan.names]
    events = 0
    journeys: list[float] = []

    def schedule(when: float, kind: str, stage: int, customer: Customer) -> None:
        nonlocal order
        order += 1
        heapq.heappush(heap, Event(when, order, kind, stage, customer, customer.visits))

    def service_time(stage: int) -> float:
        if plan.service_kind[stage] == EXPONENTIAL:
            return float(rng.exponential(plan.service_scale[stage]))
        if plan.service_kind[stage] == LOGNORMAL:
            return float(rng.lognormal(plan.service_scale[stage], plan.service_sigma[stage]))
        return plan.service_scale[stage]

    def choose(cumulative: tuple[float, ...], targets: tuple[int, ...]) -> int:
        draw = float(rng.random())
        return next(t for c, t in zip(cumulative, targets, strict=True) if draw < c)

    schedule(float(rng.exponential(1 / rate)), "arrival", -1, Customer(0.0))
    while heap:
        event = heapq.heappop(heap)
        now, stage, customer = event.time, event.stage, event.customer
        events += event.kind != "arrival"
        if event.kind == "arrival":
            if now < hours * 3600:
                schedule(now + float(rng.exponential(1 / rate)), "arrival", -1, Customer(0.0))
                customer.born = now
                schedule(now, "join", choose(plan.entry_cumulative, plan.entry_targets), customer)
        elif event.kind == "join":
            customer.visits += 1
            if free[stage]:
                free[stage] -= 1
                schedule(now, "start", stage, customer)
            else:
                customer.waiting = True
                queues[stage].append(customer)
                if plan.patience_seconds[stage]:
                    patience = float(rng.exponential(plan.patience_seconds[stage]))
                    schedule(now + patience, "hang-up", stage, customer)
        elif event.kind == "start":
            schedule(now + service_time(stage), "complete", stage, customer)
        elif event.kind == "complete":
            while queues[stage] and not queues[stage][0].waiting:
                queues[stage].popleft()
            if queues[stage]:
                waiting = queues[stage].popleft()
                waiting.waiting = False
                schedule(now, "start", stage, waiting)
            else:
                free[stage] += 1
            following = choose(plan.route_cumulative[stage], plan.route_targets[stage])
            if following < 0:
                journeys.append(now - customer.born)
            else:
                schedule(now, "join", following, customer)
        elif customer.waiting and event.visit == customer.visits:  # still waiting: hangs up
            customer.waiting = False
        else:
            events -= 1  # served before their patience ran out: nothing happened
    return events, journeys


def main() -> None:
    model = load_model(json.loads(EXAMPLE.read_text()))
    plan = compile_plan(model)
    hours = 1000.0
    runs = []
    for replication in range(3):
        started = time.perf_counter()
        result = run_replication(
            plan,
            load=1.0,
            warmup_seconds=0,
            measured_seconds=hours * 3600,
            seed=1,
            replication=replication,
        )
        runs.append((result.events / (time.perf_counter() - started), result))
    ours, result = sorted(runs, key=lambda pair: pair[0])[1]
    ours_mean = statistics.fmean(result.journey_seconds)

    baseline_hours = hours
    started = time.perf_counter()
    events, journeys = textbook(plan, hours=baseline_hours, seed=1)
    naive = events / (time.perf_counter() - started)
    naive_mean = statistics.fmean(journeys)

    print(
        f"example journey, {len(plan.names)} stages, {model.hourly_rates[0]:g} arrivals/h "
        "(events: stage arrivals + service starts + completions + hang-ups)"
    )
    print(
        f"  event loop, batched draws : {ours:>11,.0f} events/s   goal >= {GOAL:,}"
        f"   ({result.events:,} events, {hours:g} h, median of 3)"
    )
    print(
        f"  textbook loop, per-draw   : {naive:>11,.0f} events/s   ratio {ours / naive:5.1f}x"
        f"   ({events:,} events, {baseline_hours:g} h)"
    )
    print(
        f"  mean time in journey: {ours_mean:.1f} s against {naive_mean:.1f} s in the baseline "
        f"({ours_mean / naive_mean - 1:+.1%}; different draws; runs this long vary by about 2%)"
    )

    servers, per_hour, mean = 4, 48.0, 240.0
    check = compile_plan(
        load_model(
            {
                "arrivals_per_hour": per_hour,
                "entry": "desk",
                "stages": [
                    {
                        "name": "desk",
                        "servers": servers,
                        "service": {"distribution": "exponential", "mean_seconds": mean},
                    }
                ],
            }
        )
    )
    long_hours = 1_000_000 / per_hour
    waits = (
        run_replication(
            check,
            load=1.0,
            warmup_seconds=10 * 3600,
            measured_seconds=long_hours * 3600,
            seed=1,
            replication=0,
        )
        .stages[0]
        .served_waits
    )
    traffic = per_hour * mean / 3600
    expected = erlang_c(servers, traffic) * mean / (servers - traffic)
    simulated = math.fsum(waits) / len(waits)
    print(
        f"M/M/{servers} at {traffic / servers:.0%}, {len(waits):,} customers: mean wait "
        f"{simulated:.2f} s, Erlang C {expected:.2f} s ({simulated / expected - 1:+.2%})"
    )


if __name__ == "__main__":
    main()
