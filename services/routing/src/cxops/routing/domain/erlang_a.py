"""Erlang A (M/M/n+M): staffing when customers hang up after an exponentially distributed
patience. Unlike Erlang C it stays meaningful when agents are too few: the queue is held in check
by abandonment instead of growing without bound.

The stationary distribution is computed in log space (no overflow for thousands of agents) and
truncated where the tail no longer matters. A customer's fate after arriving is followed on the
chain of "customers ahead of me": each step ahead happens at rate ``n·μ + m·θ`` (a service or one
of the ``m`` ahead abandoning), and the customer leaves at rate ``θ``; the probability of being
answered within ``t`` comes from that chain by uniformization.

The work grows with the agents, the queue positions that matter and the uniformization's steps,
and can be very large (an overloaded queue with patient customers has millions of positions): a
caller that must answer in bounded time gives ``max_steps`` and gets :class:`TooMuchWork`
before the expensive part runs. The figures do not depend on it.
"""

import math
from dataclasses import dataclass

from cxops.routing.domain.staffing import Demand, Staffing, Target, staff_for
from cxops.routing.domain.staffing import required as erlang_c_required

#: Tail mass below which the stationary distribution is truncated.
TAIL_EPSILON = 1e-15
#: Poisson mass ignored in the uniformization sum.
POISSON_EPSILON = 1e-14


class TooMuchWork(ValueError):
    """The calculation would take more than ``allowed`` steps (``steps`` is a lower bound)."""

    def __init__(self, steps: int, allowed: int) -> None:
        self.steps = steps
        self.allowed = allowed
        super().__init__(
            f"Erlang A at this size takes at least {steps:,} steps, more than the {allowed:,} "
            "allowed (one step per agent, per queue position, and per queue position at each "
            "step of the answer-time calculation)"
        )


@dataclass(frozen=True, slots=True)
class AbandonmentStaffing(Staffing):
    """Erlang C's figures, plus the share of contacts that hang up before an answer."""

    abandon_probability: float


def evaluate(
    demand: Demand,
    agents: int,
    *,
    patience_seconds: float,
    answer_seconds: float,
    shrinkage: float = 0.0,
    max_steps: int | None = None,
) -> AbandonmentStaffing:
    """The figures of ``agents`` agents for ``demand`` when customers wait ``patience_seconds``
    on average. Service level is the share of all offered contacts answered within
    ``answer_seconds``; the speed of answer is the mean wait of answered contacts.

    With ``max_steps``, a calculation that would take more steps raises :class:`TooMuchWork`
    before its expensive part (a step is a fraction of a microsecond to about one)."""
    return _evaluate(
        demand,
        agents,
        patience_seconds=patience_seconds,
        answer_seconds=answer_seconds,
        shrinkage=shrinkage,
        max_steps=max_steps,
    )[0]


def _evaluate(
    demand: Demand,
    agents: int,
    *,
    patience_seconds: float,
    answer_seconds: float,
    shrinkage: float,
    max_steps: int | None,
) -> tuple[AbandonmentStaffing, int]:
    """:func:`evaluate`, and the steps it took."""
    if agents < 1:
        raise ValueError("agents must be at least 1")
    if patience_seconds <= 0:
        raise ValueError("patience_seconds must be positive")
    traffic = demand.traffic_erlangs
    if traffic == 0:
        return AbandonmentStaffing(0.0, agents, staff_for(agents, shrinkage), 0, 1, 0, 0, 0), 1
    arrival = demand.volume / demand.interval_seconds
    service = 1 / demand.aht_seconds
    patience = 1 / patience_seconds
    full_service = service * agents
    if max_steps is not None:
        # The queue is followed at least to its mode, where arrivals and departures balance:
        # refuse at once what is too large even so.
        fewest = _steps(
            agents,
            max(1.0, (arrival - full_service) / patience),
            full_service,
            patience,
            answer_seconds,
        )
        if fewest > max_steps:
            raise TooMuchWork(_whole(fewest), max_steps)
    below, queue = _distribution(
        agents,
        traffic,
        arrival,
        full_service,
        patience,
        max_positions=None if max_steps is None else max_steps - agents,
    )
    steps = _whole(_steps(agents, len(queue), full_service, patience, answer_seconds))
    if max_steps is not None and steps > max_steps:
        raise TooMuchWork(steps, max_steps)

    # For a customer who finds k waiting ahead: P(answered), E[wait · answered], P(answered ≤ t).
    answered = [0.0] * len(queue)
    answered_wait = [0.0] * len(queue)
    for k in range(len(queue)):
        step = service * agents + k * patience  # leaves position k (to k-1, or into service)
        leave = step + patience
        before = answered[k - 1] if k else 1.0
        answered[k] = step / leave * before
        answered_wait[k] = answered[k] / leave + (step / leave * answered_wait[k - 1] if k else 0.0)
    within = _answered_within(len(queue), service * agents, patience, answer_seconds)

    wait_probability = sum(queue)
    served = below + sum(p * a for p, a in zip(queue, answered, strict=True))
    wait_of_served = sum(p * w for p, w in zip(queue, answered_wait, strict=True))
    result = AbandonmentStaffing(
        traffic_erlangs=traffic,
        agents=agents,
        staff=staff_for(agents, shrinkage),
        wait_probability=wait_probability,
        service_level=below + sum(p * u for p, u in zip(queue, within, strict=True)),
        asa_seconds=wait_of_served / served if served > 0 else math.inf,
        occupancy=min(1.0, traffic * served / agents),
        abandon_probability=max(0.0, 1 - served),
    )
    return result, steps


