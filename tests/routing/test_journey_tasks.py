"""What routing does with journey's task requests (a proactive trigger's ``create_task``),
published on a real CX_JOURNEY stream as journey's relay would, on both databases: each becomes
one task in the queue the trigger names, however often it arrives; a queue the tenant lacks is
dead-lettered."""

import uuid
from typing import Any

import pytest
from nats.aio.client import Client as NatsClient
from nats.js.api import StreamConfig

from cxops.routing.events import TASK_REQUESTED
from tests.support.services import (
    RunningService,
    auth,
    consumer_caught_up,
    eventually,
    publish_event,
)

TENANT = "acme"
ADMIN = auth(TENANT)
DURABLE = "routing-journey-tasks"


@pytest.fixture
async def journey_stream(nats_client: NatsClient) -> str:
    """CX_JOURNEY as journey would provision it, for events published by hand."""
    await nats_client.jetstream().add_stream(
        StreamConfig(name="CX_JOURNEY", subjects=["cx.journey.>"], duplicate_window=120)
    )
    return "CX_JOURNEY"


def requested(action_id: str, **fields: Any) -> dict[str, Any]:
    """A ``task.requested`` payload as journey publishes it."""
    return {
        "action_id": action_id,
        "trigger_key": "late-shipment",
        "trigger_version": 2,
        "customer_id": "cust-1",
        "customer_ref": "crm-1",
        "queue": "logistics",
        "priority": 7,
        "skills": {"spanish": 2},
        "dedupe_key": "late-shipment:shipment_id:S1",
        "requested_at": "2026-12-07T12:00:00+00:00",
        **fields,
    }


async def test_a_task_request_becomes_one_task(
    routing: RunningService, journey_stream: str, nats_client: NatsClient
) -> None:
    made = await routing.client.post(
        "/v1/routing/queues",
        headers=ADMIN,
        json={
            "name": "logistics",
            "channel": "phone",
            "requires": {"logistics": 1},
            "optional": {"spanish": 1},
        },
    )
    assert made.status_code == 201, made.text
    action_id = str(uuid.uuid4())
    event_id = str(uuid.uuid4())
    await publish_event(
        nats_client, TASK_REQUESTED, requested(action_id), tenant=TENANT, event_id=event_id
    )
    # Redelivered, and announced again by another event: still one task.
    await publish_event(
        nats_client,
        TASK_REQUESTED,
        requested(action_id),
        tenant=TENANT,
        event_id=event_id,
        msg_id="again",
    )
    await publish_event(nats_client, TASK_REQUESTED, requested(action_id), tenant=TENANT)
    # The same request for another tenant, which has no such queue, touches nothing here.
    last = await publish_event(
        nats_client, TASK_REQUESTED, requested(str(uuid.uuid4())), tenant="other"
    )
    await consumer_caught_up(nats_client, journey_stream, DURABLE, last)

    listed = await routing.client.get("/v1/routing/tasks", headers=ADMIN)
    assert listed.status_code == 200, listed.text
    [task] = listed.json()
    assert task["external_id"] == f"journey-{action_id}"
    assert (task["queue"], task["channel"], task["priority"]) == ("logistics", "phone", 7)
    assert task["customer_ref"] == "crm-1"
    assert task["optional"] == {"spanish": 2}
    assert task["attributes"]["trigger"] == "late-shipment"
    assert await routing.count("routing_tasks") == 1


async def test_a_request_for_a_missing_queue_is_dead_lettered(
    routing: RunningService, journey_stream: str, nats_client: NatsClient
) -> None:
    event_id = str(uuid.uuid4())
    last = await publish_event(
        nats_client,
        TASK_REQUESTED,
        requested(str(uuid.uuid4())),
        tenant=TENANT,
        event_id=event_id,
    )
    await consumer_caught_up(nats_client, journey_stream, DURABLE, last)

    async def dead_lettered() -> list[dict[str, Any]] | None:
        listed = await routing.client.get("/v1/routing/ops/dead-letters", headers=ADMIN)
        assert listed.status_code == 200, listed.text
        return listed.json()["items"] or None

    [item] = await eventually(dead_lettered, what="the request in the dead letters")
    assert item["event_id"] == event_id and item["consumer"] == DURABLE
    assert await routing.count("routing_tasks") == 0
