"""Journey maps, live: each customer's stage in every map of their tenant, moved by the
interactions as they are recorded, and the handoff SLAs' deadlines.

**Progress.** The consumer of ``cx.journey.interaction.recorded.v1`` (durable
``journey-map-progress``) places each interaction of a resolved customer in every map of the
tenant (the latest version of each) by the rules of :mod:`cxops.journey.domain.map_progress`,
and in the consumer's transaction (whose inbox makes a redelivered event change nothing) writes
the customer's new stage, publishes ``cx.journey.stage.completed.v1`` when they moved on, arms
the deadlines of the handoffs that start from the stage entered and settles those the stage
reaches. An interaction without a customer moves nothing. A change to a customer's progress is
written at the version read; one that lost a race with another replica fails and is retried.

**Deadlines.** :class:`LiveMaps` keeps one timer per process, asleep until the earliest armed
deadline of any tenant (read from the database at start, so restarts lose nothing), woken
early when this process arms one, and at least every ``handoff_deadline_poll_seconds`` to see
those other replicas armed. A deadline fires at its moment: it is marked ``fired`` with a
conditional update (only an ``armed`` one changes) and ``cx.journey.handoff.delayed.v1`` goes
out in the same transaction, so with any number of replicas it fires once. Reaching the next
stage first clears it; reaching it after the deadline, before the timer got there (the service
was down), fires it then. Time comes from an injected clock, so tests move it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from cxops.common.clock import Clock, system_clock
from cxops.common.db import CommitInfo, once_per_transaction
from cxops.common.events import ConsumerSpec, Event, EventHandler, PermanentEventError, add_event
from cxops.common.events.broker import stream_name
from cxops.common.service import ServiceState, cancel_and_wait
from cxops.journey.domain.journey_map import JourneyMap
from cxops.journey.domain.map_progress import Position, advance, stage_of
from cxops.journey.events import (
    HANDOFF_DELAYED,
    INTERACTION_RECORDED,
    STAGE_COMPLETED,
    journey_event,
)
from cxops.journey.maps import map_of
from cxops.journey.maps_repository import (
    CLEARED,
    FIRED,
    DeadlineRepository,
    MapRepository,
    ProgressRepository,
    due_deadlines,
    earliest_deadline,
)
from cxops.journey.settings import JourneySettings

log = logging.getLogger("cxops.journey.maps_live")

#: Deadlines one round of the timer fires per query.
DUE_BATCH = 200
#: Set in a transaction's info when it armed a deadline, so its commit wakes the timer.
_ARMED = "cxops_journey_deadline_armed"


class ProgressChangedConcurrently(Exception):
    """Another replica moved the customer meanwhile: the event is handled again (retried)."""


# ------------------------------------------------------------------------- the consumer


class RecordedInteraction(BaseModel):
    """What progress reads of ``cx.journey.interaction.recorded.v1``; the payload's other
    fields, and any it gains later, are not its business."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    occurred_at: AwareDatetime
    activity: str
    stage: str | None = None
    customer_id: str | None = None


async def on_interaction(live: LiveMaps, session: AsyncSession, event: Event) -> None:
    """Move the interaction's customer in every map of its tenant."""
    try:
        interaction = RecordedInteraction.model_validate(event.data)
    except ValidationError as exc:
        raise PermanentEventError(f"not an interaction: {exc}") from exc
    if interaction.customer_id is None:
        return
    maps = MapRepository(session, tenant=event.tenant)
    for row in await once_per_transaction(session, ("maps", event.tenant), maps.latest_of_each):
        await _move(live, session, event.tenant, row, interaction, interaction.customer_id)


async def _move(
    live: LiveMaps,
    session: AsyncSession,
    tenant: str,
    map_row: Row[Any],
    interaction: RecordedInteraction,
    customer_id: str,
) -> None:
    journey_map = live.parsed(tenant, map_row)
    stage = stage_of(journey_map, activity=interaction.activity, stage=interaction.stage)
    if stage is None:
        return
    key, at = map_row.key, interaction.occurred_at
    progress = ProgressRepository(session, tenant=tenant)
    deadlines = DeadlineRepository(session, tenant=tenant)
    current = await progress.get(map_key=key, customer_id=customer_id)
    armed = await deadlines.armed_for(map_key=key, customer_id=customer_id)
    step = advance(
        journey_map,
        None if current is None else Position(current.stage, current.entered_at, current.last_at),
        stage=stage,
        at=at,
        running=frozenset((d.from_stage, d.to_stage) for d in armed),
    )
    if step is None:
        return
    values = {
        "map_version": map_row.version,
        "stage": step.position.stage,
        "entered_at": step.position.entered_at,
        "last_at": step.position.last_at,
    }
    if current is None:
        await progress.insert({"map_key": key, "customer_id": customer_id, **values})
    elif not await progress.update_if_version(
        map_key=key, customer_id=customer_id, version=current.version, values=values
    ):
        raise ProgressChangedConcurrently(tenant, key, customer_id)
    if step.completed is not None:
        done = step.completed
        await add_event(
            session,
            journey_event(
                STAGE_COMPLETED,
                tenant=tenant,
                map_key=key,
                map_version=map_row.version,
                customer_id=customer_id,
                stage=done.stage,
                next_stage=done.next_stage,
                entered_at=done.entered_at,
                completed_at=done.completed_at,
                seconds=done.seconds,
                owner_team=done.owner_team,
            ),
        )
    for deadline in armed:
        if deadline.to_stage not in step.settles:
            continue
        late = at > deadline.due_at
        if await deadlines.settle(deadline.id, state=FIRED if late else CLEARED, at=at) and late:
            await add_event(session, delayed_event(deadline))
    await deadlines.arm(
        [
            {
                "map_key": key,
                "map_version": map_row.version,
                "customer_id": customer_id,
                "from_stage": d.from_stage,
                "to_stage": d.to_stage,
                "owner_team": d.owner_team,
                "entered_at": d.entered_at,
                "due_at": d.due_at,
                "sla_seconds": d.sla_seconds,
            }
            for d in step.started
        ]
    )
    if step.started:
        session.info[_ARMED] = True


