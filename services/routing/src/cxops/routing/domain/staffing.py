"""Erlang C staffing: how many agents a queue needs to answer a share of contacts within a
target time, and what a given number of agents achieves.

Computed through the Erlang B recurrence, which stays within floating point for any traffic
(thousands of erlangs) where the textbook formula's ``A**N / N!`` overflows.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Demand:
    """The work of one interval: contacts offered, their mean handle time, the interval length."""

    volume: float
    aht_seconds: float
    interval_seconds: float

    def __post_init__(self) -> None:
        if self.volume < 0:
            raise ValueError("volume must not be negative")
        if self.aht_seconds <= 0:
            raise ValueError("aht_seconds must be positive")
        if self.interval_seconds <= 0:
            raise ValueError("interval_seconds must be positive")

    @property
    def traffic_erlangs(self) -> float:
        return self.volume * self.aht_seconds / self.interval_seconds


@dataclass(frozen=True, slots=True)
class Target:
    """The service goal: ``service_level`` of contacts answered within ``answer_seconds``, agents
    busy at most ``max_occupancy`` of the time, and ``shrinkage`` of paid time off the phones."""

    answer_seconds: float
    service_level: float
    shrinkage: float = 0.0
    max_occupancy: float = 1.0

    def __post_init__(self) -> None:
        if self.answer_seconds < 0:
            raise ValueError("answer_seconds must not be negative")
        if not 0 < self.service_level < 1:
            raise ValueError("service_level must be between 0 and 1, exclusive")
        if not 0 <= self.shrinkage < 1:
            raise ValueError("shrinkage must be at least 0 and below 1")
        if not 0 < self.max_occupancy <= 1:
            raise ValueError("max_occupancy must be above 0 and at most 1")


@dataclass(frozen=True, slots=True)
class Staffing:
    traffic_erlangs: float
    agents: int
    staff: int
    wait_probability: float
    service_level: float
    asa_seconds: float
    occupancy: float


def erlang_b(agents: int, traffic: float) -> float:
    """Blocking probability of ``agents`` servers offered ``traffic`` erlangs."""
    blocking = 1.0
    for servers in range(1, agents + 1):
        blocking = traffic * blocking / (servers + traffic * blocking)
    return blocking


def erlang_c(agents: int, traffic: float) -> float:
    """Probability that a contact waits; 1 when the agents cannot keep up (agents <= traffic)."""
    if traffic <= 0:
        return 0.0
    if agents <= traffic:
        return 1.0
    blocking = erlang_b(agents, traffic)
    return agents * blocking / (agents - traffic * (1 - blocking))


def evaluate(demand: Demand, agents: int, *, answer_seconds: float, shrinkage: float) -> Staffing:
    """What ``agents`` on the phones achieve for ``demand``."""
    if agents < 0:
        raise ValueError("agents must not be negative")
    traffic = demand.traffic_erlangs
    wait = erlang_c(agents, traffic)
    if agents > traffic:
        spare = agents - traffic
        service_level = 1 - wait * math.exp(-spare * answer_seconds / demand.aht_seconds)
        asa = wait * demand.aht_seconds / spare
        occupancy = traffic / agents
    else:
        service_level, asa = (0.0, math.inf) if traffic > 0 else (1.0, 0.0)
        occupancy = 1.0 if traffic > 0 else 0.0
    return Staffing(
        traffic_erlangs=traffic,
        agents=agents,
        staff=staff_for(agents, shrinkage),
        wait_probability=wait,
        service_level=service_level,
        asa_seconds=asa,
        occupancy=occupancy,
    )


def staff_for(agents: int, shrinkage: float) -> int:
    """Paid staff so that ``agents`` remain after shrinkage (breaks, training, absence)."""
    return math.ceil(agents / (1 - shrinkage) - 1e-9)


def required(demand: Demand, target: Target) -> Staffing:
    """The fewest agents that meet the service level and keep occupancy within its maximum.

    Erlang B is carried from one candidate to the next (one step of its recurrence each), so
    sizing costs O(agents) rather than O(agents²): a week of half-hours plans in milliseconds.
    """
    traffic = demand.traffic_erlangs
    if traffic == 0:
        return evaluate(demand, 0, answer_seconds=target.answer_seconds, shrinkage=target.shrinkage)
    agents = max(math.floor(traffic) + 1, math.ceil(traffic / target.max_occupancy - 1e-9))
    blocking = erlang_b(agents, traffic)
    while True:
        wait = agents * blocking / (agents - traffic * (1 - blocking))
        spare = agents - traffic
        level = 1 - wait * math.exp(-spare * target.answer_seconds / demand.aht_seconds)
        if level >= target.service_level:
            return Staffing(
                traffic_erlangs=traffic,
                agents=agents,
                staff=staff_for(agents, target.shrinkage),
                wait_probability=wait,
                service_level=level,
                asa_seconds=wait * demand.aht_seconds / spare,
                occupancy=traffic / agents,
            )
        agents += 1
        blocking = traffic * blocking / (agents + traffic * blocking)


@dataclass(frozen=True, slots=True)
class IntervalPlan:
    start: str
    volume: float
    aht_seconds: float
    staffing: Staffing


@dataclass(frozen=True, slots=True)
class PlanTotals:
    volume: float
    agent_hours: float
    staff_hours: float
    peak_agents: int
    peak_staff: int
    service_level: float
    asa_seconds: float


def plan(
    intervals: Sequence[tuple[str, float, float]], *, interval_seconds: float, target: Target
) -> tuple[list[IntervalPlan], PlanTotals]:
    """Size every interval of a forecast (``(start, volume, aht_seconds)`` rows) and add them up;
    service level and speed of answer are averaged over contacts, not over intervals."""
    rows = [
        IntervalPlan(start, volume, aht, required(Demand(volume, aht, interval_seconds), target))
        for start, volume, aht in intervals
    ]
    hours = interval_seconds / 3600
    volume = sum(row.volume for row in rows)

    def contact_weighted(value: Callable[[Staffing], float]) -> float:
        if volume == 0:
            return 0.0
        return sum(row.volume * value(row.staffing) for row in rows) / volume

    totals = PlanTotals(
        volume=volume,
        agent_hours=sum(row.staffing.agents for row in rows) * hours,
        staff_hours=sum(row.staffing.staff for row in rows) * hours,
        peak_agents=max((row.staffing.agents for row in rows), default=0),
        peak_staff=max((row.staffing.staff for row in rows), default=0),
        service_level=contact_weighted(lambda s: s.service_level),
        asa_seconds=contact_weighted(lambda s: s.asa_seconds),
    )
    return rows, totals
