"""Closed-loop cases become work: ``cx.feedback.case.opened.v1`` events, published on a real
CX_FEEDBACK stream as feedback's relay would, become tasks in the owning team's queue (else the
tenant's ``cases`` queue), once each however often they arrive, on both databases."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.aio.client import Client as NatsClient

from cxops.routing.events import CASE_OPENED
from tests.support.services import (
    RunningService,
    auth,
    consumer_caught_up,
    eventually,
    publish_event,
)

TENANT = "acme"
ADMIN = auth(TENANT)
DURABLE = "routing-feedback-cases"


def opened(case_id: str, **fields: Any) -> dict[str, Any]:
    """A ``case.opened`` payload as feedback will publish it, with a field routing ignores."""
    return {
        "case_id": case_id,
        "team": "billing",
        "topic": "refund",
        "customer_ref": "c-9",
        "tier": "gold",
        "action_due_at": (datetime.now(UTC) + timedelta(hours=72)).isoformat(),
        "root_cause": None,
        **fields,
    }


async def set_up(routing: RunningService, *queues: str) -> None:
    for name in queues:
        answer = await routing.client.post(
            "/v1/routing/queues",
            headers=ADMIN,
            json={"name": name, "channel": "email", "requires": {"billing": 1}},
        )
        assert answer.status_code == 201, answer.text


async def tasks(routing: RunningService, **params: str) -> list[dict[str, Any]]:
    answer = await routing.client.get("/v1/routing/tasks", headers=ADMIN, params=params)
    assert answer.status_code == 200, answer.text
    return list(answer.json())


async def test_a_case_becomes_one_task_in_its_teams_queue(
    routing: RunningService, feedback_stream: str, nats_client: NatsClient
) -> None:
    await set_up(routing, "billing", "cases")
    case_id = str(uuid.uuid4())
    event_id = str(uuid.uuid4())
    payload = opened(case_id)
    await publish_event(nats_client, CASE_OPENED, payload, tenant=TENANT, event_id=event_id)
    # Redelivered under another message id, and announced again by a second event.
    await publish_event(
        nats_client, CASE_OPENED, payload, tenant=TENANT, event_id=event_id, msg_id="again"
    )
    await publish_event(nats_client, CASE_OPENED, payload, tenant=TENANT)
    # A case of a team without a queue of its own, and a case of another tenant.
    other_case = str(uuid.uuid4())
    await publish_event(
        nats_client,
        CASE_OPENED,
        opened(other_case, team="logistics", tier="diamond", customer_ref="c-10"),
        tenant=TENANT,
    )
    last = await publish_event(nats_client, CASE_OPENED, opened(str(uuid.uuid4())), tenant="other")
    await consumer_caught_up(nats_client, feedback_stream, DURABLE, last)

    [task] = await tasks(routing, customer_ref="c-9")
    assert task["external_id"] == f"case-{case_id}"
    assert (task["queue"], task["channel"], task["tier"]) == ("billing", "email", "gold")
    attributes = task["attributes"]
    assert attributes["case_id"] == case_id and attributes["topic"] == "refund"
    deadline = datetime.fromisoformat(attributes["sla_deadline"])
    assert deadline == datetime.fromisoformat(payload["action_due_at"])

    [fallback] = await tasks(routing, customer_ref="c-10")
    assert fallback["queue"] == "cases"
    assert fallback["tier"] == "standard"  # a tier routing does not know
    assert await routing.count("routing_tasks") == 2  # nothing for the other tenant here


async def test_a_case_with_no_queue_is_left_alone_and_an_unreadable_one_dead_lettered(
    routing: RunningService, feedback_stream: str, nats_client: NatsClient
) -> None:
    await publish_event(nats_client, CASE_OPENED, opened(str(uuid.uuid4())), tenant=TENANT)
    unreadable = str(uuid.uuid4())
    last = await publish_event(
        nats_client, CASE_OPENED, {"team": "billing"}, tenant=TENANT, event_id=unreadable
    )
    await consumer_caught_up(nats_client, feedback_stream, DURABLE, last)
    assert await routing.count("routing_tasks") == 0

    async def dead_lettered() -> list[dict[str, Any]] | None:
        listed = await routing.client.get("/v1/routing/ops/dead-letters", headers=ADMIN)
        assert listed.status_code == 200, listed.text
        return listed.json()["items"] or None

    [item] = await eventually(dead_lettered, what="the unreadable case in the dead letters")
    assert item["event_id"] == unreadable and item["consumer"] == DURABLE

    # Once the team's queue exists, new cases reach it.
    await set_up(routing, "billing")
    case_id = str(uuid.uuid4())
    last = await publish_event(nats_client, CASE_OPENED, opened(case_id), tenant=TENANT)
    await consumer_caught_up(nats_client, feedback_stream, DURABLE, last)
    [task] = await tasks(routing)
    assert task["external_id"] == f"case-{case_id}"
