"""The matcher: which agent gets which task, decided from indexes rather than scans.

Every operation takes the clock as ``now`` (seconds, never decreasing) and first applies what
fell due by then (offer timeouts, relaxation steps), then its own change, then settles: after
it returns no ready agent with spare capacity on a channel is eligible for a task waiting on
that channel (unless that agent already declined or let that task's offer lapse).

Policy:

* Tasks are ordered by priority (higher first), tier weight (higher first), arrival (earlier
  first), then arrival sequence in the engine: a total order, so replays are identical.
* Agents are ordered by the *sum* of their proficiencies on the task's effective required
  skills (a sum rewards strength across every skill the task needs; the minimum would make a
  5/5/1 agent equal to a 1/1/1 one), then by ``last_finished_at`` (idle longest first), then id.
* A task's effective requirements relax by the steps of its *current* queue
  (``Policy.relaxation_for``: the queue's own steps, else the policy's default), counted from its
  arrival: a task that escalation or a supervisor moves to another queue takes that queue's
  steps as if it had been there since it arrived. The policy may be replaced while the engine
  runs (``engine.policy = ...``); nothing derived from it is cached across operations.

Rebuilding after a restart: add the agents, :meth:`Engine.restore_assignment` each task an agent
was handling, then :meth:`Engine.restore_task` each live task in the order it arrived (with the
rules that fired for it and the agents who declined it). Offers in flight are not restored: their
tasks are restored as waiting and matched again. :meth:`Engine.remove_agent` is the way out: an
agent logging out for good hands back its offers and its unfinished tasks.

Indexes (so a decision touches buckets, not every agent or task):

* Ready agents with spare capacity sit in buckets per ``(channel, skill, proficiency)``, each a
  list sorted by ``(last_finished_at, id)`` plus a set of members. A one-skill task walks the
  levels from 5 down to its minimum and takes the first bucket head; a two- or three-skill task
  walks proficiency combinations by descending sum and intersects the members' sets (C-level
  set intersection); more skills fall back to scanning the smallest skill's buckets.
* Waiting tasks sit in priority heaps per ``(channel, signature)``, where the signature is the
  effective ``(skill, minimum)`` requirement, grouped per ``(channel, skill set)`` with the
  heaps' heads kept sorted. A freed agent visits only the skill sets that are subsets of its own
  skills (its subsets of the sizes that wait, or the channel's skill sets filtered, whichever is
  fewer); it passes a skill set whose first head is no better than its best so far, else walks
  the heads to the first whose signature it meets. A task leaving the queue (taken, canceled,
  or moved to another heap by relaxation or an update) is popped at once if it heads its heap,
  so heads are always live; deeper down its entry goes stale (entries carry a version) and is
  dropped when it surfaces.
"""

import heapq
import math
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from itertools import chain, combinations, product
from operator import itemgetter, le

from cxops.routing.domain.escalation import EscalationRule, Queue, check_rules
from cxops.routing.domain.model import (
    DEFAULT_TIERS,
    MAX_PROFICIENCY,
    Agent,
    Event,
    Presence,
    Reservation,
    ReservationState,
    Signature,
    Task,
    TaskState,
    Tier,
    check_proficiencies,
)
from cxops.routing.domain.relaxation import Relaxation

TaskKey = tuple[int, int, float, int]
AgentKey = tuple[float, str]
#: A waiting task in a heap: its key's four fields (flat, so comparing touches one tuple less),
#: the entry's version when pushed (stale once it moved on), the task id.
_HeapEntry = tuple[int, int, float, int, int, str]
#: A heap's head in its skill set's list: the head entry, the signature's minimums, the heap.
_Head = tuple[_HeapEntry, tuple[int, ...], "_Heap"]
_head_key = itemgetter(0)
#: Compares above every heap entry: the bound before any task is found, the head of nothing.
_NO_TASK: tuple[float, ...] = (math.inf,)
#: Above this many required skills the proficiency combinations (5**k) cost more than a scan.
_MAX_COMBINATION_SKILLS = 3


class RoutingError(ValueError):
    """An operation that does not fit the engine's state (unknown id, wrong reservation state)."""


@dataclass(frozen=True, slots=True)
class Policy:
    tiers: Mapping[str, Tier] = field(default_factory=lambda: dict(DEFAULT_TIERS))
    #: The relaxation steps of every queue that has none of its own.
    relaxation: Relaxation = field(default_factory=Relaxation)
    offer_timeout_seconds: float = 15.0
    #: An agent who lets this many offers in a row time out is set away.
    max_consecutive_timeouts: int = 3
    #: Named requirement sets that escalation rules may move tasks to.
    queues: Mapping[str, Queue] = field(default_factory=dict)
    escalation: tuple[EscalationRule, ...] = ()
    #: A queue's own relaxation steps, by queue name (any queue a task names, declared in
    #: ``queues`` or not).
    relaxation_by_queue: Mapping[str, Relaxation] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_rules(self.escalation, self.queues)

    def relaxation_for(self, queue: str) -> Relaxation:
        """The steps of a task in ``queue``: the queue's own, else :attr:`relaxation`."""
        return self.relaxation_by_queue.get(queue, self.relaxation)


@dataclass(slots=True)
class _Entry:
    task: Task
    seq: int
    key: TaskKey
    level: int
    signature: Signature
    state: TaskState = TaskState.WAITING
    version: int = 0
    excluded: set[str] = field(default_factory=set)
    reservation_id: int | None = None
    #: Names of the escalation rules that fired for this task (each fires once).
    fired: set[str] = field(default_factory=set)
    #: The heap the task waits in: ``signature`` may already have changed when it leaves.
    heap: "_Heap | None" = None
    #: When the task's relaxation is next checked: a wake-up for another moment is stale.
    relax_at: float | None = None


@dataclass(slots=True, eq=False)
class _Heap:
    """The waiting tasks of one channel with one signature, by key; the head is always live."""

    queue: "_SkillSetQueue"
    signature: Signature
    minimums: tuple[int, ...]
    items: list[_HeapEntry] = field(default_factory=list)
    #: Queued tasks that some agent declined: while 0 no agent needs to check its exclusion.
    declined: int = 0


