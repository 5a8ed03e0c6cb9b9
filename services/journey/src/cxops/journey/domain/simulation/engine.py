"""One replication of a journey: a discrete-event loop over a heap of timed events.

The loop is hand-written rather than SimPy processes: no generator per customer and no
framework between events, and the whole queueing discipline (FIFO per stage, customers who hang
up while waiting) fits in one function. Only completions, hang-ups and the two edges of the
measured window go through the heap; arrivals come from a pre-drawn sorted list, and a
customer's next stage is entered at the instant the previous one completes.
bench/simulation.py measures it against a textbook loop.

Common random numbers. Everything random about a customer is drawn before it arrives and keyed
by the customer's number and visit: arrival times come from one stream, and each block of
customers has a stream per kind of draw (entry, service, route, patience), laid out visit by
visit, so customer ``i``'s draws for visit ``v`` are the same whatever else differs. Two variants
run with the same seed therefore see the same customers, with the same needs and the same
patience, taking the same paths wherever the routing is the same; only the queues they meet
differ. Load multipliers keep this too: arrival times come from one unit-rate Poisson process
mapped through the (scaled) cumulative arrival rate, so a heavier load is the same customers
arriving sooner.
"""

import itertools
import math
from bisect import bisect_right
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from heapq import heappop, heappush
from itertools import accumulate
from typing import Any

import numpy as np

from cxops.journey.domain.simulation.model import (
    EXIT,
    ExponentialService,
    JourneyModel,
    LognormalService,
)

EXPONENTIAL, LOGNORMAL, FIXED = 0, 1, 2
#: Customers whose arrival times and visit draws are made in one numpy call.
CUSTOMERS_PER_BLOCK = 1024
#: Draw slots reserved per customer: at least this many visits, or twice the expected number.
MIN_VISIT_SLOTS = 8
_COMPLETION, _HANG_UP, _WINDOW_EDGE = 0, 1, 2
_LEAVE = -1


@dataclass(frozen=True, slots=True)
class Plan:
    """A validated model compiled to indexes and numbers, so the loop looks nothing up by name.

    ``service_scale`` is the mean for exponential and fixed stages and the log-scale location
    ``mu`` for lognormal ones; ``patience_seconds`` is 0 for customers who never hang up.
    """

    names: tuple[str, ...]
    servers: tuple[int, ...]
    service_kind: tuple[int, ...]
    service_scale: tuple[float, ...]
    service_sigma: tuple[float, ...]
    patience_seconds: tuple[float, ...]
    route_cumulative: tuple[tuple[float, ...], ...]
    route_targets: tuple[tuple[int, ...], ...]
    entry_cumulative: tuple[float, ...]
    entry_targets: tuple[int, ...]
    hourly_rates: tuple[float, ...]
    expected_visits: tuple[float, ...]
    visit_slots: int


def compile_plan(model: JourneyModel) -> Plan:
    names = tuple(model.stage_names())
    index = {name: i for i, name in enumerate(names)} | {EXIT: _LEAVE}
    kinds, scales, sigmas = [], [], []
    for stage in model.stages:
        service = stage.service
        if isinstance(service, LognormalService):
            sigma = service.log_sigma
            kinds.append(LOGNORMAL)
            scales.append(math.log(service.mean_seconds) - sigma**2 / 2)
            sigmas.append(sigma)
        else:
            kinds.append(EXPONENTIAL if isinstance(service, ExponentialService) else FIXED)
            scales.append(service.mean_seconds)
            sigmas.append(0.0)
    routes = [_cumulative(stage.routes, index) for stage in model.stages]
    entry = _cumulative(model.entry_probabilities, index)
    visits = _expected_visits(model, index)
    return Plan(
        names=names,
        servers=tuple(stage.servers for stage in model.stages),
        service_kind=tuple(kinds),
        service_scale=tuple(scales),
        service_sigma=tuple(sigmas),
        patience_seconds=tuple(stage.patience_seconds or 0.0 for stage in model.stages),
        route_cumulative=tuple(cumulative for cumulative, _ in routes),
        route_targets=tuple(targets for _, targets in routes),
        entry_cumulative=entry[0],
        entry_targets=entry[1],
        hourly_rates=tuple(model.hourly_rates),
        expected_visits=visits,
        visit_slots=max(MIN_VISIT_SLOTS, math.ceil(2 * sum(visits))),
    )


