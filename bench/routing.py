"""Latency of one routing decision with 10,000 online agents (50 skills, 3-6 each) and 100,000
waiting tasks, against a full-scan matcher written here and run in the same process.

Two decisions are measured:

* **task arrives** while agents are free: the engine picks the best eligible agent;
* **agent frees up** with 100,000 tasks waiting: the agent takes the best task it may take.

Goal (issue 4): p99 <= 0.5 ms, >= 10x the full scan, >= 20,000 decisions/s on one core.

Before each timed phase the objects built so far are collected and frozen out of the garbage
collector (:func:`settle`): otherwise a full collection over the backlog (some 800,000 tracked
objects, half a second) lands on whichever sample happens to run then. Collections of what the
decisions themselves allocate still count.

    uv run python bench/routing.py [--agents 10000] [--tasks 100000] [--samples 20000]
"""

import argparse
import gc
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from cxops.routing.domain.engine import Engine, Policy
from cxops.routing.domain.model import DEFAULT_TIERS, Agent, Presence, Signature, Task

SKILLS = [f"s{i:02d}" for i in range(50)]
CHANNELS = {"voice": 1, "chat": 3, "email": 5}


def make_agents(rng: random.Random, count: int) -> list[Agent]:
    agents = []
    for i in range(count):
        skills = {s: rng.randint(1, 5) for s in rng.sample(SKILLS, rng.randint(3, 6))}
        channels = rng.sample(sorted(CHANNELS), rng.randint(1, 3))
        agents.append(
            Agent(
                f"a{i:05d}",
                skills,
                {c: CHANNELS[c] for c in channels},
                Presence.READY,
                last_finished_at=rng.random(),
            )
        )
    return agents


def clone(agent: Agent) -> Agent:
    """The engine owns (mutates) its agents: each run gets its own copies."""
    return Agent(
        agent.id,
        dict(agent.skills),
        dict(agent.capacity),
        Presence.READY,
        last_finished_at=agent.last_finished_at,
    )


def make_task(rng: random.Random, i: int, now: float) -> Task:
    count = 1 if rng.random() < 0.7 else 2
    requires = {s: rng.randint(1, 3) for s in rng.sample(SKILLS, count)}
    return Task(
        f"t{i:07d}",
        rng.choice(("voice", "chat", "chat", "email")),
        now,
        requires,
        priority=rng.randint(0, 3),
        tier=rng.choice(("standard", "standard", "gold", "platinum")),
    )


# ------------------------------------------------------------------------ full-scan baseline


@dataclass
class ScanAgent:
    id: str
    skills: dict[str, int]
    capacity: dict[str, int]
    load: dict[str, int]
    last_finished_at: float


@dataclass
class ScanTask:
    key: tuple[int, int, float, int]
    channel: str
    signature: Signature
    id: str
    taken: bool = False


class FullScan:
    """The same policy as the engine, decided by looking at every agent or every task."""

    def __init__(self, agents: list[Agent]) -> None:
        self.agents = [
            ScanAgent(a.id, dict(a.skills), dict(a.capacity), {}, a.last_finished_at)
            for a in agents
        ]
        self.by_id = {a.id: a for a in self.agents}
        self.waiting: list[ScanTask] = []
        self.seq = 0

    def copy_state(self, engine: Engine) -> None:
        """Start from the engine's state (building it by scanning would take minutes)."""
        for agent in self.agents:
            agent.load = dict(engine.agent(agent.id).load)
        self.waiting = [
            ScanTask(
                engine.task_key(task_id),
                engine.task(task_id).channel,
                engine.effective_signature(task_id),
                task_id,
            )
            for task_id in engine.waiting_task_ids()
        ]

    def task_arrived(self, task: Task) -> str | None:
        self.seq += 1
        signature = tuple(sorted(task.requires.items()))
        key = (-task.priority, -DEFAULT_TIERS[task.tier].weight, task.arrival, self.seq)
        best: tuple[int, float, str] | None = None
        best_agent = None
        for agent in self.agents:
            if agent.capacity.get(task.channel, 0) - agent.load.get(task.channel, 0) <= 0:
                continue
            if all(agent.skills.get(s, 0) >= m for s, m in signature):
                rank = (
                    -sum(agent.skills[s] for s, _ in signature),
                    agent.last_finished_at,
                    agent.id,
                )
                if best is None or rank < best:
                    best, best_agent = rank, agent
        if best_agent is None:
            self.waiting.append(ScanTask(key, task.channel, signature, task.id))
            return None
        best_agent.load[task.channel] = best_agent.load.get(task.channel, 0) + 1
        return best_agent.id

    def agent_freed(self, agent_id: str, channel: str, now: float) -> str | None:
        agent = self.by_id[agent_id]
        agent.load[channel] -= 1
        agent.last_finished_at = now
        skills = agent.skills
        best: ScanTask | None = None
        for task in self.waiting:
            if task.taken or task.channel != channel:
                continue
            if (best is None or task.key < best.key) and all(
                skills.get(s, 0) >= m for s, m in task.signature
            ):
                best = task
        if best is None:
            return None
        best.taken = True
        agent.load[channel] += 1
        return best.id