@dataclass(slots=True, eq=False)
class _SkillSetQueue:
    """The heaps of one channel whose signatures name the same skills, with their heads sorted
    by key: a freed agent stops at the first head it qualifies for, and passes the whole skill
    set by one comparison when the first head is no better than what it already has."""

    channel: "_ChannelQueues"
    skills: tuple[str, ...]
    heads: list[_Head] = field(default_factory=list)
    #: ``heads[0]``'s entry, kept at hand: most skill sets an agent visits are passed on it, and
    #: each object less to reach is a cache miss less. Above every entry while there is none.
    first: tuple[object, ...] = _NO_TASK

    def move_head(self, heap: _Heap, old: _HeapEntry | None) -> None:
        """Re-place ``heap`` in ``heads`` after its head changed from ``old`` (``None``: the heap
        was empty). Live heads are distinct tasks, so bisecting finds the old one."""
        heads = self.heads
        if old is not None:
            del heads[bisect_left(heads, old, key=_head_key)]
        if heap.items:
            insort(heads, (heap.items[0], heap.minimums, heap), key=_head_key)
        self.first = heads[0][0] if heads else _NO_TASK


@dataclass(slots=True, eq=False)
class _ChannelQueues:
    """A channel's waiting tasks: a queue per skill set, every heap by signature (where a task
    is pushed), and how many skill sets there are of each size (a freed agent enumerates only
    its subsets of those sizes). Emptied heaps and queues are dropped at once."""

    queues: dict[tuple[str, ...], _SkillSetQueue] = field(default_factory=dict)
    heaps: dict[Signature, _Heap] = field(default_factory=dict)
    sizes: dict[int, int] = field(default_factory=dict)

    def add_heap(self, signature: Signature) -> _Heap:
        """A new, empty heap for ``signature``, in its skill set's queue (made if missing)."""
        skills = tuple(skill for skill, _ in signature)
        queue = self.queues.get(skills)
        if queue is None:
            queue = self.queues[skills] = _SkillSetQueue(self, skills)
            self.sizes[len(skills)] = self.sizes.get(len(skills), 0) + 1
        minimums = tuple(minimum for _, minimum in signature)
        heap = self.heaps[signature] = _Heap(queue, signature, minimums)
        return heap

    def drop(self, heap: _Heap) -> None:
        """Forget an emptied heap (already out of its queue's heads), and its queue with it if
        that was the queue's last."""
        del self.heaps[heap.signature]
        queue = heap.queue
        if not queue.heads:
            del self.queues[queue.skills]
            size = len(queue.skills)
            self.sizes[size] -= 1
            if not self.sizes[size]:
                del self.sizes[size]


@dataclass(slots=True)
class _Bucket:
    keys: list[AgentKey] = field(default_factory=list)
    members: set[str] = field(default_factory=set)

    def add(self, key: AgentKey) -> None:
        insort(self.keys, key)
        self.members.add(key[1])

    def remove(self, key: AgentKey) -> None:
        index = bisect_left(self.keys, key)
        del self.keys[index]
        self.members.discard(key[1])

    def first(self, excluded: set[str]) -> AgentKey | None:
        if not excluded:
            return self.keys[0] if self.keys else None
        for key in self.keys:
            if key[1] not in excluded:
                return key
        return None