def _distribution(
    agents: int,
    traffic: float,
    arrival: float,
    full_service: float,
    patience: float,
    *,
    max_positions: int | None = None,
) -> tuple[float, list[float]]:
    """P(fewer than ``agents`` in system), and P(``agents`` + k in system) for k = 0, 1, …;
    :class:`TooMuchWork` past ``max_positions`` queue positions."""
    logs_below = [j * math.log(traffic) - math.lgamma(j + 1) for j in range(agents)]
    log_at_n = agents * math.log(traffic) - math.lgamma(agents + 1)
    logs_queue = [log_at_n]
    peak = log_at_n
    k = 0
    while True:
        k += 1
        step = math.log(arrival / (full_service + k * patience))
        logs_queue.append(logs_queue[-1] + step)
        peak = max(peak, logs_queue[-1])
        # Past the mode the terms fall faster and faster: stop once negligible.
        if step < 0 and logs_queue[-1] - peak < math.log(TAIL_EPSILON):
            break
        if max_positions is not None and k > max_positions:
            raise TooMuchWork(agents + k, agents + max_positions)
        if k > 5_000_000:
            raise ValueError("the queue tail does not converge; check the patience")
    top = max(max(logs_below, default=-math.inf), max(logs_queue))
    total = sum(math.exp(x - top) for x in logs_below) + sum(math.exp(x - top) for x in logs_queue)
    below = sum(math.exp(x - top) for x in logs_below) / total
    return below, [math.exp(x - top) / total for x in logs_queue]


def _steps(
    agents: int, positions: float, full_service: float, patience: float, seconds: float
) -> float:
    """At most how many steps :func:`evaluate` takes with ``positions`` queue positions: one
    per agent and per position, and one per position at each step of :func:`_answered_within`
    (its loop's stopping rule). A float: it may be astronomically large."""
    per_position = 2.0
    if seconds > 0:
        mean = (full_service + positions * patience + patience) * seconds
        per_position += mean + 12 * math.sqrt(mean) + 31
    return agents + positions * per_position


def _whole(steps: float) -> int:
    return math.ceil(min(steps, 1e18))


def _answered_within(
    positions: int, full_service: float, patience: float, seconds: float
) -> list[float]:
    """For each number of customers ahead, the probability of being answered within
    ``seconds`` (uniformization of the customer's own absorbing chain)."""
    if seconds == 0:
        return [0.0] * positions
    rate = full_service + positions * patience + patience
    mean = rate * seconds
    # h[m]: probability of having reached "answered" after i uniformized steps from m ahead.
    reached = [0.0] * positions
    total = [0.0] * positions
    log_weight = -mean  # Poisson(i; mean) in logs, so a large mean does not underflow to zero
    covered = 0.0
    i = 0
    while True:
        weight = math.exp(log_weight)
        covered += weight
        for m in range(positions):
            total[m] += weight * reached[m]
        # Stop when the Poisson mass left is negligible; rounding in the running sum can keep
        # ``covered`` a hair below 1, so 12 standard deviations past the mean end it for sure.
        if i > mean and (1 - covered < POISSON_EPSILON or i > mean + 12 * math.sqrt(mean) + 30):
            break
        nxt = [0.0] * positions
        for m in range(positions):
            move = full_service + m * patience
            stay = 1 - (move + patience) / rate
            nxt[m] = move / rate * (reached[m - 1] if m else 1.0) + stay * reached[m]
        reached = nxt
        i += 1
        log_weight += math.log(mean) - math.log(i)
    return total


def required(
    demand: Demand, target: Target, *, patience_seconds: float, max_steps: int | None = None
) -> AbandonmentStaffing:
    """The fewest agents meeting the target with abandonment; never more than Erlang C needs
    (customers who hang up relieve the queue), so a bisection below that bound suffices.
    ``max_steps`` bounds the steps of all the evaluations together."""
    ceiling = erlang_c_required(demand, target).agents
    spent = 0

    def figures(agents: int) -> AbandonmentStaffing:
        nonlocal spent
        try:
            result, steps = _evaluate(
                demand,
                agents,
                patience_seconds=patience_seconds,
                answer_seconds=target.answer_seconds,
                shrinkage=target.shrinkage,
                max_steps=None if max_steps is None else max_steps - spent,
            )
        except TooMuchWork as exc:
            assert max_steps is not None
            raise TooMuchWork(spent + exc.steps, max_steps) from None
        spent += steps
        return result

    def meets(result: AbandonmentStaffing) -> bool:
        return (
            result.service_level >= target.service_level
            and result.occupancy <= target.max_occupancy + 1e-12
        )

    low, high = 1, max(ceiling, 1)
    while low < high:
        middle = (low + high) // 2
        if meets(figures(middle)):
            high = middle
        else:
            low = middle + 1
    return figures(low)
