"""The designed journey a log is compared with: stages in their expected order, the activities
that belong to each, and how long each handoff between two stages may take; and, for the people
who run it, who owns each stage (its team and RACI) and where the customer meets it
(touchpoints and channels)."""

from dataclasses import dataclass

#: The stage of events whose activity no stage of the map claims.
UNMAPPED = "(unmapped)"


@dataclass(frozen=True)
class Raci:
    """Who is responsible for a stage's work, who answers for it, who is consulted and who is
    kept informed."""

    responsible: tuple[str, ...] = ()
    accountable: str | None = None
    consulted: tuple[str, ...] = ()
    informed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Stage:
    """One stage; an optional stage may be skipped without the case leaving the design.
    ``owner_team`` answers for the stage's deviations and for handoffs that leave it late."""

    name: str
    activities: tuple[str, ...]
    optional: bool = False
    owner_team: str | None = None
    raci: Raci | None = None
    touchpoints: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()


@dataclass(frozen=True)
class HandoffSla:
    """A case that leaves ``from_stage`` for ``to_stage`` should reach it within the SLA,
    counted from its last event in the one to its first event in the other."""

    from_stage: str
    to_stage: str
    sla_seconds: float


@dataclass(frozen=True)
class JourneyMap:
    """Stages in the designed order. Stage names are distinct, an activity belongs to at most
    one stage, and each SLA names two stages, the first before the second (the map file's
    loader checks this)."""

    stages: tuple[Stage, ...]
    handoffs: tuple[HandoffSla, ...] = ()

    def stage_of(self) -> dict[str, str]:
        """Each mapped activity's stage."""
        return {activity: stage.name for stage in self.stages for activity in stage.activities}

    def position(self) -> dict[str, int]:
        """Each stage's place in the designed order, from 0."""
        return {stage.name: index for index, stage in enumerate(self.stages)}

    def stage(self, name: str) -> Stage:
        """The stage called ``name`` (``KeyError`` if there is none)."""
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)
