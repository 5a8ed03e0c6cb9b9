"""Erlang C staffing: how many agents a queue needs to answer a share of contacts within a
target time, and what a given number of agents achieves.

Computed through the Erlang B recurrence, which stays within floating point for any traffic
(thousands of erlangs) where the textbook formula's ``A**N / N!`` overflows.
"""

import math
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
    """The fewest agents that meet the service level and keep occupancy within its maximum."""
    traffic = demand.traffic_erlangs
    if traffic == 0:
        return evaluate(demand, 0, answer_seconds=target.answer_seconds, shrinkage=target.shrinkage)
    agents = max(math.floor(traffic) + 1, math.ceil(traffic / target.max_occupancy - 1e-9))
    while True:
        figures = evaluate(
            demand, agents, answer_seconds=target.answer_seconds, shrinkage=target.shrinkage
        )
        if figures.service_level >= target.service_level:
            return figures
        agents += 1
