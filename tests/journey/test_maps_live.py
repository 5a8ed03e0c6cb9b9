"""Journey maps, live, on SQLite and PostgreSQL with real NATS: interactions recorded on the
journey stream move customers through the tenant's maps; moving on publishes
``stage.completed``; a handoff that misses its SLA publishes ``handoff.delayed`` when the
deadline passes (a clock the test moves, no later event), not at all when the next stage comes
in time, once with two replicas, and nothing twice for a redelivered event."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nats.aio.client import Client as NatsClient

from cxops.common.auth import Role
from cxops.journey.events import (
    HANDOFF_DELAYED,
    INTERACTION_RECORDED,
    PUBLISHED,
    STAGE_COMPLETED,
)
from cxops.journey.maps_live import LiveMaps
from tests.journey.conftest import StartJourney
from tests.support.clock import ManualClock
from tests.support.services import (
    RunningService,
    StreamEvent,
    auth,
    consumer_caught_up,
    eventually,
    publish_event,
    published,
)

TENANT = "acme"
OTHER = "globex"
STREAM = "CX_JOURNEY"
DURABLE = "journey-map-progress"
MINUTE, HOUR = timedelta(minutes=1), timedelta(hours=1)
MAP = {
    "stages": [
        {"name": "intake", "activities": ["case opened", "triaged"], "owner_team": "frontline"},
        {"name": "billing", "activities": ["handed to billing"], "owner_team": "billing"},
        {"name": "resolution", "activities": ["case resolved"], "owner_team": "frontline"},
    ],
    "handoffs": [
        {"from": "intake", "to": "billing", "sla_seconds": 3600},
        {"from": "billing", "to": "resolution", "sla_seconds": 7200},
    ],
}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
async def service(
    start_journey: StartJourney, clock: ManualClock, nats_client: NatsClient
) -> AsyncIterator[RunningService]:
    async with start_journey(clock=clock) as started:
        js = nats_client.jetstream()
        await eventually(lambda: js.stream_info(STREAM), what="the CX_JOURNEY stream")
        put = await started.client.put(
            "/v1/journey/maps/support", json=MAP, headers=auth(TENANT, Role.OPS_LEAD)
        )
        assert put.status_code == 201, put.text
        yield started


def interaction(
    customer: str | None, activity: str, at: datetime, *, stage: str | None = None
) -> dict[str, Any]:
    """An ``interaction.recorded`` payload as the intake publishes it."""
    return {
        "interaction_id": str(uuid.uuid4()),
        "external_id": str(uuid.uuid4()),
        "occurred_at": at.isoformat(),
        "identifiers": {"crm_id": customer or "unknown"},
        "channel": "web",
        "activity": activity,
        "team": None,
        "stage": stage,
        "attributes": {},
        "customer_id": customer,
        "received_at": at.isoformat(),
    }


async def recorded(
    nats_client: NatsClient,
    customer: str | None,
    activity: str,
    at: datetime,
    *,
    tenant: str = TENANT,
    **options: Any,
) -> int:
    """Publish the interaction and wait until the consumer has handled it."""
    stage = options.pop("stage", None)
    sequence = await publish_event(
        nats_client,
        INTERACTION_RECORDED,
        interaction(customer, activity, at, stage=stage),
        tenant=tenant,
        **options,
    )
    await consumer_caught_up(nats_client, STREAM, DURABLE, sequence)
    return sequence


async def move_clock(service: RunningService, clock: ManualClock, by: timedelta) -> None:
    """Move time and wait until the service's timer has fired everything due by then."""
    clock.advance(by)
    live = service.state.component(LiveMaps)
    live.wake()
    await eventually(
        lambda: asyncio.sleep(0, live.checked_until is not None and live.checked_until >= clock()),
        what="the handoff deadlines' timer to catch up",
    )


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def test_moving_on_completes_the_stage(
    service: RunningService, clock: ManualClock, nats_client: NatsClient
) -> None:
    start = clock()
    await recorded(nats_client, "c1", "case opened", start)
    await recorded(nats_client, "c1", "triaged", start + 5 * MINUTE)  # the same stage
    await recorded(nats_client, "c1", "handed to billing", start + 20 * MINUTE)
    await recorded(nats_client, None, "handed to billing", start)  # no customer: nothing
    await recorded(nats_client, "c1", "unknown step", start + 21 * MINUTE)  # no stage: nothing
    # No activity of the map's, but the interaction says its stage.
    await recorded(nats_client, "c1", "callback", start + 50 * MINUTE, stage="resolution")

    events = await published(service, nats_client, STAGE_COMPLETED, models=PUBLISHED)

    assert events == [
        StreamEvent(
            STAGE_COMPLETED,
            TENANT,
            {
                "map_key": "support",
                "map_version": 1,
                "customer_id": "c1",
                "stage": "intake",
                "next_stage": "billing",
                "entered_at": stamp(start),
                "completed_at": stamp(start + 20 * MINUTE),
                "seconds": 1200.0,
                "owner_team": "frontline",
            },
        ),
        StreamEvent(
            STAGE_COMPLETED,
            TENANT,
            {
                "map_key": "support",
                "map_version": 1,
                "customer_id": "c1",
                "stage": "billing",
                "next_stage": "resolution",
                "entered_at": stamp(start + 20 * MINUTE),
                "completed_at": stamp(start + 50 * MINUTE),
                "seconds": 1800.0,
                "owner_team": "billing",
            },
        ),
    ]
    # Both handoffs came in time: nothing is left armed, nothing fires later.
    await move_clock(service, clock, 3 * HOUR)
    assert await published(service, nats_client, HANDOFF_DELAYED, models=PUBLISHED) == []


