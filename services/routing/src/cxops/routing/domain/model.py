"""The nouns of routing: agents, tasks, channels, tiers, statuses and reservations.

Plain values only. An :class:`Agent` is mutable because the engine owns its load and presence;
a :class:`Task` is frozen, and the engine replaces it (``dataclasses.replace``) when escalation
or a supervisor changes its priority, requirements or channel.

Status, defined once:

* ``OFFLINE`` / ``AWAY``: set by the agent, a supervisor or the engine (too many offers let time
  out). No offers are made.
* ``AVAILABLE``: online and no load on any channel.
* ``BUSY``: online and at least one unit of some channel's capacity in use (a pending offer
  holds its unit as an accepted task does). A busy agent still receives offers on any channel
  where ``load < capacity``; ``BUSY`` says "working", not "full".
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

MIN_PROFICIENCY = 1
MAX_PROFICIENCY = 5

#: A task's effective requirements, as sorted ``(skill, minimum proficiency)`` pairs: the key of
#: the waiting-task index, so two tasks needing the same thing share one priority heap.
Signature = tuple[tuple[str, int], ...]

AttributeValue = str | int | float | bool


class AgentStatus(StrEnum):
    AVAILABLE = "available"
    BUSY = "busy"
    AWAY = "away"
    OFFLINE = "offline"


class Presence(StrEnum):
    """What the agent (or the engine) has declared; the status adds the load on top."""

    READY = "ready"
    AWAY = "away"
    OFFLINE = "offline"


class ReservationState(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    TIMEOUT = "timeout"
    CANCELED = "canceled"
    RESCINDED = "rescinded"


class TaskState(StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"
    ASSIGNED = "assigned"
    CANCELED = "canceled"
    FINISHED = "finished"


def check_proficiencies(owner: str, skills: Mapping[str, int]) -> None:
    for skill, level in skills.items():
        if not MIN_PROFICIENCY <= level <= MAX_PROFICIENCY:
            raise ValueError(
                f"{owner}: proficiency of {skill!r} is {level}, "
                f"outside {MIN_PROFICIENCY}-{MAX_PROFICIENCY}"
            )


@dataclass(frozen=True, slots=True)
class Tier:
    """A customer tier: ``weight`` orders tasks of equal priority (higher first);
    ``target_answer_seconds`` is the answer-time goal the figures are measured against."""

    name: str
    weight: int
    target_answer_seconds: float


DEFAULT_TIERS: Mapping[str, Tier] = {
    "standard": Tier("standard", 0, 60.0),
    "gold": Tier("gold", 10, 30.0),
    "platinum": Tier("platinum", 20, 15.0),
}


@dataclass(frozen=True, slots=True)
class Task:
    """A unit of work waiting for an agent.

    ``requires`` must always hold (subject to relaxation lowering the minimum); ``optional``
    skills are required too until a relaxation step with ``drop_optional`` lets them go.
    ``arrival`` is in the same clock as the engine's ``now`` (seconds). ``queue`` names the
    line of work the task is in, for figures and for escalation rules that move it.
    """

    id: str
    channel: str
    arrival: float
    requires: Mapping[str, int] = field(default_factory=dict)
    optional: Mapping[str, int] = field(default_factory=dict)
    priority: int = 0
    tier: str = "standard"
    queue: str = "default"
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_proficiencies(f"task {self.id}", self.requires)
        check_proficiencies(f"task {self.id}", self.optional)
        if self.arrival < 0:
            raise ValueError(f"task {self.id}: arrival {self.arrival} is negative")


@dataclass(slots=True)
class Agent:
    """An agent and the engine's view of their work.

    ``capacity`` is per channel (voice 1, chat 3, ...); ``load`` counts pending offers and
    accepted tasks per channel. ``last_finished_at`` orders agents of equal proficiency: the one
    idle longest goes first.
    """

    id: str
    skills: dict[str, int]
    capacity: dict[str, int]
    presence: Presence = Presence.OFFLINE
    last_finished_at: float = 0.0
    load: dict[str, int] = field(default_factory=dict)
    consecutive_timeouts: int = 0

    def __post_init__(self) -> None:
        check_proficiencies(f"agent {self.id}", self.skills)
        for channel, units in self.capacity.items():
            if units < 0:
                raise ValueError(f"agent {self.id}: capacity of {channel!r} is negative")

    @property
    def status(self) -> AgentStatus:
        if self.presence is Presence.OFFLINE:
            return AgentStatus.OFFLINE
        if self.presence is Presence.AWAY:
            return AgentStatus.AWAY
        if any(self.load.values()):
            return AgentStatus.BUSY
        return AgentStatus.AVAILABLE

    def spare(self, channel: str) -> int:
        return self.capacity.get(channel, 0) - self.load.get(channel, 0)

    def satisfies(self, signature: Signature) -> bool:
        skills = self.skills
        return all(skills.get(skill, 0) >= minimum for skill, minimum in signature)


@dataclass(slots=True)
class Reservation:
    """An offer of a task to an agent; it holds one unit of the agent's channel capacity until
    it is accepted (then the task holds it) or ends otherwise.

    Two reservations are not offers: ``Engine.restore_assignment`` makes one already accepted
    (offered, expiring and ended at the restore), and an accepted reservation whose agent is
    removed before the task finished becomes ``rescinded`` (ended then), so a task has at most
    one accepted reservation however often it is requeued."""

    id: int
    task_id: str
    agent_id: str
    channel: str
    offered_at: float
    expires_at: float
    state: ReservationState = ReservationState.PENDING
    ended_at: float | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """One thing the engine decided or observed, in order: the hook point for the service
    (persist, publish) and for replay figures. ``kind`` is one of ``queued``, ``offered``,
    ``accepted``, ``rejected``, ``timeout``, ``canceled``, ``rescinded``, ``relaxed``,
    ``requeued``, ``updated``, ``escalated``, ``supervisor_alert``, ``finished``, ``agent_away``,
    ``proficiency``, ``restored``.

    ``restored``: the engine took back a stored task while being rebuilt, not a new decision.
    With no agent (``Engine.restore_task``) the task is waiting again (``detail`` is
    ``waiting: `` and its effective requirements), in place of ``queued``, and an ``offered``
    may follow; with an agent and a reservation (``Engine.restore_assignment``) the agent is
    handling it again (``detail`` is ``assigned``).

    ``requeued``: a task back in the queue. After a pending offer ended the event names only the
    task (``detail``: how the offer ended); when ``Engine.remove_agent`` hands back a task the
    agent had accepted it names the agent and the accepted reservation, now rescinded
    (``detail``: ``agent removed``)."""

    kind: str
    at: float
    task_id: str | None = None
    agent_id: str | None = None
    reservation_id: int | None = None
    detail: str = ""
