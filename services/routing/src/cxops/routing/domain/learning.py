"""Proficiency learning: outcomes nudge an agent's proficiency in the skills a task needed,
slowly and within bounds, and every change is recorded.

Each outcome becomes one signal in -1..1, the weighted mean of what is known about it:

* handle time against the queue's median of recent outcomes (``(median - handle) / median``,
  clipped: twice as slow as usual is -1, instant is +1; skipped until the queue has a median);
* first-contact resolution (+1 resolved, -1 not);
* the customer's CSAT 1..5 (``(csat - 3) / 2``).

Per (agent, skill) an *estimate* starts at the current level and moves by ``rate * signal``.
The level changes by one only after ``min_outcomes`` outcomes on that skill and when the
estimate passes the half-way mark to the next level by ``hysteresis`` (so a level does not
flicker), and never further than ``max_drift`` from its *baseline* (the level the agent was
registered with, or a supervisor's value) nor outside 1..5; the estimate is held within reach
of those bounds so a long good run cannot bank credit. A supervisor's manual value wins: it
resets the baseline and pins the skill, which learning then leaves alone until released.
"""

import statistics
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from cxops.routing.domain.model import MAX_PROFICIENCY, MIN_PROFICIENCY, check_proficiencies


@dataclass(frozen=True, slots=True)
class LearningPolicy:
    rate: float = 0.05
    min_outcomes: int = 20
    hysteresis: float = 0.25
    max_drift: int = 1
    #: Recent handle times kept per queue for its median; fewer than ``min_median_samples``
    #: and handle time is left out of the signal.
    median_window: int = 200
    min_median_samples: int = 10
    handle_weight: float = 0.4
    resolution_weight: float = 0.3
    csat_weight: float = 0.3

    def __post_init__(self) -> None:
        if not 0 < self.rate <= 1:
            raise ValueError(f"learning rate {self.rate} is outside (0, 1]")
        if self.max_drift < 0 or self.min_outcomes < 0 or self.hysteresis < 0:
            raise ValueError("learning bounds must not be negative")


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one finished task went, for the agent who handled it."""

    agent_id: str
    queue: str
    skills: tuple[str, ...]
    handle_seconds: float
    at: float
    resolved_first_contact: bool | None = None
    csat: int | None = None

    def __post_init__(self) -> None:
        if self.handle_seconds < 0:
            raise ValueError(f"outcome of {self.agent_id}: negative handle time")
        if self.csat is not None and not 1 <= self.csat <= 5:
            raise ValueError(f"outcome of {self.agent_id}: CSAT {self.csat} is outside 1-5")


@dataclass(frozen=True, slots=True)
class ProficiencyChange:
    agent_id: str
    skill: str
    old: int
    new: int
    at: float
    reason: str


@dataclass(slots=True)
class _Skill:
    level: int
    baseline: int
    estimate: float
    outcomes: int = 0
    pinned: bool = False


class ProficiencyLearner:
    """The learning state of one tenant's agents; the engine applies the changes it returns."""

    def __init__(self, policy: LearningPolicy | None = None) -> None:
        self.policy = policy or LearningPolicy()
        self._skills: dict[tuple[str, str], _Skill] = {}
        self._handle_times: dict[str, deque[float]] = {}

    def track(self, agent_id: str, skills: Mapping[str, int]) -> None:
        """Start learning an agent's skills from their current levels (the baselines)."""
        check_proficiencies(f"agent {agent_id}", skills)
        for skill, level in skills.items():
            self._skills[(agent_id, skill)] = _Skill(level, level, float(level))

    def level(self, agent_id: str, skill: str) -> int:
        return self._skills[(agent_id, skill)].level

    def set_manual(self, agent_id: str, skill: str, level: int, at: float) -> ProficiencyChange:
        """A supervisor's value: it becomes the level and the baseline, and learning stops
        touching this skill until :meth:`release`."""
        check_proficiencies(f"agent {agent_id}", {skill: level})
        state = self._skills.get((agent_id, skill))
        old = state.level if state else 0
        self._skills[(agent_id, skill)] = _Skill(level, level, float(level), pinned=True)
        return ProficiencyChange(agent_id, skill, old, level, at, "set by a supervisor")

    def release(self, agent_id: str, skill: str) -> None:
        """Let learning resume from the supervisor's value."""
        self._skills[(agent_id, skill)].pinned = False

    def observe(self, outcome: Outcome) -> list[ProficiencyChange]:
        """Learn from one outcome; returns the level changes it caused (usually none)."""
        signal = self._signal(outcome)
        times = self._handle_times.setdefault(
            outcome.queue, deque(maxlen=self.policy.median_window)
        )
        times.append(outcome.handle_seconds)
        if signal is None:
            return []
        return self._apply(outcome.agent_id, outcome.skills, signal, outcome.at)

    def observe_csat(
        self, agent_id: str, skills: tuple[str, ...], csat: int, at: float
    ) -> list[ProficiencyChange]:
        """Learn from a CSAT that came after its outcome was learned from (the survey answered
        later): the CSAT part of the signal alone, counted as an outcome of its own."""
        if not 1 <= csat <= 5:
            raise ValueError(f"CSAT of {agent_id}: {csat} is outside 1-5")
        return self._apply(agent_id, skills, (csat - 3) / 2, at)

    def _apply(
        self, agent_id: str, skills: tuple[str, ...], signal: float, at: float
    ) -> list[ProficiencyChange]:
        changes = []
        for skill in sorted(set(skills)):
            state = self._skills.get((agent_id, skill))
            if state is None or state.pinned:
                continue
            change = self._learn(state, signal)
            if change is not None:
                old, new = change
                reason = (
                    f"learned from {state.outcomes} outcomes: estimate {state.estimate:.2f}, "
                    f"baseline {state.baseline}"
                )
                changes.append(ProficiencyChange(agent_id, skill, old, new, at, reason))
        return changes

    def _signal(self, outcome: Outcome) -> float | None:
        policy = self.policy
        parts: list[tuple[float, float]] = []
        times = self._handle_times.get(outcome.queue)
        if times is not None and len(times) >= policy.min_median_samples:
            median = statistics.median(times)
            if median > 0:
                relative = (median - outcome.handle_seconds) / median
                parts.append((policy.handle_weight, max(-1.0, min(1.0, relative))))
        if outcome.resolved_first_contact is not None:
            parts.append(
                (policy.resolution_weight, 1.0 if outcome.resolved_first_contact else -1.0)
            )
        if outcome.csat is not None:
            parts.append((policy.csat_weight, (outcome.csat - 3) / 2))
        weight = sum(w for w, _ in parts)
        if weight <= 0:
            return None
        return sum(w * value for w, value in parts) / weight

    def _learn(self, state: _Skill, signal: float) -> tuple[int, int] | None:
        policy = self.policy
        lowest = max(MIN_PROFICIENCY, state.baseline - policy.max_drift)
        highest = min(MAX_PROFICIENCY, state.baseline + policy.max_drift)
        reach = 0.5 + policy.hysteresis
        state.outcomes += 1
        state.estimate = min(
            highest + reach, max(lowest - reach, state.estimate + policy.rate * signal)
        )
        if state.outcomes < policy.min_outcomes:
            return None
        old = state.level
        if state.estimate >= old + reach and old < highest:
            state.level = old + 1
        elif state.estimate <= old - reach and old > lowest:
            state.level = old - 1
        else:
            return None
        return old, state.level