def delayed_event(deadline: Row[Any]) -> Event:
    return journey_event(
        HANDOFF_DELAYED,
        tenant=deadline.tenant,
        map_key=deadline.map_key,
        map_version=deadline.map_version,
        customer_id=deadline.customer_id,
        from_stage=deadline.from_stage,
        to_stage=deadline.to_stage,
        entered_at=deadline.entered_at,
        deadline=deadline.due_at,
        sla_seconds=deadline.sla_seconds,
        owner_team=deadline.owner_team,
    )


def _bound(state: ServiceState) -> EventHandler:
    handler: Any = partial(on_interaction, state.component(LiveMaps))
    return handler  # type: ignore[no-any-return]


MAP_PROGRESS = ConsumerSpec(
    name="map-progress",
    stream=stream_name("journey"),
    subjects=[INTERACTION_RECORDED],
    bind=_bound,
)


# ------------------------------------------------------------------------- the timer


async def fire_due_deadlines(state: ServiceState, *, now: datetime) -> int:
    """Publish ``handoff.delayed`` for every tenant's armed deadline due by ``now``, each in a
    transaction of its own; how many this process fired (a deadline another replica fired
    first is left to it)."""
    fired = 0
    while True:
        async with state.db.sessionmaker() as session:
            due: Sequence[Row[Any]] = await due_deadlines(session, now=now, limit=DUE_BATCH)
        for deadline in due:
            async with state.db.transaction() as session:
                repository = DeadlineRepository(session, tenant=deadline.tenant)
                if await repository.settle(deadline.id, state=FIRED, at=now):
                    await add_event(session, delayed_event(deadline))
                    fired += 1
        if len(due) < DUE_BATCH:
            return fired


class LiveMaps:
    """The live side of journey maps in one process (a
    :class:`cxops.common.service.Component`): the handoff deadlines' timer (see the module's
    documentation), the clock every part of the maps reads, and the maps' versions as the
    consumer parsed them (a version never changes, so a parsed one is good for ever)."""

    def __init__(self, state: ServiceState, *, clock: Clock = system_clock) -> None:
        settings = state.settings
        assert isinstance(settings, JourneySettings)
        self.state = state
        self.clock = clock
        self.poll_seconds = settings.handoff_deadline_poll_seconds
        self._maps: dict[tuple[str, str, int], JourneyMap] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        #: The time up to which the timer has last fired every due deadline (tests wait on it).
        self.checked_until: datetime | None = None
        state.db.on_commit(self._after_commit)

    def parsed(self, tenant: str, row: Row[Any]) -> JourneyMap:
        """The domain's map of a stored version, parsed once."""
        key = (tenant, row.key, row.version)
        found = self._maps.get(key)
        if found is None:
            found = self._maps[key] = map_of(row)
        return found

    def _after_commit(self, info: CommitInfo) -> None:
        if info.pop(_ARMED, False):
            self.wake()

    def wake(self) -> None:
        """Look for due deadlines now (after the clock moved, or one was armed)."""
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="cxops-journey-handoff-deadlines")

    async def stop(self) -> None:
        """Let the timer finish the transaction it is in rather than cancel it there (on
        SQLite, a transaction cut off mid-way would hold the write lock through shutdown)."""
        if self._task is None:
            return
        self._stopping = True
        self.wake()
        finished, _ = await asyncio.wait({self._task}, timeout=10)
        if not finished:
            await cancel_and_wait([self._task], deadline_seconds=5)

    async def _run(self) -> None:
        poll = self.poll_seconds
        while not self._stopping:
            self._wake.clear()
            now = self.clock()
            try:
                fired = await fire_due_deadlines(self.state, now=now)
                if fired:
                    log.info("handoff deadlines: %d fired", fired)
                async with self.state.db.sessionmaker() as session:
                    due = await earliest_deadline(session)
            except Exception:  # the database is away: try again shortly
                log.exception("handoff deadline timer failed; retrying")
                due, poll = None, min(poll, 1.0)
            else:
                poll = self.poll_seconds
                self.checked_until = now
            delay = poll if due is None else min(poll, (due - self.clock()).total_seconds())
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
