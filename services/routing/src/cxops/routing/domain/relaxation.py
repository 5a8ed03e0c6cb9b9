"""Bullseye relaxation: a task's requirements widen in steps as it waits.

Steps are data, e.g.::

    [RelaxationStep(after_seconds=30, lower_by=1),
     RelaxationStep(after_seconds=90, drop_optional=True),
     RelaxationStep(after_seconds=180, overflow={"general": 1})]

They are cumulative: at a wait of 100 s the task above accepts proficiency one lower *and* no
longer needs its optional skills. ``overflow`` replaces the requirement set (the task may now be
answered by the overflow queue's agents); the lowering of earlier steps does not apply to it.
Minimums never fall below 1: relaxation widens who may answer, it never drops a required skill.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cxops.routing.domain.model import MIN_PROFICIENCY, Signature, Task


@dataclass(frozen=True, slots=True)
class RelaxationStep:
    after_seconds: float
    lower_by: int = 0
    drop_optional: bool = False
    overflow: Mapping[str, int] | None = None

    def __post_init__(self) -> None:
        if self.after_seconds < 0:
            raise ValueError(f"relaxation step after {self.after_seconds}s: negative wait")
        if self.lower_by < 0:
            raise ValueError(f"relaxation step after {self.after_seconds}s: lower_by < 0")


class Relaxation:
    """An ordered list of steps; level ``n`` means the first ``n`` steps apply."""

    __slots__ = ("_afters", "steps")

    def __init__(self, steps: Sequence[RelaxationStep] = ()) -> None:
        self.steps = tuple(sorted(steps, key=lambda step: step.after_seconds))
        self._afters = [step.after_seconds for step in self.steps]

    def level_at(self, task: Task, at: float) -> int:
        """How many steps apply to ``task`` at clock time ``at``. Compared as ``arrival + after
        <= at``, the same sum :meth:`next_due` schedules, so float rounding cannot disagree."""
        arrival = task.arrival
        return sum(1 for after in self._afters if arrival + after <= at)

    def next_due(self, task: Task, level: int) -> float | None:
        """The clock time at which the task reaches its next level, or ``None`` at the last."""
        if level >= len(self.steps):
            return None
        return task.arrival + self.steps[level].after_seconds

    def signature(self, task: Task, level: int) -> Signature:
        """The task's effective requirements at ``level``."""
        lower = 0
        drop_optional = False
        overflow: Mapping[str, int] | None = None
        for step in self.steps[:level]:
            lower += step.lower_by
            drop_optional = drop_optional or step.drop_optional
            if step.overflow is not None:
                overflow = step.overflow
        if overflow is not None:
            return tuple(sorted(overflow.items()))
        needs: dict[str, int] = {}
        sources = (task.requires,) if drop_optional else (task.optional, task.requires)
        for source in sources:
            for skill, minimum in source.items():
                needs[skill] = max(needs.get(skill, 0), max(MIN_PROFICIENCY, minimum - lower))
        return tuple(sorted(needs.items()))