def _cumulative(
    probabilities: dict[str, float], index: dict[str, int]
) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """Cumulative probabilities for ``bisect``; the last is exactly 1 so a draw in [0, 1)
    always lands somewhere despite rounding."""
    chosen = [(target, p) for target, p in probabilities.items() if p > 0]
    cumulative = list(accumulate(p for _, p in chosen))
    cumulative[-1] = 1.0
    return tuple(cumulative), tuple(index[target] for target, _ in chosen)


def _expected_visits(model: JourneyModel, index: dict[str, int]) -> tuple[float, ...]:
    """Visits per customer to each stage: ``entry · (I - P)⁻¹``, finite because validation
    guarantees every stage a way out."""
    size = len(model.stages)
    transitions = np.zeros((size, size))
    for i, stage in enumerate(model.stages):
        for target, p in stage.routes.items():
            if target != EXIT:
                transitions[i, index[target]] += p
    entry = np.zeros(size)
    for target, p in model.entry_probabilities.items():
        entry[index[target]] = p
    visits = np.linalg.solve((np.eye(size) - transitions).T, entry)
    return tuple(float(v) for v in visits)


@dataclass(slots=True)
class StageTally:
    """One stage in one replication. Waits, hang-ups and arrivals count the measured customers
    (those who arrived after the warm-up), followed to the end of their journey; busy and queue
    time and completions are integrated over the measured window only."""

    served_waits: list[float]
    abandoned: int
    abandoned_wait_seconds: float
    busy_server_seconds: float
    queue_customer_seconds: float
    completions: int


@dataclass(slots=True)
class Replication:
    stages: list[StageTally]
    journey_seconds: list[float]
    journeys_abandoned: int
    measured_seconds: float
    events: int


_ARRIVALS, _CUSTOMERS, _SPILL = 0, 1, 2


def stream(seed: int, replication: int, *key: int) -> np.random.Generator:
    """An independent stream named by ``key`` within a replication. Derived from the seed, not
    spawned in sequence, so that a variant or another load gets exactly the same streams."""
    sequence = np.random.SeedSequence(seed, spawn_key=(replication, *key))
    return np.random.Generator(np.random.PCG64(sequence))


