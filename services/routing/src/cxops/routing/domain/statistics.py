"""A queue's figures over a window of time, from its tasks and their offers.

Definitions (the ones a supervisor's wallboard uses):

* **entered**: tasks created in the window; **answered**: of those, accepted by an agent;
  **abandoned**, **timed out**, **canceled**: ended unanswered, by the customer, by the task's
  time to live, or by the platform.
* **service level**: of the tasks that stopped waiting (answered, abandoned or timed out),
  the share answered within the queue's ``answer_within_seconds``. Canceled tasks are left out
  (the platform withdrew them), and so are tasks still waiting.
* **speed of answer**: the wait of answered tasks, mean and 90th percentile (nearest rank).
* **occupancy** per agent: handle time of the tasks they completed in the window over the
  window's length (capped at 1).
"""

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TaskFigures:
    """What the figures need of one task."""

    state: str
    wait_seconds: float | None
    agent_id: str | None
    handle_seconds: float | None


def percentile(values: list[float], share: float) -> float | None:
    """The nearest-rank percentile: the smallest value with at least ``share`` of the values
    at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def queue_figures(
    tasks: Iterable[TaskFigures],
    reservations: Mapping[str, int],
    *,
    answer_within_seconds: float,
    target: float,
    window_seconds: float,
) -> dict[str, object]:
    states: Counter[str] = Counter()
    waits: list[float] = []
    within = 0
    handled: dict[str, float] = {}
    for task in tasks:
        states[task.state] += 1
        if task.state in ("assigned", "wrapping", "completed") and task.wait_seconds is not None:
            waits.append(task.wait_seconds)
            within += task.wait_seconds <= answer_within_seconds
            if task.agent_id is not None and task.handle_seconds is not None:
                handled[task.agent_id] = handled.get(task.agent_id, 0.0) + task.handle_seconds
    answered = len(waits)
    stopped = answered + states["abandoned"] + states["timed_out"]
    service_level = within / stopped if stopped else None
    return {
        "entered": sum(states.values()),
        "answered": answered,
        "abandoned": states["abandoned"],
        "timed_out": states["timed_out"],
        "canceled": states["canceled"],
        "waiting": states["pending"] + states["reserved"],
        "service_level": service_level,
        "service_level_target": target,
        "meets_target": None if service_level is None else service_level >= target,
        "answer_within_seconds": answer_within_seconds,
        "average_speed_of_answer_seconds": sum(waits) / answered if answered else None,
        "p90_speed_of_answer_seconds": percentile(waits, 0.9),
        "reservations": {
            "accepted": reservations.get("accepted", 0),
            "rejected": reservations.get("rejected", 0),
            "timed_out": reservations.get("timeout", 0),
            "rescinded": reservations.get("rescinded", 0),
        },
        "occupancy": {
            agent: min(1.0, seconds / window_seconds) if window_seconds > 0 else None
            for agent, seconds in sorted(handled.items())
        },
    }