# ---------------------------------------------------------------------------------- timing


def timed(call: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter_ns()
    result = call()
    return (time.perf_counter_ns() - start) / 1e6, result


def settle() -> None:
    """Collect, then exempt what exists from later collections (see the module docstring)."""
    gc.collect()
    gc.freeze()


def summary(name: str, millis: list[float]) -> dict[str, float]:
    ordered = sorted(millis)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    mean = statistics.fmean(ordered)
    print(
        f"  {name:<34} n={len(ordered):>6}  p50 {p50:8.3f} ms  p99 {p99:8.3f} ms  "
        f"mean {mean:8.3f} ms  -> {1000 / mean:10,.0f} decisions/s"
    )
    return {"p50": p50, "p99": p99, "mean": mean}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--baseline-samples", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    policy = Policy(offer_timeout_seconds=1e12)

    # 1. Task arrives while agents are free (a fresh shift: every agent ready and idle).
    agents = make_agents(rng, args.agents)
    fresh = [make_task(rng, i, 1.0) for i in range(args.samples)]
    engine = Engine(policy)
    for agent in agents:
        engine.add_agent(clone(agent), 0.0)
    settle()
    arrive_ms, chosen = [], []
    for task in fresh:
        ms, offers = timed(lambda task=task: engine.task_arrived(task, 1.0))
        arrive_ms.append(ms)
        chosen.append(offers[0].agent_id if offers else None)  # type: ignore[index]
    scan = FullScan(agents)
    scan_arrive_ms, scan_chosen = [], []
    for task in fresh[: args.baseline_samples]:
        ms, agent_id = timed(lambda task=task: scan.task_arrived(task))
        scan_arrive_ms.append(ms)
        scan_chosen.append(agent_id)
    agree = chosen[: len(scan_chosen)] == scan_chosen

    # 2. Agent frees up with a backlog: fill until `--tasks` wait, agents at capacity.
    engine = Engine(policy)
    for agent in agents:
        engine.add_agent(clone(agent), 0.0)
    scan = FullScan(agents)
    backlog_rng = random.Random(args.seed + 1)
    now = 1.0
    serial = 0
    build = time.perf_counter()
    while engine.waiting_count < args.tasks:
        serial += 1
        task = make_task(backlog_rng, serial, now)
        for offer in engine.task_arrived(task, now):
            engine.accept(offer.id, now)
    build = time.perf_counter() - build
    scan.copy_state(engine)
    loaded = [(a.id, c) for a in agents for c in a.capacity]
    settle()
    free_ms, queued_ms = [], []
    loop_start = time.perf_counter()
    for _ in range(args.samples):
        now += 0.001
        agent_id, channel = loaded[rng.randrange(len(loaded))]
        if engine.agent(agent_id).load.get(channel, 0) == 0:
            continue
        ms, offers = timed(partial(engine.agent_freed, agent_id, channel, now))
        free_ms.append(ms)
        for offer in offers:  # type: ignore[attr-defined]
            engine.accept(offer.id, now)
        serial += 1
        task = make_task(backlog_rng, serial, now)
        ms, offers = timed(partial(engine.task_arrived, task, now))
        queued_ms.append(ms)
        for offer in offers:  # type: ignore[attr-defined]
            engine.accept(offer.id, now)
    loop = time.perf_counter() - loop_start
    decisions = len(free_ms) + len(queued_ms)
    scan_free_ms = []
    for _ in range(args.baseline_samples):
        agent_id, channel = loaded[rng.randrange(len(loaded))]
        if scan.by_id[agent_id].load.get(channel, 0) == 0:
            continue
        ms, _ = timed(partial(scan.agent_freed, agent_id, channel, now))
        scan_free_ms.append(ms)

    print(
        f"routing: {args.agents:,} agents, {len(SKILLS)} skills, "
        f"{engine.waiting_count:,} waiting (backlog built in {build:.1f} s)"
    )
    print("indexed engine:")
    engine_arrive = summary("task arrives (agents free)", arrive_ms)
    engine_free = summary("agent frees up (100k waiting)", free_ms)
    summary("task arrives (all busy: queued)", queued_ms)
    print(f"  mixed loop (free + arrive, incl. accept): {decisions / loop:,.0f} decisions/s")
    print("full-scan baseline:")
    scan_arrive = summary("task arrives (agents free)", scan_arrive_ms)
    scan_free = summary("agent frees up (100k waiting)", scan_free_ms)
    print("ratio (baseline mean / engine mean):")
    print(f"  task arrives   {scan_arrive['mean'] / engine_arrive['mean']:8.1f}x")
    print(f"  agent frees up {scan_free['mean'] / engine_free['mean']:8.1f}x")
    print(f"first {len(scan_chosen)} arrivals pick the same agents as the baseline: {agree}")


if __name__ == "__main__":
    main()