def run_replication(
    plan: Plan,
    *,
    load: float,
    warmup_seconds: float,
    measured_seconds: float,
    seed: int,
    replication: int,
) -> Replication:
    """Simulate arrivals for ``warmup_seconds + measured_seconds``, then let the journey drain
    so that every measured customer is followed to the exit or a hang-up."""
    spill_rng = stream(seed, replication, _SPILL)
    end_seconds = warmup_seconds + measured_seconds
    blocks = _customer_blocks(plan, load, end_seconds, seed, replication)
    slots, block_size = plan.visit_slots, CUSTOMERS_PER_BLOCK
    servers = plan.servers
    kinds, scales, sigmas = plan.service_kind, plan.service_scale, plan.service_sigma
    patience = plan.patience_seconds
    route_cumulative, route_targets = plan.route_cumulative, plan.route_targets
    entry_cumulative, entry_targets = plan.entry_cumulative, plan.entry_targets
    exp = math.exp

    size = len(plan.names)
    free = list(servers)
    waiting = [0] * size
    queues: list[deque[list[Any]]] = [deque() for _ in range(size)]
    changed_at = [0.0] * size
    busy_area = [0.0] * size
    queue_area = [0.0] * size
    completed = [0] * size
    waits: list[list[float]] = [[] for _ in range(size)]
    abandoned = [0] * size
    abandoned_wait = [0.0] * size
    journey_seconds: list[float] = []
    journeys_abandoned = visits = hang_ups = 0
    window: list[tuple[list[float], list[float], list[int]]] = []
    heap: list[tuple[float, int, int, Any]] = [
        (warmup_seconds, 0, _WINDOW_EDGE, None),
        (end_seconds, 1, _WINDOW_EDGE, None),
    ]
    sequence = 2
    # A customer is a tuple (arrival time, position in its block, its block's draws, measured?);
    # a visit's record is a list [customer, visit number, stage, service seconds, next stage,
    # time joined, still waiting?]. The flag is cleared when the customer is served or hangs
    # up, so whichever of its queue place and its hang-up comes up later is skipped.

    def arrive(now: float, stage: int, customer: tuple[Any, ...], visit: int) -> None:
        """``customer`` joins ``stage`` on its ``visit``-th visit: straight to a free server,
        or to the back of the queue (with a hang-up scheduled if it has a patience)."""
        nonlocal sequence
        kind = kinds[stage]
        if visit < slots:
            at = visit * block_size + customer[1]
            draws = customer[2]
            service_draw = draws[1 if kind == LOGNORMAL else 0][at]
            route_draw, patience_draw = draws[2][at], draws[3][at]
        else:
            service_draw, route_draw, patience_draw = _spilled_draws(spill_rng, kind)
        if kind == EXPONENTIAL:
            service = scales[stage] * service_draw
        elif kind == LOGNORMAL:
            service = exp(scales[stage] + sigmas[stage] * service_draw)
        else:
            service = scales[stage]
        following = route_targets[stage][bisect_right(route_cumulative[stage], route_draw)]
        record = [customer, visit, stage, service, following, now, True]
        elapsed = now - changed_at[stage]
        busy_area[stage] += (servers[stage] - free[stage]) * elapsed
        queue_area[stage] += waiting[stage] * elapsed
        changed_at[stage] = now
        sequence += 1
        if free[stage]:
            free[stage] -= 1
            record[6] = False
            if customer[3]:
                waits[stage].append(0.0)
            heappush(heap, (now + service, sequence, _COMPLETION, record))
        else:
            waiting[stage] += 1
            queues[stage].append(record)
            if patience[stage]:
                heappush(heap, (now + patience[stage] * patience_draw, sequence, _HANG_UP, record))

    times, entry_draws, draws = next(blocks)
    position = 0
    next_arrival = times[0] if times else math.inf
    while True:
        if heap and heap[0][0] <= next_arrival:
            now, _, kind, record = heappop(heap)
            if kind == _COMPLETION:
                customer, visit, stage, _, following = record[:5]
                elapsed = now - changed_at[stage]
                busy_area[stage] += (servers[stage] - free[stage]) * elapsed
                queue_area[stage] += waiting[stage] * elapsed
                changed_at[stage] = now
                completed[stage] += 1
                queue = queues[stage]
                while queue:
                    taken = queue.popleft()
                    if taken[6]:
                        taken[6] = False
                        waiting[stage] -= 1
                        if taken[0][3]:
                            waits[stage].append(now - taken[5])
                        sequence += 1
                        heappush(heap, (now + taken[3], sequence, _COMPLETION, taken))
                        break
                else:
                    free[stage] += 1
                if following == _LEAVE:
                    visits += visit + 1
                    if customer[3]:
                        journey_seconds.append(now - customer[0])
                else:
                    arrive(now, following, customer, visit + 1)
            elif kind == _HANG_UP:
                if record[6]:
                    record[6] = False
                    customer, visit, stage = record[:3]
                    elapsed = now - changed_at[stage]
                    busy_area[stage] += (servers[stage] - free[stage]) * elapsed
                    queue_area[stage] += waiting[stage] * elapsed
                    changed_at[stage] = now
                    waiting[stage] -= 1
                    visits += visit + 1
                    hang_ups += 1
                    if customer[3]:
                        abandoned[stage] += 1
                        abandoned_wait[stage] += now - record[5]
                        journeys_abandoned += 1
            else:
                for stage in range(size):
                    elapsed = now - changed_at[stage]
                    busy_area[stage] += (servers[stage] - free[stage]) * elapsed
                    queue_area[stage] += waiting[stage] * elapsed
                    changed_at[stage] = now
                window.append((busy_area[:], queue_area[:], completed[:]))
        elif next_arrival < math.inf:
            customer = (next_arrival, position, draws, next_arrival >= warmup_seconds)
            stage = entry_targets[bisect_right(entry_cumulative, entry_draws[position])]
            arrive(next_arrival, stage, customer, 0)
            position += 1
            if position == len(times):
                times, entry_draws, draws = next(blocks, ([], [], draws))
                position = 0
            next_arrival = times[position] if times else math.inf
        else:
            break

    (busy_start, queue_start, done_start), (busy_end, queue_end, done_end) = window
    return Replication(
        stages=[
            StageTally(
                served_waits=waits[s],
                abandoned=abandoned[s],
                abandoned_wait_seconds=abandoned_wait[s],
                busy_server_seconds=busy_end[s] - busy_start[s],
                queue_customer_seconds=queue_end[s] - queue_start[s],
                completions=done_end[s] - done_start[s],
            )
            for s in range(size)
        ],
        journey_seconds=journey_seconds,
        journeys_abandoned=journeys_abandoned,
        measured_seconds=measured_seconds,
        events=3 * visits - hang_ups,
    )


