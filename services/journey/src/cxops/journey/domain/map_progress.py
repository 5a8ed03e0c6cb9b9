"""Where a customer is in a journey map, one interaction at a time, and what each step means:
a stage completed, handoff SLAs to start, handoff SLAs the step settles.

An interaction's stage is the one whose activities include its activity, else the stage its
``stage`` field names, if the map has one; an interaction with neither moves nothing. A
customer's first placed interaction puts them in its stage. Moving to a later stage completes
the stage left; moving back to an earlier one (a loop) only changes where they are. Entering a
stage starts each handoff SLA from it (due ``sla_seconds`` after the interaction that entered
it) unless that SLA is already running; reaching a handoff's target stage, or any stage after it,
settles it: in time if that happened by the deadline, late otherwise. An interaction that
occurred before the latest one already counted (delivered late) moves nothing. A customer in a
stage the map's current version no longer has starts afresh, as if first seen.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from cxops.journey.domain.journey_map import JourneyMap


@dataclass(frozen=True)
class Position:
    """The stage a customer is in, when they entered it, and the latest interaction counted."""

    stage: str
    entered_at: datetime
    last_at: datetime


@dataclass(frozen=True)
class Completion:
    stage: str
    next_stage: str
    entered_at: datetime
    completed_at: datetime
    owner_team: str | None

    @property
    def seconds(self) -> float:
        return (self.completed_at - self.entered_at).total_seconds()


@dataclass(frozen=True)
class Deadline:
    """A handoff SLA running: the customer entered ``from_stage`` at ``entered_at`` and should
    reach ``to_stage`` by ``due_at``."""

    from_stage: str
    to_stage: str
    entered_at: datetime
    due_at: datetime
    sla_seconds: float
    owner_team: str | None


@dataclass(frozen=True)
class Step:
    """What one interaction does: the new position, the stage it completes (if any), the
    deadlines it starts, and the running handoffs (by target stage) it settles."""

    position: Position
    completed: Completion | None = None
    started: tuple[Deadline, ...] = ()
    settles: frozenset[str] = frozenset()


def stage_of(journey_map: JourneyMap, *, activity: str, stage: str | None) -> str | None:
    """The map's stage of an interaction (see the module's documentation), or ``None``."""
    claimed = journey_map.stage_of().get(activity)
    if claimed is not None:
        return claimed
    if stage is not None and stage in journey_map.position():
        return stage
    return None


def advance(
    journey_map: JourneyMap,
    current: Position | None,
    *,
    stage: str,
    at: datetime,
    running: frozenset[tuple[str, str]] = frozenset(),
) -> Step | None:
    """The step an interaction in ``stage`` at ``at`` makes from ``current`` (``None``: the
    customer's first in this map), given the handoffs already ``running`` as (from, to) pairs;
    ``None`` for an interaction older than the latest one counted."""
    if current is not None and at < current.last_at:
        return None
    if current is not None and current.stage == stage:
        return Step(position=Position(stage, current.entered_at, at))
    position = journey_map.position()
    if current is not None and current.stage not in position:
        current = None
    completed = None
    if current is not None and position[stage] > position[current.stage]:
        completed = Completion(
            stage=current.stage,
            next_stage=stage,
            entered_at=current.entered_at,
            completed_at=at,
            owner_team=journey_map.stage(current.stage).owner_team,
        )
    owner = journey_map.stage(stage).owner_team
    started = []
    for sla in journey_map.handoffs:
        if sla.from_stage != stage or (sla.from_stage, sla.to_stage) in running:
            continue
        try:
            due = at + timedelta(seconds=sla.sla_seconds)
        except OverflowError:  # past the end of the calendar: it never falls due
            continue
        started.append(
            Deadline(sla.from_stage, sla.to_stage, at, due, sla.sla_seconds, owner_team=owner)
        )
    settles = frozenset(
        target for _source, target in running if position.get(target, -1) <= position[stage]
    )
    return Step(
        position=Position(stage, at, at),
        completed=completed,
        started=tuple(started),
        settles=settles,
    )