class Engine:
    """The routing state of one tenant's contact centre, changed only through its operations.

    Operations return the offers (pending reservations) they made; every event also goes to
    ``on_event`` if given, in order, which is where persistence, publishing and replay figures
    attach.
    """

    def __init__(
        self,
        policy: Policy | None = None,
        *,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        self._policy = policy or Policy()
        self._on_event = on_event
        self._now = float("-inf")
        self._agents: dict[str, Agent] = {}
        self._agent_keys: dict[str, AgentKey] = {}
        self._indexed: dict[str, set[str]] = {}
        self._by_level: dict[tuple[str, str, int], _Bucket] = {}
        self._by_channel: dict[str, _Bucket] = {}
        self._tasks: dict[str, _Entry] = {}
        self._waiting: dict[str, _ChannelQueues] = {}
        self._waiting_count = 0
        self._seq = 0
        self._reservations: dict[int, Reservation] = {}
        self._pending_by_agent: dict[str, set[int]] = {}
        self._expiries: list[tuple[float, int]] = []
        self._relax_due: list[tuple[float, int, str]] = []
        self._escalation_due: list[tuple[float, int, str]] = []
        self._combos: dict[tuple[int, ...], list[list[tuple[int, ...]]]] = {}
        self._offers: list[Reservation] = []
        #: Tasks each agent accepted and has not finished (what :meth:`remove_agent` requeues).
        self._assigned_by_agent: dict[str, set[str]] = {}

    @property
    def policy(self) -> Policy:
        """The policy in force; assign a new one to replace it (a queue added or changed).

        Arrivals, offers and changes from then on follow it. A live task whose queue's
        relaxation steps changed keeps its level until a due check scheduled at once (run at
        the start of the next operation): there its level is recomputed from the new steps,
        from its arrival, and its next check is scheduled by them. If the escalation rules
        changed, every live task is checked against them at that moment and wakes up at the
        new rules' moments. Assigning costs a pass over every task the engine holds. A changed
        tier weight orders a task from its next arrival or change: tasks already waiting keep
        their place.
        """
        return self._policy

    @policy.setter
    def policy(self, policy: Policy) -> None:
        old, self._policy = self._policy, policy
        rules_changed = policy.escalation != old.escalation
        now = self._now
        for entry in self._tasks.values():
            if entry.state not in (TaskState.WAITING, TaskState.OFFERED):
                continue
            queue = entry.task.queue
            if policy.relaxation_for(queue).steps != old.relaxation_for(queue).steps:
                entry.relax_at = now
                heapq.heappush(self._relax_due, (now, entry.seq, entry.task.id))
            if rules_changed:
                heapq.heappush(self._escalation_due, (now, entry.seq, entry.task.id))
                self._schedule_escalation(entry)

    # ----------------------------------------------------------------- queries

    @property
    def now(self) -> float:
        return self._now

    @property
    def waiting_count(self) -> int:
        return self._waiting_count

    def agent(self, agent_id: str) -> Agent:
        return self._agents[agent_id]

    def agents(self) -> Iterator[Agent]:
        return iter(self._agents.values())

    @property
    def reservation_count(self) -> int:
        """Reservations are numbered 1..count in the order they were offered."""
        return len(self._reservations)

    def reservation(self, reservation_id: int) -> Reservation:
        return self._reservations[reservation_id]

    def task_state(self, task_id: str) -> TaskState:
        return self._tasks[task_id].state

    def task(self, task_id: str) -> Task:
        return self._tasks[task_id].task

    def task_key(self, task_id: str) -> TaskKey:
        """The task's place in the effective priority order (smaller goes first)."""
        return self._tasks[task_id].key

    def effective_signature(self, task_id: str) -> Signature:
        return self._tasks[task_id].signature

    def declined_by(self, task_id: str) -> frozenset[str]:
        """Agents who rejected or let lapse an offer of this task: never offered it again."""
        return frozenset(self._tasks[task_id].excluded)

    def fired_rules(self, task_id: str) -> frozenset[str]:
        """Escalation rules that fired for this task: never fired for it again."""
        return frozenset(self._tasks[task_id].fired)

    def next_due(self) -> float | None:
        """The earliest moment something may fall due (an offer times out, a task relaxes, a
        rule comes due), for a driver of simulated time to ``tick`` at; ``None`` if nothing is
        scheduled. It may be a moment at which nothing is left to do."""
        heads = [
            heap[0][0] for heap in (self._expiries, self._relax_due, self._escalation_due) if heap
        ]
        return min(heads) if heads else None

    def waiting_task_ids(self) -> list[str]:
        """Waiting tasks in effective priority order (a scan: for tests and figures)."""
        waiting = [e for e in self._tasks.values() if e.state is TaskState.WAITING]
        return [e.task.id for e in sorted(waiting, key=lambda e: e.key)]

    # -------------------------------------------------------------- operations

    def add_agent(self, agent: Agent, now: float) -> list[Reservation]:
        """Register an agent; a ``READY`` one immediately takes what it is eligible for."""
        self._advance(now)
        if agent.id in self._agents:
            raise RoutingError(f"agent {agent.id} already exists")
        self._agents[agent.id] = agent
        self._agent_keys[agent.id] = (agent.last_finished_at, agent.id)
        self._indexed[agent.id] = set()
        self._pending_by_agent[agent.id] = set()
        self._assigned_by_agent[agent.id] = set()
        for channel in agent.capacity:
            agent.load.setdefault(channel, 0)
        self._refresh_agent(agent)
        self._pull_all(agent)
        return self._flush()

    def agent_available(self, agent_id: str, now: float) -> list[Reservation]:
        self._advance(now)
        agent = self._get_agent(agent_id)
        agent.presence = Presence.READY
        agent.consecutive_timeouts = 0
        self._refresh_agent(agent)
        self._pull_all(agent)
        return self._flush()

    def agent_away(self, agent_id: str, now: float) -> list[Reservation]:
        """Away (break, after-call work): no new offers; pending offers are rescinded."""
        self._advance(now)
        self._withdraw(self._get_agent(agent_id), Presence.AWAY)
        return self._flush()

    def agent_offline(self, agent_id: str, now: float) -> list[Reservation]:
        self._advance(now)
        self._withdraw(self._get_agent(agent_id), Presence.OFFLINE)
        return self._flush()

    def remove_agent(self, agent_id: str, now: float) -> list[Reservation]:
        """The agent logs out for good. Its pending offers are rescinded (as when it goes
        offline); every task it accepted and has not finished goes back to the queue with its
        arrival and priority, its accepted reservation ``rescinded`` (ended now), and a
        ``requeued`` event naming the agent and that reservation. The agent is not added to
        those tasks' declined agents. Rules that came due while the tasks were assigned fire,
        the relaxation level is recomputed from arrival, then all these tasks are matched
        again, best first. The agent is then forgotten (:meth:`agent` raises ``KeyError``);
        the same id may be added again, and is still never offered what it declined."""
        self._advance(now)
        agent = self._get_agent(agent_id)
        agent.presence = Presence.OFFLINE
        self._refresh_agent(agent)
        requeued: list[_Entry] = []
        for reservation_id in sorted(self._pending_by_agent[agent.id]):
            reservation = self._reservations[reservation_id]
            if reservation.state is ReservationState.PENDING:
                self._end_offer(reservation, ReservationState.RESCINDED, requeued=requeued)
        assigned = [self._tasks[task_id] for task_id in self._assigned_by_agent[agent.id]]
        for entry in sorted(assigned, key=lambda e: e.key):
            if entry.reservation_id is None:
                raise RoutingError(f"task {entry.task.id} is assigned without a reservation")
            reservation = self._reservations[entry.reservation_id]
            reservation.state = ReservationState.RESCINDED
            reservation.ended_at = self._now
            agent.load[reservation.channel] -= 1
            entry.state = TaskState.WAITING
            entry.reservation_id = None
            self._emit("requeued", entry.task.id, agent.id, reservation.id, "agent removed")
            # Its wake-ups lapsed while it was assigned: catch up from its arrival.
            relaxation = self._policy.relaxation_for(entry.task.queue)
            entry.level = relaxation.level_at(entry.task, self._now)
            entry.signature = relaxation.signature(entry.task, entry.level)
            self._schedule_relaxation(entry, relaxation)
            self._escalate(entry)
            requeued.append(entry)
        self._rematch(requeued)
        del self._agents[agent.id]
        del self._agent_keys[agent.id]
        del self._indexed[agent.id]
        del self._pending_by_agent[agent.id]
        del self._assigned_by_agent[agent.id]
        return self._flush()

    def agent_freed(self, agent_id: str, channel: str, now: float) -> list[Reservation]:
        """One unit of ``channel`` capacity came free (work finished): the agent takes the best
        waiting task it is eligible for, as long as it has spare capacity. This is the raw
        capacity primitive; :meth:`task_finished` also closes the task's record and is what the
        service should call when it knows which task ended (a task whose unit was freed here is
        still assigned to the engine: :meth:`remove_agent` would hand it back)."""
        self._advance(now)
        self._release(self._get_agent(agent_id), channel, finished=True)
        return self._flush()

    def task_finished(self, task_id: str, now: float) -> list[Reservation]:
        """An accepted task is done: frees its unit of the agent's capacity."""
        self._advance(now)
        entry = self._get_task(task_id)
        if entry.state is not TaskState.ASSIGNED or entry.reservation_id is None:
            raise RoutingError(f"task {task_id} is {entry.state}, not assigned")
        reservation = self._reservations[entry.reservation_id]
        entry.state = TaskState.FINISHED
        self._assigned_by_agent[reservation.agent_id].discard(task_id)
        self._emit("finished", task_id, reservation.agent_id, reservation.id)
        self._release(self._agents[reservation.agent_id], reservation.channel, finished=True)
        return self._flush()

    def task_arrived(self, task: Task, now: float) -> list[Reservation]:
        self._advance(now)
        entry = self._admit(task)
        self._escalate(entry)
        if not self._offer_to_best_agent(entry):
            self._enqueue(entry)
            self._emit("queued", task.id, detail=_describe(entry.signature))
        return self._flush()

    def restore_task(
        self,
        task: Task,
        now: float,
        *,
        fired: Iterable[str] = (),
        declined_by: Iterable[str] = (),
    ) -> list[Reservation]:
        """Put back a live task as it was stored, when the engine is rebuilt after a restart.

        ``task`` is as it stands (past escalations already in its priority, requirements and
        queue); the rules named in ``fired`` never fire again for it and the agents in
        ``declined_by`` are never offered it. Its relaxation level comes from its arrival and
        ``now``. It is then matched as :meth:`task_arrived` matches, so it may be offered at
        once. Emits ``restored`` (in place of ``queued``), then what matching emits. Restore
        the assignments first, then the waiting tasks in the order they arrived: ties of
        priority, tier and arrival go by restore order."""
        self._advance(now)
        entry = self._admit(task)
        entry.fired.update(fired)
        entry.excluded.update(declined_by)
        self._emit("restored", task.id, detail=f"waiting: {_describe(entry.signature)}")
        self._escalate(entry)
        if not self._offer_to_best_agent(entry):
            self._enqueue(entry)
        return self._flush()

    def restore_assignment(
        self,
        task: Task,
        agent_id: str,
        now: float,
        *,
        fired: Iterable[str] = (),
        declined_by: Iterable[str] = (),
    ) -> Reservation:
        """Put back a task the agent had accepted and not finished, when the engine is rebuilt.

        The task holds one unit of the agent's capacity on its channel (whatever the agent's
        presence) until :meth:`task_finished`. Returns the accepted reservation this makes,
        numbered as every reservation is; it emits ``restored`` with the agent and reservation,
        not ``offered`` or ``accepted``: nothing is decided. Offers that fell due before
        ``now`` are returned by the next operation. Raises :class:`RoutingError` if the agent
        has no spare unit on the channel (it would be over capacity).

        ``fired`` and ``declined_by`` are as for :meth:`restore_task`; they matter if the task
        is handed back (:meth:`remove_agent`). Without ``declined_by`` it could then be offered
        to an agent who declined it before it was accepted, which the original would not do."""
        self._advance(now)
        agent = self._get_agent(agent_id)
        if agent.spare(task.channel) <= 0:
            raise RoutingError(
                f"task {task.id}: agent {agent_id} has no spare capacity on {task.channel!r}"
            )
        entry = self._admit(task)
        entry.fired.update(fired)
        entry.excluded.update(declined_by)
        reservation = Reservation(
            id=len(self._reservations) + 1,
            task_id=task.id,
            agent_id=agent.id,
            channel=task.channel,
            offered_at=now,
            expires_at=now,
            state=ReservationState.ACCEPTED,
            ended_at=now,
        )
        self._reservations[reservation.id] = reservation
        entry.state = TaskState.ASSIGNED
        entry.reservation_id = reservation.id
        self._assigned_by_agent[agent.id].add(task.id)
        agent.load[task.channel] = agent.load.get(task.channel, 0) + 1
        self._refresh_agent(agent)
        self._emit("restored", task.id, agent.id, reservation.id, detail="assigned")
        return reservation

    def update_task(
        self,
        task_id: str,
        now: float,
        *,
        priority: int | None = None,
        tier: str | None = None,
        queue: str | None = None,
        channel: str | None = None,
        requires: Mapping[str, int] | None = None,
        optional: Mapping[str, int] | None = None,
        reason: str = "",
    ) -> list[Reservation]:
        """Change a live task (a supervisor, another system) and re-index it. A pending offer
        stands; the change applies if the task comes back to the queue. Escalation rules that
        hold for the changed task fire."""
        self._advance(now)
        entry = self._get_task(task_id)
        if entry.state not in (TaskState.WAITING, TaskState.OFFERED):
            raise RoutingError(f"task {task_id} is {entry.state}; only live tasks change")
        if tier is not None and tier not in self._policy.tiers:
            raise RoutingError(f"task {task_id}: unknown tier {tier!r}")
        given = {
            "priority": priority,
            "tier": tier,
            "queue": queue,
            "channel": channel,
            "requires": None if requires is None else dict(requires),
            "optional": None if optional is None else dict(optional),
        }
        self._revise(entry, {name: value for name, value in given.items() if value is not None})
        self._emit("updated", task_id, detail=reason)
        self._escalate(entry)
        if entry.state is TaskState.WAITING:
            self._dequeue(entry)
            self._rematch([entry])
        return self._flush()

    def set_proficiency(
        self, agent_id: str, skill: str, level: int, now: float, *, reason: str = ""
    ) -> list[Reservation]:
        """Change one of an agent's skill levels (a supervisor, or learning) and re-index the
        agent; it then takes what it has become eligible for."""
        self._advance(now)
        agent = self._get_agent(agent_id)
        check_proficiencies(f"agent {agent_id}", {skill: level})
        old = agent.skills.get(skill, 0)
        for channel in sorted(self._indexed[agent.id]):
            self._set_indexed(agent, channel, want=False)
        agent.skills[skill] = level
        self._refresh_agent(agent)
        self._emit("proficiency", agent_id=agent_id, detail=f"{skill} {old}->{level}: {reason}")
        self._pull_all(agent)
        return self._flush()

    def remove_skill(self, agent_id: str, skill: str, now: float) -> list[Reservation]:
        """The agent no longer has ``skill``: no new task that needs it is offered to them
        (offers and tasks they already hold stand)."""
        self._advance(now)
        agent = self._get_agent(agent_id)
        for channel in sorted(self._indexed[agent.id]):
            self._set_indexed(agent, channel, want=False)
        old = agent.skills.pop(skill, 0)
        self._refresh_agent(agent)
        self._emit("proficiency", agent_id=agent_id, detail=f"{skill} {old}->0: removed")
        return self._flush()

    def set_capacity(
        self, agent_id: str, channel: str, units: int, now: float
    ) -> list[Reservation]:
        """How many tasks of ``channel`` the agent takes at once; 0 removes the channel. Never
        below what the agent holds there now (pending offers and accepted tasks)."""
        self._advance(now)
        agent = self._get_agent(agent_id)
        held = agent.load.get(channel, 0)
        if units < held:
            raise RoutingError(f"agent {agent_id} holds {held} on {channel!r}: capacity >= {held}")
        for indexed in sorted(self._indexed[agent.id]):
            self._set_indexed(agent, indexed, want=False)
        if units == 0:
            agent.capacity.pop(channel, None)
            agent.load.pop(channel, None)
        else:
            agent.capacity[channel] = units
            agent.load.setdefault(channel, 0)
        self._refresh_agent(agent)
        self._pull_all(agent)
        return self._flush()

    def accept(self, reservation_id: int, now: float) -> list[Reservation]:
        """The agent took the task. Returns, like every operation, the offers made meanwhile
        (by timeouts or relaxations that fell due before ``now``)."""
        self._advance(now)
        reservation = self._pending(reservation_id)
        reservation.state = ReservationState.ACCEPTED
        self._pending_by_agent[reservation.agent_id].discard(reservation.id)
        reservation.ended_at = now
        self._tasks[reservation.task_id].state = TaskState.ASSIGNED
        self._assigned_by_agent[reservation.agent_id].add(reservation.task_id)
        self._agents[reservation.agent_id].consecutive_timeouts = 0
        self._emit("accepted", reservation.task_id, reservation.agent_id, reservation.id)
        return self._flush()

    def reject(self, reservation_id: int, now: float) -> list[Reservation]:
        """The agent declined: the task goes to the next best agent, never back to this one."""
        self._advance(now)
        self._end_offer(self._pending(reservation_id), ReservationState.REJECTED)
        return self._flush()

    def cancel_task(self, task_id: str, now: float) -> list[Reservation]:
        """The customer left: a waiting task leaves the queue, a pending offer is canceled."""
        self._advance(now)
        entry = self._get_task(task_id)
        if entry.state is TaskState.WAITING:
            self._dequeue(entry)
            entry.state = TaskState.CANCELED
            self._emit("canceled", task_id)
        elif entry.state is TaskState.OFFERED and entry.reservation_id is not None:
            self._end_offer(self._reservations[entry.reservation_id], ReservationState.CANCELED)
        else:
            raise RoutingError(f"task {task_id} is {entry.state}; cannot cancel")
        return self._flush()

    def tick(self, now: float) -> list[Reservation]:
        """Let time pass: offers time out, waiting tasks relax, what became eligible matches."""
        self._advance(now)
        return self._flush()

    # ----------------------------------------------------------------- timing

    def _advance(self, now: float) -> None:
        """Process what fell due up to ``now`` in time order, each at its own instant (a step
        relaxes, a rule comes due, an offer times out); at the same instant in that order."""
        if now < self._now:
            raise RoutingError(f"time went backwards: {now} < {self._now}")
        expiries = self._expiries
        relax_due = self._relax_due
        escalation_due = self._escalation_due
        while True:
            t_relax = relax_due[0][0] if relax_due and relax_due[0][0] <= now else math.inf
            t_escalate = (
                escalation_due[0][0] if escalation_due and escalation_due[0][0] <= now else math.inf
            )
            t_expiry = expiries[0][0] if expiries and expiries[0][0] <= now else math.inf
            first = min(t_relax, t_escalate, t_expiry)
            if first == math.inf:
                break
            self._now = max(self._now, first)
            if t_relax == first:
                self._relax_due_tasks(first)
            elif t_escalate == first:
                self._escalate_due_tasks(first)
            else:
                _, reservation_id = heapq.heappop(expiries)
                reservation = self._reservations[reservation_id]
                if reservation.state is ReservationState.PENDING:
                    self._end_offer(reservation, ReservationState.TIMEOUT)
        self._now = now

    def _relax_due_tasks(self, at: float) -> None:
        due = self._relax_due
        relaxed: list[_Entry] = []
        while due and due[0][0] <= at:
            when, seq, task_id = heapq.heappop(due)
            entry = self._tasks[task_id]
            if (
                entry.seq != seq
                or entry.relax_at != when
                or entry.state not in (TaskState.WAITING, TaskState.OFFERED)
            ):
                continue
            relaxation = self._policy.relaxation_for(entry.task.queue)
            # The level is recomputed from the steps in force: after a policy change the same
            # level may stand for other requirements.
            entry.level = level = relaxation.level_at(entry.task, at)
            signature = relaxation.signature(entry.task, level)
            if signature != entry.signature:
                self._emit("relaxed", task_id, detail=f"level {level}: {_describe(signature)}")
                if entry.state is TaskState.WAITING:
                    self._dequeue(entry)
                    relaxed.append(entry)
                entry.signature = signature
            self._schedule_relaxation(entry, relaxation)
        self._rematch(relaxed)

    def _admit(self, task: Task) -> _Entry:
        """Register a new task (not yet matched): its order, relaxation level and wake-ups."""
        if task.id in self._tasks:
            raise RoutingError(f"task {task.id} already exists")
        policy = self._policy
        tier = policy.tiers.get(task.tier)
        if tier is None:
            raise RoutingError(f"task {task.id}: unknown tier {task.tier!r}")
        self._seq += 1
        relaxation = policy.relaxation_for(task.queue)
        level = relaxation.level_at(task, self._now)
        entry = _Entry(
            task=task,
            seq=self._seq,
            key=(-task.priority, -tier.weight, task.arrival, self._seq),
            level=level,
            signature=relaxation.signature(task, level),
        )
        self._tasks[task.id] = entry
        self._schedule_relaxation(entry, relaxation)
        self._schedule_escalation(entry)
        return entry

    def _schedule_relaxation(self, entry: _Entry, relaxation: Relaxation) -> None:
        """Schedule the task's next relaxation check by its queue's steps (``relaxation``); an
        earlier scheduled check goes stale (a task has one live wake-up, however often it is
        rescheduled)."""
        due = entry.relax_at = relaxation.next_due(entry.task, entry.level)
        if due is not None:
            heapq.heappush(self._relax_due, (due, entry.seq, entry.task.id))

    def _rematch(self, entries: list[_Entry]) -> None:
        """Match tasks taken out of the queue because they changed, best first."""
        entries.sort(key=lambda e: e.key)
        for entry in entries:
            if not self._offer_to_best_agent(entry):
                self._enqueue(entry)

    # ------------------------------------------------------------- escalation

    def _schedule_escalation(self, entry: _Entry) -> None:
        """One wake-up per distinct moment at which a rule's clock conditions come to hold."""
        moments = {rule.when.due(entry.task) for rule in self._policy.escalation}
        for due in sorted(m for m in moments if m is not None and m > self._now):
            heapq.heappush(self._escalation_due, (due, entry.seq, entry.task.id))

    def _escalate_due_tasks(self, at: float) -> None:
        due = self._escalation_due
        changed: list[_Entry] = []
        while due and due[0][0] <= at:
            _, seq, task_id = heapq.heappop(due)
            entry = self._tasks[task_id]
            if entry.seq != seq or entry.state not in (TaskState.WAITING, TaskState.OFFERED):
                continue
            # Each task has one wake-up per distinct moment, so it comes here once per call.
            if self._escalate(entry) and entry.state is TaskState.WAITING:
                self._dequeue(entry)
                changed.append(entry)
        self._rematch(changed)

    def _escalate(self, entry: _Entry) -> bool:
        """Fire every rule that holds for the task now and has not fired for it, repeating
        while a firing changes the task (one rule's raise can satisfy another). Returns whether
        the task changed. Each firing is recorded with its reason; the caller re-indexes."""
        changed = False
        progress = True
        while progress:
            progress = False
            for rule in self._policy.escalation:
                if rule.name in entry.fired:
                    continue
                due = rule.when.due(entry.task)
                reason = (
                    None
                    if due is None or due > self._now
                    else rule.when.reason(entry.task, self._now)
                )
                if reason is None:
                    continue
                entry.fired.add(rule.name)
                changes = rule.then.apply(entry.task, self._policy.queues)
                if changes:
                    self._revise(entry, changes)
                    changed = progress = True
                task_id = entry.task.id
                summary = f"{rule.name}: {reason} -> {rule.then.describe()}"
                self._emit("escalated", task_id, detail=summary)
                if rule.then.alert_supervisor:
                    self._emit("supervisor_alert", task_id, detail=summary)
        return changed

    def _revise(self, entry: _Entry, changes: Mapping[str, object]) -> None:
        """Replace the entry's task with a changed copy and recompute its order and effective
        requirements; re-indexing is the caller's. A task moved to another queue follows that
        queue's relaxation steps from its arrival: its level is recomputed and rescheduled."""
        moved_from = entry.task.queue
        task = replace(entry.task, **changes)  # type: ignore[arg-type]
        entry.task = task
        policy = self._policy
        entry.key = (-task.priority, -policy.tiers[task.tier].weight, task.arrival, entry.seq)
        relaxation = policy.relaxation_for(task.queue)
        if task.queue != moved_from:
            entry.level = relaxation.level_at(task, self._now)
            self._schedule_relaxation(entry, relaxation)
        entry.signature = relaxation.signature(task, entry.level)

    # ------------------------------------------------------------ reservations

    def _offer(self, entry: _Entry, agent: Agent) -> Reservation:
        channel = entry.task.channel
        reservation = Reservation(
            id=len(self._reservations) + 1,
            task_id=entry.task.id,
            agent_id=agent.id,
            channel=channel,
            offered_at=self._now,
            expires_at=self._now + self._policy.offer_timeout_seconds,
        )
        self._reservations[reservation.id] = reservation
        self._pending_by_agent[agent.id].add(reservation.id)
        heapq.heappush(self._expiries, (reservation.expires_at, reservation.id))
        entry.state = TaskState.OFFERED
        entry.reservation_id = reservation.id
        agent.load[channel] = agent.load.get(channel, 0) + 1
        if agent.spare(channel) <= 0:
            self._set_indexed(agent, channel, want=False)
        self._offers.append(reservation)
        if self._on_event is not None:  # the description is only worth building for a listener
            detail = _describe(entry.signature)
            self._emit("offered", entry.task.id, agent.id, reservation.id, detail)
        return reservation

    def _end_offer(
        self,
        reservation: Reservation,
        state: ReservationState,
        *,
        requeued: list[_Entry] | None = None,
    ) -> None:
        """Close a pending offer; the task requeues (unless canceled) and the agent's unit frees.

        The task is matched before the agent pulls, so the task never returns to the agent who
        turned it down, and the agent then takes the best of what is left. Given ``requeued``,
        the task is added to it instead, for the caller to match with others, best first."""
        reservation.state = state
        reservation.ended_at = self._now
        entry = self._tasks[reservation.task_id]
        agent = self._agents[reservation.agent_id]
        entry.reservation_id = None
        self._pending_by_agent[agent.id].discard(reservation.id)
        agent.load[reservation.channel] -= 1
        self._emit(str(state), entry.task.id, agent.id, reservation.id)
        went_away = False
        if state in (ReservationState.REJECTED, ReservationState.TIMEOUT):
            entry.excluded.add(agent.id)
        if state is ReservationState.TIMEOUT:
            agent.consecutive_timeouts += 1
            limit = self._policy.max_consecutive_timeouts
            if agent.consecutive_timeouts >= limit and agent.presence is Presence.READY:
                agent.presence = Presence.AWAY
                went_away = True
                self._emit("agent_away", agent_id=agent.id, detail=f"{limit} offers timed out")
        self._refresh_agent(agent)
        if state is ReservationState.CANCELED:
            entry.state = TaskState.CANCELED
        else:
            entry.state = TaskState.WAITING
            self._emit("requeued", entry.task.id, detail=str(state))
            if requeued is not None:
                requeued.append(entry)
            elif not self._offer_to_best_agent(entry):
                self._enqueue(entry)
        if went_away:
            self._rescind_all(agent)
        self._pull(agent, reservation.channel)

    def _withdraw(self, agent: Agent, presence: Presence) -> None:
        agent.presence = presence
        self._refresh_agent(agent)
        self._rescind_all(agent)

    def _rescind_all(self, agent: Agent) -> None:
        for reservation_id in sorted(self._pending_by_agent[agent.id]):
            reservation = self._reservations[reservation_id]
            if reservation.state is ReservationState.PENDING:
                self._end_offer(reservation, ReservationState.RESCINDED)

    def _pending(self, reservation_id: int) -> Reservation:
        reservation = self._reservations.get(reservation_id)
        if reservation is None:
            raise RoutingError(f"unknown reservation {reservation_id}")
        if reservation.state is not ReservationState.PENDING:
            raise RoutingError(f"reservation {reservation_id} is {reservation.state}")
        return reservation

    def _release(self, agent: Agent, channel: str, *, finished: bool) -> None:
        if agent.load.get(channel, 0) <= 0:
            raise RoutingError(f"agent {agent.id} has no load on {channel!r} to free")
        agent.load[channel] -= 1
        if finished:
            agent.last_finished_at = self._now
        # Pull before re-indexing: the agent usually refills at once, and then never enters
        # (and leaves) its buckets.
        self._pull(agent, channel)
        self._refresh_agent(agent)

    # ---------------------------------------------------------- agent index

    def _refresh_agent(self, agent: Agent) -> None:
        """Bring the agent's index entries in line with its presence, load and idle key."""
        key = (agent.last_finished_at, agent.id)
        if key != self._agent_keys[agent.id]:
            for channel in sorted(self._indexed[agent.id]):
                self._set_indexed(agent, channel, want=False)
            self._agent_keys[agent.id] = key
        ready = agent.presence is Presence.READY
        load = agent.load
        for channel, units in agent.capacity.items():
            self._set_indexed(agent, channel, want=ready and units > load.get(channel, 0))

    def _set_indexed(self, agent: Agent, channel: str, *, want: bool) -> None:
        indexed = self._indexed[agent.id]
        if (channel in indexed) == want:
            return
        key = self._agent_keys[agent.id]
        by_level = self._by_level
        if want:
            indexed.add(channel)
            bucket = self._by_channel.get(channel)
            if bucket is None:
                bucket = self._by_channel[channel] = _Bucket()
            bucket.add(key)
            for skill, level in agent.skills.items():
                bucket = by_level.get((channel, skill, level))
                if bucket is None:
                    bucket = by_level[channel, skill, level] = _Bucket()
                bucket.add(key)
        else:
            indexed.discard(channel)
            self._by_channel[channel].remove(key)
            for skill, level in agent.skills.items():
                by_level[channel, skill, level].remove(key)

    def _best_agent(self, entry: _Entry) -> str | None:
        channel = entry.task.channel
        signature = entry.signature
        excluded = entry.excluded
        anyone = self._by_channel.get(channel)
        if anyone is None or not anyone.keys:
            return None  # every agent on the channel is busy: the usual case when tasks queue
        if not signature:
            found = anyone.first(excluded)
            return found[1] if found else None
        if len(signature) == 1:
            (skill, minimum) = signature[0]
            for level in range(MAX_PROFICIENCY, minimum - 1, -1):
                bucket = self._by_level.get((channel, skill, level))
                if bucket and bucket.keys:
                    found = bucket.first(excluded)
                    if found:
                        return found[1]
            return None
        levels_present: list[list[tuple[int, set[str]]]] = []
        for skill, minimum in signature:
            present = []
            for level in range(MAX_PROFICIENCY, minimum - 1, -1):
                bucket = self._by_level.get((channel, skill, level))
                if bucket and bucket.members:
                    present.append((level, bucket.members))
            if not present:
                return None
            levels_present.append(present)
        if len(signature) > _MAX_COMBINATION_SKILLS:
            return self._scan_best_agent(signature, levels_present, excluded)
        keys = self._agent_keys
        for group in self._combinations(tuple(minimum for _, minimum in signature)):
            best: AgentKey | None = None
            for combo in group:
                sets: list[set[str]] = []
                for level, present in zip(combo, levels_present, strict=True):
                    members = next((m for lv, m in present if lv == level), None)
                    if members is None:
                        break
                    sets.append(members)
                else:
                    sets.sort(key=len)
                    common = sets[0].intersection(*sets[1:])
                    for agent_id in common:
                        if agent_id in excluded:
                            continue
                        key = keys[agent_id]
                        if best is None or key < best:
                            best = key
            if best is not None:
                return best[1]
        return None

    def _scan_best_agent(
        self,
        signature: Signature,
        levels_present: list[list[tuple[int, set[str]]]],
        excluded: set[str],
    ) -> str | None:
        smallest = min(levels_present, key=lambda present: sum(len(m) for _, m in present))
        best: tuple[int, float, str] | None = None
        for _, members in smallest:
            for agent_id in members:
                agent = self._agents[agent_id]
                if agent_id in excluded or not agent.satisfies(signature):
                    continue
                total = sum(agent.skills[skill] for skill, _ in signature)
                candidate = (-total, agent.last_finished_at, agent_id)
                if best is None or candidate < best:
                    best = candidate
        return best[2] if best else None

    def _combinations(self, minimums: tuple[int, ...]) -> list[list[tuple[int, ...]]]:
        """Proficiency combinations at or above ``minimums``, grouped by descending sum."""
        cached = self._combos.get(minimums)
        if cached is None:
            by_total: dict[int, list[tuple[int, ...]]] = {}
            ranges = [range(MAX_PROFICIENCY, m - 1, -1) for m in minimums]
            for combo in product(*ranges):
                by_total.setdefault(sum(combo), []).append(combo)
            cached = [by_total[total] for total in sorted(by_total, reverse=True)]
            self._combos[minimums] = cached
        return cached

    def _offer_to_best_agent(self, entry: _Entry) -> bool:
        agent_id = self._best_agent(entry)
        if agent_id is None:
            return False
        self._offer(entry, self._agents[agent_id])
        return True

    # ----------------------------------------------------------- task index

    def _enqueue(self, entry: _Entry) -> None:
        entry.state = TaskState.WAITING
        entry.version += 1
        channel = self._waiting.get(entry.task.channel)
        if channel is None:
            channel = self._waiting[entry.task.channel] = _ChannelQueues()
        heap = channel.heaps.get(entry.signature) or channel.add_heap(entry.signature)
        items = heap.items
        old = items[0] if items else None
        priority, weight, arrival, seq = entry.key
        item = (priority, weight, arrival, seq, entry.version, entry.task.id)
        heapq.heappush(items, item)
        if items[0] is item:
            heap.queue.move_head(heap, old)
        if entry.excluded:
            heap.declined += 1
        entry.heap = heap
        self._waiting_count += 1

    def _dequeue(self, entry: _Entry) -> None:
        """Leave the queue. At its heap's head the task is popped at once, with the stale entries
        this uncovers, so heads are always live and a freed agent never checks them; deeper
        down its entry goes stale (version) and is dropped when it surfaces."""
        heap, entry.heap = entry.heap, None
        if heap is None:
            raise RoutingError(f"task {entry.task.id} is not queued")
        items = heap.items
        head = items[0]
        at_head = head[5] == entry.task.id and head[4] == entry.version
        entry.version += 1
        self._waiting_count -= 1
        if entry.excluded:
            heap.declined -= 1
        if not at_head:
            return
        heapq.heappop(items)
        while items and not self._valid(items[0]):
            heapq.heappop(items)
        queue = heap.queue
        queue.move_head(heap, head)
        if not items:
            queue.channel.drop(heap)

    def _valid(self, item: _HeapEntry) -> bool:
        entry = self._tasks[item[5]]
        return entry.version == item[4] and entry.state is TaskState.WAITING

    def _best_task(self, agent: Agent, channel: str) -> _Entry | None:
        waiting = self._waiting.get(channel)
        if waiting is None or not waiting.queues:
            return None
        skills = agent.skills
        best: _HeapEntry | None = None
        bound: tuple[object, ...] = _NO_TASK  # ``best``, or above every entry before one is found
        for skill_set in self._servable_skill_sets(skills, waiting):
            queue = waiting.queues.get(skill_set)
            if queue is None or bound <= queue.first:
                continue
            levels = tuple(map(skills.__getitem__, skill_set))
            # Heads in key order: the first qualifying one is this skill set's best, unless
            # the agent declined it (rare), then later heads may still beat what it leaves.
            for head, minimums, heap in queue.heads:
                if bound <= head:
                    break
                if not all(map(le, minimums, levels)):
                    continue
                if heap.declined and agent.id in self._tasks[head[5]].excluded:
                    found = self._first_not_declined(heap.items, agent.id)
                    if found is None or bound <= found:
                        continue
                    head = found
                best = bound = head
        return self._tasks[best[5]] if best else None

    def _first_not_declined(self, items: list[_HeapEntry], agent_id: str) -> _HeapEntry | None:
        """The best live entry of a heap whose head this agent declined (a sort: rare)."""
        for item in sorted(items):
            if self._valid(item) and agent_id not in self._tasks[item[5]].excluded:
                return item
        return None

    def _servable_skill_sets(
        self, skills: Mapping[str, int], waiting: _ChannelQueues
    ) -> Iterable[tuple[str, ...]]:
        """The waiting skill sets the agent's skills cover: its own subsets of the sizes that
        wait, or the channel's skill sets filtered, whichever is fewer. Subsets come smaller
        first: those usually hold more tasks, so an older head that lets the rest pass sooner."""
        names = sorted(skills)
        sizes = waiting.sizes
        if sum(math.comb(len(names), size) for size in sizes) <= len(waiting.queues):
            return chain.from_iterable(combinations(names, size) for size in sorted(sizes))
        return [s for s in waiting.queues if all(name in skills for name in s)]

    def _pull(self, agent: Agent, channel: str) -> None:
        while agent.presence is Presence.READY and agent.spare(channel) > 0:
            entry = self._best_task(agent, channel)
            if entry is None:
                return
            self._dequeue(entry)
            self._offer(entry, agent)

    def _pull_all(self, agent: Agent) -> None:
        for channel in sorted(agent.capacity):
            self._pull(agent, channel)

    # ---------------------------------------------------------------- helpers

    def _get_agent(self, agent_id: str) -> Agent:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise RoutingError(f"unknown agent {agent_id}")
        return agent

    def _get_task(self, task_id: str) -> _Entry:
        entry = self._tasks.get(task_id)
        if entry is None:
            raise RoutingError(f"unknown task {task_id}")
        return entry

    def _emit(
        self,
        kind: str,
        task_id: str | None = None,
        agent_id: str | None = None,
        reservation_id: int | None = None,
        detail: str = "",
    ) -> None:
        if self._on_event is not None:
            self._on_event(Event(kind, self._now, task_id, agent_id, reservation_id, detail))

    def _flush(self) -> list[Reservation]:
        offers, self._offers = self._offers, []
        return offers


def _describe(signature: Signature) -> str:
    return ",".join(f"{skill}>={minimum}" for skill, minimum in signature) or "any"
