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

Indexes (so a decision touches buckets, not every agent or task):

* Ready agents with spare capacity sit in buckets per ``(channel, skill, proficiency)``, each a
  list sorted by ``(last_finished_at, id)`` plus a set of members. A one-skill task walks the
  levels from 5 down to its minimum and takes the first bucket head; a two- or three-skill task
  walks proficiency combinations by descending sum and intersects the members' sets (C-level
  set intersection); more skills fall back to scanning the smallest skill's buckets.
* Waiting tasks sit in priority heaps per ``(channel, skill set, signature)``, where the
  signature is the effective ``(skill, minimum)`` requirement. A freed agent visits only the
  skill sets that are subsets of its own skills (enumerated from its skills, or filtered from the
  channel's skill sets, whichever is fewer), checks each signature once and peeks each heap's
  head. Relaxation or an update changes a task's signature: the task is pushed into its new heap
  and its old entry is dropped lazily (entries carry a version).
"""

import heapq
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from itertools import combinations, product

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
)
from cxops.routing.domain.relaxation import Relaxation

TaskKey = tuple[int, int, float, int]
AgentKey = tuple[float, str]
_HeapEntry = tuple[TaskKey, int, str]
#: Above this many required skills the proficiency combinations (5**k) cost more than a scan.
_MAX_COMBINATION_SKILLS = 3


class RoutingError(ValueError):
    """An operation that does not fit the engine's state (unknown id, wrong reservation state)."""


@dataclass(frozen=True, slots=True)
class Policy:
    tiers: Mapping[str, Tier] = field(default_factory=lambda: dict(DEFAULT_TIERS))
    relaxation: Relaxation = field(default_factory=Relaxation)
    offer_timeout_seconds: float = 15.0
    #: An agent who lets this many offers in a row time out is set away.
    max_consecutive_timeouts: int = 3


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
        self.policy = policy or Policy()
        self._on_event = on_event
        self._now = float("-inf")
        self._agents: dict[str, Agent] = {}
        self._agent_keys: dict[str, AgentKey] = {}
        self._indexed: dict[str, set[str]] = {}
        self._by_level: dict[tuple[str, str, int], _Bucket] = {}
        self._by_channel: dict[str, _Bucket] = {}
        self._tasks: dict[str, _Entry] = {}
        self._waiting: dict[str, dict[tuple[str, ...], dict[Signature, list[_HeapEntry]]]] = {}
        self._waiting_count = 0
        self._seq = 0
        self._reservations: dict[int, Reservation] = {}
        self._pending_by_agent: dict[str, set[int]] = {}
        self._expiries: list[tuple[float, int]] = []
        self._relax_due: list[tuple[float, int, str]] = []
        self._combos: dict[tuple[int, ...], list[list[tuple[int, ...]]]] = {}
        self._offers: list[Reservation] = []
        self._subset_cache: dict[tuple[str, ...], list[tuple[str, ...]]] = {}

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

    def agent_freed(self, agent_id: str, channel: str, now: float) -> list[Reservation]:
        """One unit of ``channel`` capacity came free (work finished): the agent takes the best
        waiting task it is eligible for, as long as it has spare capacity. This is the raw
        capacity primitive; :meth:`task_finished` also closes the task's record and is what the
        service should call when it knows which task ended."""
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
        self._emit("finished", task_id, reservation.agent_id, reservation.id)
        self._release(self._agents[reservation.agent_id], reservation.channel, finished=True)
        return self._flush()

    def task_arrived(self, task: Task, now: float) -> list[Reservation]:
        self._advance(now)
        if task.id in self._tasks:
            raise RoutingError(f"task {task.id} already exists")
        tier = self.policy.tiers.get(task.tier)
        if tier is None:
            raise RoutingError(f"task {task.id}: unknown tier {task.tier!r}")
        self._seq += 1
        relaxation = self.policy.relaxation
        level = relaxation.level_at(task, now)
        entry = _Entry(
            task=task,
            seq=self._seq,
            key=(-task.priority, -tier.weight, task.arrival, self._seq),
            level=level,
            signature=relaxation.signature(task, level),
        )
        self._tasks[task.id] = entry
        self._schedule_relaxation(entry)
        if not self._offer_to_best_agent(entry):
            self._enqueue(entry)
            self._emit("queued", task.id, detail=_describe(entry.signature))
        return self._flush()

    def update_task(
        self,
        task_id: str,
        now: float,
        *,
        priority: int | None = None,
        tier: str | None = None,
        channel: str | None = None,
        requires: Mapping[str, int] | None = None,
        optional: Mapping[str, int] | None = None,
        reason: str = "",
    ) -> list[Reservation]:
        """Change a live task (escalation, supervisor) and re-index it. A pending offer stands;
        the change applies if the task comes back to the queue."""
        self._advance(now)
        entry = self._get_task(task_id)
        if entry.state not in (TaskState.WAITING, TaskState.OFFERED):
            raise RoutingError(f"task {task_id} is {entry.state}; only live tasks change")
        changes: dict[str, object] = {}
        if priority is not None:
            changes["priority"] = priority
        if tier is not None:
            if tier not in self.policy.tiers:
                raise RoutingError(f"task {task_id}: unknown tier {tier!r}")
            changes["tier"] = tier
        if channel is not None:
            changes["channel"] = channel
        if requires is not None:
            changes["requires"] = dict(requires)
        if optional is not None:
            changes["optional"] = dict(optional)
        task = replace(entry.task, **changes)  # type: ignore[arg-type]
        weight = self.policy.tiers[task.tier].weight
        entry.task = task
        entry.key = (-task.priority, -weight, task.arrival, entry.seq)
        entry.signature = self.policy.relaxation.signature(task, entry.level)
        self._emit("updated", task_id, detail=reason)
        if entry.state is TaskState.WAITING:
            self._dequeue(entry)
            if not self._offer_to_best_agent(entry):
                self._enqueue(entry)
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
        """Process what fell due up to ``now`` in time order, each at its own instant (an offer
        times out at its expiry, a step relaxes at its due time); relaxations before timeouts
        at the same instant."""
        if now < self._now:
            raise RoutingError(f"time went backwards: {now} < {self._now}")
        expiries = self._expiries
        due = self._relax_due
        while True:
            t_expiry = expiries[0][0] if expiries and expiries[0][0] <= now else None
            t_relax = due[0][0] if due and due[0][0] <= now else None
            if t_relax is not None and (t_expiry is None or t_relax <= t_expiry):
                self._now = max(self._now, t_relax)
                self._relax_due_tasks(t_relax)
            elif t_expiry is not None:
                _, reservation_id = heapq.heappop(expiries)
                reservation = self._reservations[reservation_id]
                if reservation.state is ReservationState.PENDING:
                    self._now = max(self._now, t_expiry)
                    self._end_offer(reservation, ReservationState.TIMEOUT)
            else:
                break
        self._now = now

    def _relax_due_tasks(self, at: float) -> None:
        due = self._relax_due
        relaxation = self.policy.relaxation
        relaxed: list[_Entry] = []
        while due and due[0][0] <= at:
            _, seq, task_id = heapq.heappop(due)
            entry = self._tasks[task_id]
            if entry.seq != seq or entry.state not in (TaskState.WAITING, TaskState.OFFERED):
                continue
            level = relaxation.level_at(entry.task, at)
            if level != entry.level:
                entry.level = level
                signature = relaxation.signature(entry.task, level)
                if signature != entry.signature:
                    self._emit("relaxed", task_id, detail=f"level {level}: {_describe(signature)}")
                    if entry.state is TaskState.WAITING:
                        self._dequeue(entry)
                        relaxed.append(entry)
                    entry.signature = signature
            self._schedule_relaxation(entry)
        relaxed.sort(key=lambda e: e.key)
        for entry in relaxed:
            if not self._offer_to_best_agent(entry):
                self._enqueue(entry)

    def _schedule_relaxation(self, entry: _Entry) -> None:
        due = self.policy.relaxation.next_due(entry.task, entry.level)
        if due is not None:
            heapq.heappush(self._relax_due, (due, entry.seq, entry.task.id))

    # ------------------------------------------------------------ reservations

    def _offer(self, entry: _Entry, agent: Agent) -> Reservation:
        channel = entry.task.channel
        reservation = Reservation(
            id=len(self._reservations) + 1,
            task_id=entry.task.id,
            agent_id=agent.id,
            channel=channel,
            offered_at=self._now,
            expires_at=self._now + self.policy.offer_timeout_seconds,
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
        self._emit("offered", entry.task.id, agent.id, reservation.id, _describe(entry.signature))
        return reservation

    def _end_offer(self, reservation: Reservation, state: ReservationState) -> None:
        """Close a pending offer; the task requeues (unless canceled) and the agent's unit frees.

        The task is matched before the agent pulls, so the task never returns to the agent who
        turned it down, and the agent then takes the best of what is left."""
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
            limit = self.policy.max_consecutive_timeouts
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
            if not self._offer_to_best_agent(entry):
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
        for channel in agent.capacity:
            self._set_indexed(agent, channel, want=ready and agent.spare(channel) > 0)

    def _set_indexed(self, agent: Agent, channel: str, *, want: bool) -> None:
        indexed = self._indexed[agent.id]
        if (channel in indexed) == want:
            return
        key = self._agent_keys[agent.id]
        buckets = [self._by_channel.setdefault(channel, _Bucket())]
        buckets.extend(
            self._by_level.setdefault((channel, skill, level), _Bucket())
            for skill, level in agent.skills.items()
        )
        for bucket in buckets:
            if want:
                bucket.add(key)
            else:
                bucket.remove(key)
        if want:
            indexed.add(channel)
        else:
            indexed.discard(channel)

    def _best_agent(self, entry: _Entry) -> str | None:
        channel = entry.task.channel
        signature = entry.signature
        excluded = entry.excluded
        if not signature:
            bucket = self._by_channel.get(channel)
            found = bucket.first(excluded) if bucket else None
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
        task = entry.task
        skills = tuple(skill for skill, _ in entry.signature)
        by_skills = self._waiting.setdefault(task.channel, {})
        heap = by_skills.setdefault(skills, {}).setdefault(entry.signature, [])
        heapq.heappush(heap, (entry.key, entry.version, task.id))
        self._waiting_count += 1

    def _dequeue(self, entry: _Entry) -> None:
        """Leave the queue; the heap entry goes stale (version) and is dropped when it surfaces."""
        entry.version += 1
        self._waiting_count -= 1

    def _valid(self, item: _HeapEntry) -> bool:
        entry = self._tasks[item[2]]
        return entry.version == item[1] and entry.state is TaskState.WAITING

    def _best_task(self, agent: Agent, channel: str) -> _Entry | None:
        by_skills = self._waiting.get(channel)
        if not by_skills:
            return None
        skill_sets: Iterable[tuple[str, ...]]
        if len(agent.skills) < 16 and (1 << len(agent.skills)) <= len(by_skills):
            skill_sets = self._subsets(agent.skills)
        else:
            have = agent.skills.keys()
            skill_sets = [s for s in by_skills if all(name in have for name in s)]
        best: _HeapEntry | None = None
        skills = agent.skills
        for skill_set in skill_sets:
            signatures = by_skills.get(skill_set)
            if signatures is None:
                continue
            emptied: list[Signature] = []
            for signature, heap in signatures.items():
                if not heap:
                    emptied.append(signature)
                    continue
                # A stale head's key is no larger than any live entry's: skipping on it is safe.
                if best is not None and best[0] <= heap[0][0]:
                    continue
                qualified = True
                for name, minimum in signature:
                    if skills[name] < minimum:
                        qualified = False
                        break
                if not qualified:
                    continue
                while heap and not self._valid(heap[0]):
                    heapq.heappop(heap)
                if not heap:
                    emptied.append(signature)
                    continue
                head = heap[0]
                if best is not None and best[0] <= head[0]:
                    continue
                excluded = self._tasks[head[2]].excluded
                if excluded and agent.id in excluded:
                    # Rare: this agent declined the head; look further down this heap only.
                    candidate = next(
                        (
                            item
                            for item in sorted(heap)
                            if self._valid(item) and agent.id not in self._tasks[item[2]].excluded
                        ),
                        None,
                    )
                    if candidate is None:
                        continue
                    head = candidate
                if best is None or head[0] < best[0]:
                    best = head
            for signature in emptied:
                del signatures[signature]
            if not signatures:
                del by_skills[skill_set]
        return self._tasks[best[2]] if best else None

    def _subsets(self, skills: Mapping[str, int]) -> list[tuple[str, ...]]:
        """Every subset of the skill names, as sorted tuples (the waiting index's keys); cached,
        since many agents share a skill set and an agent's skills rarely change."""
        names = tuple(sorted(skills))
        cached = self._subset_cache.get(names)
        if cached is None:
            cached = [c for size in range(len(names) + 1) for c in combinations(names, size)]
            if len(self._subset_cache) < 100_000:
                self._subset_cache[names] = cached
        return cached

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