Draws = tuple[list[float], list[float], list[float], list[float]]


def _spilled_draws(rng: np.random.Generator, kind: int) -> tuple[float, float, float]:
    """Service, route and patience draws for a visit beyond the customer's slots."""
    service = rng.standard_normal() if kind == LOGNORMAL else rng.standard_exponential()
    return float(service), float(rng.random()), float(rng.standard_exponential())


def _customer_blocks(
    plan: Plan, load: float, end_seconds: float, seed: int, replication: int
) -> Iterator[tuple[list[float], list[float], Draws]]:
    """Blocks of customers: arrival times before ``end_seconds``, entry draws, and per visit
    slot an exponential and a normal service draw, a route draw and an exponential patience,
    visit-major (slot ``v`` of the customer at position ``p`` is at ``v * block size + p``).

    Arrivals are a unit-rate Poisson process mapped through the inverse of the cumulative
    arrival rate (piecewise linear over the hours), which handles an hourly profile exactly.
    """
    hours = math.ceil(end_seconds / 3600) + 1
    rates = np.resize(np.asarray(plan.hourly_rates, dtype=float) * load, hours)
    hour_edges = np.arange(hours + 1) * 3600.0
    work_edges = np.concatenate(([0.0], np.cumsum(rates)))
    arrivals = stream(seed, replication, _ARRIVALS)
    work = 0.0
    size = CUSTOMERS_PER_BLOCK
    shape = (plan.visit_slots, size)
    for block in itertools.count():
        points = work + np.cumsum(arrivals.standard_exponential(size))
        work = float(points[-1])
        times = np.interp(points, work_edges, hour_edges)
        entry, service, spread, route, patience = (
            stream(seed, replication, _CUSTOMERS, block, kind) for kind in range(5)
        )
        draws = (
            service.standard_exponential(shape).ravel().tolist(),
            spread.standard_normal(shape).ravel().tolist(),
            route.random(shape).ravel().tolist(),
            patience.standard_exponential(shape).ravel().tolist(),
        )
        entries = entry.random(size).tolist()
        if times[-1] >= end_seconds:
            yield times[times < end_seconds].tolist(), entries, draws
            return
        yield times.tolist(), entries, draws