async def test_a_late_handoff_is_raised_at_its_deadline_without_another_event(
    service: RunningService, clock: ManualClock, nats_client: NatsClient
) -> None:
    start = clock()
    await recorded(nats_client, "c2", "case opened", start)

    await move_clock(service, clock, 59 * MINUTE)
    assert await published(service, nats_client, HANDOFF_DELAYED, models=PUBLISHED) == []
    await move_clock(service, clock, MINUTE)  # exactly the deadline
    delayed = await published(service, nats_client, HANDOFF_DELAYED, models=PUBLISHED)
    await move_clock(service, clock, HOUR)  # and not again
    # The customer reaches billing late: the stage completes, the delay is not raised twice.
    await recorded(nats_client, "c2", "handed to billing", start + 2 * HOUR)

    assert delayed == [
        StreamEvent(
            HANDOFF_DELAYED,
            TENANT,
            {
                "map_key": "support",
                "map_version": 1,
                "customer_id": "c2",
                "from_stage": "intake",
                "to_stage": "billing",
                "entered_at": stamp(start),
                "deadline": stamp(start + HOUR),
                "sla_seconds": 3600.0,
                "owner_team": "frontline",
            },
        )
    ]
    assert await published(service, nats_client, HANDOFF_DELAYED, models=PUBLISHED) == delayed
    assert len(await published(service, nats_client, STAGE_COMPLETED, models=PUBLISHED)) == 1


async def test_a_handoff_in_time_clears_its_deadline(
    service: RunningService, clock: ManualClock, nats_client: NatsClient
) -> None:
    start = clock()
    await recorded(nats_client, "c3", "case opened", start)
    await recorded(nats_client, "c3", "handed to billing", start + 59 * MINUTE)

    await move_clock(service, clock, 90 * MINUTE)  # past intake's deadline, before billing's

    assert await published(service, nats_client, HANDOFF_DELAYED, models=PUBLISHED) == []
    assert (
        await service.scalar(
            "SELECT state FROM journey_handoff_deadlines WHERE to_stage = 'billing'"
        )
        == "cleared"
    )
    await move_clock(service, clock, 90 * MINUTE)  # billing's 2 h deadline has passed
    assert [
        e.data["from_stage"]
        for e in await published(service, nats_client, HANDOFF_DELAYED, models=PUBLISHED)
    ] == ["billing"]


async def test_a_redelivered_event_changes_nothing_and_tenants_keep_their_maps(
    service: RunningService, clock: ManualClock, nats_client: NatsClient
) -> None:
    start = clock()
    event_id = str(uuid.uuid4())
    await recorded(nats_client, "c4", "case opened", start)
    await recorded(nats_client, "c4", "handed to billing", start + MINUTE, event_id=event_id)
    # The same event again, under another message id (past JetStream's duplicate window).
    await recorded(
        nats_client,
        "c4",
        "handed to billing",
        start + MINUTE,
        event_id=event_id,
        msg_id="redelivered",
    )
    # Another tenant has no map: its customers go nowhere.
    await recorded(nats_client, "c4", "case opened", start, tenant=OTHER)
    await recorded(nats_client, "c4", "handed to billing", start + MINUTE, tenant=OTHER)

    assert len(await published(service, nats_client, STAGE_COMPLETED, models=PUBLISHED)) == 1
    assert await service.count("journey_handoff_deadlines") == 2  # intake's, billing's
    assert await service.scalar("SELECT count(*) FROM journey_map_progress") == 1


async def test_deadlines_survive_a_restart_and_two_replicas_raise_each_once(
    start_journey: StartJourney, clock: ManualClock, nats_client: NatsClient
) -> None:
    async with start_journey(clock=clock) as first:
        js = nats_client.jetstream()
        await eventually(lambda: js.stream_info(STREAM), what="the CX_JOURNEY stream")
        put = await first.client.put(
            "/v1/journey/maps/support", json=MAP, headers=auth(TENANT, Role.OPS_LEAD)
        )
        assert put.status_code == 201
        for customer in ("c5", "c6", "c7"):
            await recorded(nats_client, customer, "case opened", clock())

    clock.advance(2 * HOUR)  # nobody is running when the deadlines pass

    async with start_journey(clock=clock) as one, start_journey(clock=clock) as two:
        await asyncio.gather(
            move_clock(one, clock, timedelta(0)), move_clock(two, clock, timedelta(0))
        )
        after_restart = await published(one, nats_client, HANDOFF_DELAYED, models=PUBLISHED)
        for customer in ("c8", "c9"):
            await recorded(nats_client, customer, "case opened", clock())
        clock.advance(HOUR)
        await asyncio.gather(
            move_clock(one, clock, timedelta(0)), move_clock(two, clock, timedelta(0))
        )
        delayed = await published(one, nats_client, HANDOFF_DELAYED, models=PUBLISHED)

    assert sorted(event.data["customer_id"] for event in after_restart) == ["c5", "c6", "c7"]
    assert sorted(event.data["customer_id"] for event in delayed) == ["c5", "c6", "c7", "c8", "c9"]
