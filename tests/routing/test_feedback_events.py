"""What routing does with feedback's events, published on a real CX_FEEDBACK stream as
feedback's relay would, on both databases: closed-loop cases become tasks in the owning team's
queue (else the tenant's ``cases`` queue), and a CSAT that names a completed task is its CSAT,
each once however often it arrives; and the CSAT endpoint those answers share."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.aio.client import Client as NatsClient

from cxops.common.auth import Role
from cxops.routing.events import CASE_OPENED, RESPONSE_RECEIVED
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
RESPONSES_DURABLE = "routing-feedback-responses"


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


async def completed_task(routing: RunningService) -> str:
    """A task offered to ana, accepted and completed without a CSAT; its id."""
    await set_up(routing, "billing")
    made = await routing.client.post(
        "/v1/routing/agents",
        headers=ADMIN,
        json={
            "external_id": "ana",
            "name": "Ana",
            "skills": {"billing": 3},
            "channels": {"email": 1},
            "status": "available",
        },
    )
    assert made.status_code == 201, made.text
    task = await routing.client.post(
        "/v1/routing/tasks", headers=ADMIN, json={"queue": "billing", "external_id": "t-1"}
    )
    assert task.json()["state"] == "reserved", task.text
    [offer] = (
        await routing.client.get(
            f"/v1/routing/agents/{made.json()['id']}/reservations?state=pending", headers=ADMIN
        )
    ).json()
    accepted = await routing.client.post(
        f"/v1/routing/reservations/{offer['id']}/accept", headers=ADMIN
    )
    assert accepted.status_code == 200, accepted.text
    task_id = str(task.json()["id"])
    done = await routing.client.post(
        f"/v1/routing/tasks/{task_id}/complete",
        headers=ADMIN,
        json={"handle_seconds": 120, "resolved": True},
    )
    assert done.status_code == 200 and done.json()["csat"] is None, done.text
    return task_id


async def test_a_late_csat_is_stored_once_and_only_for_a_completed_task(
    routing: RunningService,
) -> None:
    task_id = await completed_task(routing)
    path = f"/v1/routing/tasks/{task_id}/csat"

    rated = await routing.client.post(path, headers=ADMIN, json={"csat": 2})
    assert rated.status_code == 200 and rated.json()["csat"] == 2, rated.text
    again = await routing.client.post(path, headers=ADMIN, json={"csat": 2})
    assert again.status_code == 200 and again.json()["csat"] == 2
    other = await routing.client.post(path, headers=ADMIN, json={"csat": 5})
    assert other.status_code == 409 and "already rated 2" in other.json()["detail"]

    off_scale = await routing.client.post(path, headers=ADMIN, json={"csat": 6})
    assert off_scale.status_code == 422
    assert off_scale.json()["errors"][0]["field"] == "csat"
    by_agent = await routing.client.post(path, headers=auth(TENANT, Role.AGENT), json={"csat": 5})
    assert by_agent.status_code == 403
    unknown = await routing.client.post(
        f"/v1/routing/tasks/{uuid.uuid4()}/csat", headers=ADMIN, json={"csat": 4}
    )
    assert unknown.status_code == 404
    waiting = await routing.client.post(
        "/v1/routing/tasks", headers=ADMIN, json={"queue": "billing", "external_id": "t-2"}
    )
    early = await routing.client.post(
        f"/v1/routing/tasks/{waiting.json()['id']}/csat", headers=ADMIN, json={"csat": 4}
    )
    assert early.status_code == 409 and early.json()["state"] == "reserved"
    [stored] = [t for t in await tasks(routing) if t["id"] == task_id]
    assert stored["csat"] == 2


def answered(task_id: str | None, *, kind: str = "csat", score: int = 4) -> dict[str, Any]:
    """A ``response.received`` payload as feedback publishes it."""
    now = datetime.now(UTC).isoformat()
    return {
        "response_id": str(uuid.uuid4()),
        "kind": kind,
        "score": score,
        "customer_ref": "c-9",
        "channel": "email",
        "task_id": task_id,
        "occurred_at": now,
        "received_at": now,
        "has_comment": False,
    }


async def test_a_csat_answer_that_names_a_task_is_its_csat(
    routing: RunningService, feedback_stream: str, nats_client: NatsClient
) -> None:
    task_id = await completed_task(routing)
    csat = answered(task_id, score=4)
    await publish_event(
        nats_client, RESPONSE_RECEIVED, answered(task_id, kind="nps", score=0), tenant=TENANT
    )
    await publish_event(nats_client, RESPONSE_RECEIVED, answered(None), tenant=TENANT)
    await publish_event(nats_client, RESPONSE_RECEIVED, csat, tenant=TENANT)
    await publish_event(nats_client, RESPONSE_RECEIVED, csat, tenant=TENANT)  # announced twice
    unknown = str(uuid.uuid4())
    last = await publish_event(
        nats_client, RESPONSE_RECEIVED, answered(str(uuid.uuid4())), tenant=TENANT, event_id=unknown
    )
    await consumer_caught_up(nats_client, feedback_stream, RESPONSES_DURABLE, last)

    [stored] = [t for t in await tasks(routing) if t["id"] == task_id]
    assert stored["csat"] == 4

    async def dead_lettered() -> list[dict[str, Any]] | None:
        listed = await routing.client.get("/v1/routing/ops/dead-letters", headers=ADMIN)
        return listed.json()["items"] or None

    [item] = await eventually(dead_lettered, what="the CSAT of an unknown task, dead-lettered")
    assert item["event_id"] == unknown and item["consumer"] == RESPONSES_DURABLE
