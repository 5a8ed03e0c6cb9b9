"""The customer's timeline and the agent desktop's context, on both databases, assembled from
journey's own interactions and proactive actions and from facts it learned only from feedback's
and routing's events (published on real streams as their models produce them), against
hand-counted answers; each tenant sees only its own; bad input and unknown customers answered
with problems naming what is wrong."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nats.aio.client import Client as NatsClient

from cxops.common.auth import Role
from cxops.feedback import events as feedback_events
from cxops.journey.api.context import current_time
from cxops.journey.models import CustomerIdentifier
from cxops.routing import events as routing_events
from tests.journey.conftest import StartJourney
from tests.journey.customer_facts import (
    Publisher,
    case_event,
    response_enriched,
    response_received,
    store_action,
    store_customer,
    streams,
    task_assigned,
    task_completed,
    task_created,
)
from tests.support.services import RunningService, auth

__all__ = ["streams"]

TENANT = "acme"
AGENT = auth(TENANT, Role.AGENT)
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CUSTOMER = "cust-ana"
#: Hours before NOW of Ana's twelve interactions; four within the last 7 days (168 h).
HOURS_AGO = [1, 30, 100, 160, 170, 200, 300, 400, 500, 600, 700, 800]


def ago(**delta: float) -> datetime:
    return NOW - timedelta(**delta)


class Story:
    """Ana's ids, as the scenario made them."""

    def __init__(self) -> None:
        self.interactions: list[uuid.UUID] = []
        self.responses = {"r_old": uuid.uuid4(), "r_last": uuid.uuid4(), "other": uuid.uuid4()}
        self.cases = {"due_soon": uuid.uuid4(), "late": uuid.uuid4(), "closed": uuid.uuid4()}
        self.tasks = {"open": uuid.uuid4(), "done": uuid.uuid4(), "someone_else": uuid.uuid4()}
        self.agents = {"open": uuid.uuid4(), "done": uuid.uuid4()}
        self.actions: dict[str, uuid.UUID] = {}


@pytest.fixture
async def story(
    journey: RunningService, streams: None, nats_client: NatsClient
) -> AsyncIterator[Story]:
    """Ana (phone, email and two CRM ids), her interactions and actions; what feedback and
    routing published about her, about another customer, and about a namesake in tenant
    ``zeta``."""
    journey.app.dependency_overrides[current_time] = lambda: NOW
    story = Story()
    story.interactions = await store_customer(
        journey,
        tenant=TENANT,
        customer_id=CUSTOMER,
        identifiers={"phone": "+34600111222", "email": "ana@correo.es", "crm_id": "crm-1"},
        interactions=[
            {
                "occurred_at": ago(hours=hours),
                "channel": "chat" if i % 2 else "phone",
                "activity": f"step-{i}",
                "stage": "delivery" if i == 0 else None if i == 1 else "purchase",
            }
            for i, hours in enumerate(HOURS_AGO)
        ],
    )
    # A second CRM id, joined to Ana by identity resolution later.
    async with journey.db.transaction() as session:
        session.add(
            CustomerIdentifier(tenant=TENANT, type="crm_id", value="crm-1b", customer_id=CUSTOMER)
        )
    story.actions = {
        "taken": await store_action(
            journey,
            tenant=TENANT,
            customer_id=CUSTOMER,
            trigger_key="delay",
            outcome="taken",
            at=ago(days=2),
        ),
        "held_out": await store_action(
            journey,
            tenant=TENANT,
            customer_id=CUSTOMER,
            trigger_key="repeat",
            outcome="held_out",
            at=ago(days=5),
        ),
        "capped": await store_action(
            journey,
            tenant=TENANT,
            customer_id=CUSTOMER,
            trigger_key="delay",
            outcome="capped",
            at=ago(days=10),
        ),
        "old": await store_action(
            journey,
            tenant=TENANT,
            customer_id=CUSTOMER,
            trigger_key="delay",
            outcome="taken",
            at=ago(days=40),
        ),
    }
    publisher = Publisher(nats_client)
    await _publish_feedback(publisher, story)
    await _publish_routing(publisher, story)
    await publisher.settled()
    yield story


async def _publish_feedback(publisher: Publisher, story: Story) -> None:
    r_old, r_last = story.responses["r_old"], story.responses["r_last"]
    for response_id, ref, at, score, sentiment in (
        (r_old, "crm-1", ago(days=3), 5, "positive"),
        (r_last, "crm-1b", ago(days=1), 1, "negative"),
    ):
        await publisher.publish(
            feedback_events.RESPONSE_RECEIVED,
            response_received(response_id, customer_ref=ref, at=at, score=score),
            tenant=TENANT,
        )
        await publisher.publish(
            feedback_events.RESPONSE_ENRICHED,
            response_enriched(
                response_id,
                customer_ref=ref,
                at=at,
                score=score,
                comment=f"{sentiment} words",
                sentiment=sentiment,
            ),
            tenant=TENANT,
        )
    # Newer feedback from another customer of acme, and from a namesake in tenant zeta.
    await publisher.publish(
        feedback_events.RESPONSE_RECEIVED,
        response_received(story.responses["other"], customer_ref="crm-2", at=ago(hours=2)),
        tenant=TENANT,
    )
    await publisher.publish(
        feedback_events.RESPONSE_RECEIVED,
        response_received(uuid.uuid4(), customer_ref="crm-1", at=ago(hours=2)),
        tenant="zeta",
    )
    # Opened 20 h ago (feedback 21 h ago): acknowledge due in 3 h, within the 4 h "soon".
    due_soon = story.cases["due_soon"]
    await publisher.publish(
        feedback_events.CASE_OPENED,
        case_event(
            feedback_events.CASE_OPENED,
            due_soon,
            customer_ref="crm-1",
            opened_at=ago(hours=20),
            at=ago(hours=20),
            state="open",
        ),
        tenant=TENANT,
    )
    # Opened 50 h ago: acknowledged 31 h after the feedback, 7 h after its deadline, which
    # feedback reported breached.
    late, late_opened = story.cases["late"], ago(hours=50)
    await publisher.publish(
        feedback_events.CASE_BREACHED,
        case_event(
            feedback_events.CASE_BREACHED,
            late,
            customer_ref="crm-1",
            opened_at=late_opened,
            at=late_opened + timedelta(hours=23),
            state="open",
            clock="acknowledge",
            deadline=late_opened + timedelta(hours=23),
            breach_round=1,
        ),
        tenant=TENANT,
    )
    await publisher.publish(
        feedback_events.CASE_ACKNOWLEDGED,
        case_event(
            feedback_events.CASE_ACKNOWLEDGED,
            late,
            customer_ref="crm-1",
            opened_at=late_opened,
            at=late_opened + timedelta(hours=30),
            state="acknowledged",
            owner="luis",
            acknowledged_after_seconds=31 * 3600.0,
        ),
        tenant=TENANT,
    )
    closed, closed_opened = story.cases["closed"], ago(days=9)
    await publisher.publish(
        feedback_events.CASE_CLOSED,
        case_event(
            feedback_events.CASE_CLOSED,
            closed,
            customer_ref="crm-1",
            opened_at=closed_opened,
            at=closed_opened + timedelta(hours=10),
            state="closed",
            acknowledged_after_seconds=2 * 3600.0,
            action_documented_after_seconds=5 * 3600.0,
            closed_after_seconds=11 * 3600.0,
            customer_contacted=True,
        ),
        tenant=TENANT,
    )


async def _publish_routing(publisher: Publisher, story: Story) -> None:
    open_task, done = story.tasks["open"], story.tasks["done"]
    await publisher.publish(
        routing_events.TASK_CREATED,
        task_created(open_task, customer_ref="crm-1", at=ago(minutes=30)),
        tenant=TENANT,
    )
    await publisher.publish(
        routing_events.TASK_ASSIGNED,
        task_assigned(open_task, story.agents["open"], at=ago(minutes=29)),
        tenant=TENANT,
    )
    await publisher.publish(
        routing_events.TASK_CREATED,
        task_created(done, customer_ref="crm-1b", at=ago(hours=101)),
        tenant=TENANT,
    )
    await publisher.publish(
        routing_events.TASK_COMPLETED,
        task_completed(done, story.agents["done"], customer_ref="crm-1b", at=ago(hours=100)),
        tenant=TENANT,
    )
    await publisher.publish(
        routing_events.TASK_CREATED,
        task_created(story.tasks["someone_else"], customer_ref="crm-2", at=ago(hours=1)),
        tenant=TENANT,
    )


async def get_context(journey: RunningService, **params: str) -> dict[str, Any]:
    answer = await journey.client.get("/v1/journey/customers/context", params=params, headers=AGENT)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_the_context_answers_everything_the_desktop_shows(
    journey: RunningService, story: Story
) -> None:
    context = await get_context(journey, identifier="phone:+34 600 111 222")

    assert at(context["as_of"]) == NOW
    customer = context["customer"]
    assert customer["id"] == CUSTOMER
    assert {(i["type"], i["value"]) for i in customer["identifiers"]} == {
        ("phone", "+34600111222"),
        ("email", "ana@correo.es"),
        ("crm_id", "crm-1"),
    }
    assert at(customer["first_seen"]) == ago(hours=800)
    assert at(customer["last_seen"]) == ago(hours=1)
    assert context["stage"] == "delivery"

    last = context["last_interactions"]
    assert [item["id"] for item in last] == [str(i) for i in story.interactions[:10]]
    assert [at(item["at"]) for item in last] == [ago(hours=h) for h in HOURS_AGO[:10]]
    assert last[1]["stage"] is None and last[1]["channel"] == "chat"
    assert context["contacts_last_7_days"] == 4

    # The open cases, newest first, with their clocks at NOW.
    [due_soon, late] = context["open_cases"]
    assert due_soon["case_id"] == str(story.cases["due_soon"]) and due_soon["state"] == "open"
    clocks = {clock["clock"]: clock for clock in due_soon["clocks"]}
    assert at(clocks["acknowledge"]["due_at"]) == NOW + timedelta(hours=3)
    assert (clocks["acknowledge"]["due_soon"], clocks["acknowledge"]["breached"]) == (True, False)
    assert (clocks["action"]["due_soon"], clocks["action"]["breached"]) == (False, False)
    assert late["case_id"] == str(story.cases["late"])
    assert (late["state"], late["owner"]) == ("acknowledged", "luis")
    clocks = {clock["clock"]: clock for clock in late["clocks"]}
    assert clocks["acknowledge"]["breached"] is True
    assert at(clocks["acknowledge"]["done_at"]) == ago(hours=51) + timedelta(hours=31)
    # Its action clock: due 72 h after the feedback (51 h ago), so in 21 h; not soon.
    assert (clocks["action"]["breached"], clocks["action"]["due_soon"]) == (False, False)
    assert [(b["clock"], b["round"]) for b in late["breaches"]] == [("acknowledge", 1)]

    feedback = context["last_feedback"]
    assert feedback["response_id"] == str(story.responses["r_last"])
    assert (feedback["score"], feedback["comment"]) == (1, "negative words")
    assert feedback["sentiment"]["label"] == "negative" and feedback["enriched"] is True

    [task] = context["open_tasks"]
    assert task["task_id"] == str(story.tasks["open"])
    assert (task["state"], task["agent_id"], task["queue"]) == (
        "assigned",
        str(story.agents["open"]),
        "billing",
    )

    assert [a["action_id"] for a in context["proactive_actions"]] == [
        str(story.actions[name]) for name in ("taken", "held_out", "capped")
    ]
    assert [a["outcome"] for a in context["proactive_actions"]] == ["taken", "held_out", "capped"]

    by_id = await get_context(journey, customer_id=CUSTOMER)
    assert by_id == context
    # The issue's own spelling, typed into a URL as is: the query string reads `+` as a space.
    typed = await journey.client.get(
        "/v1/journey/customers/context?identifier=phone:+34600111222", headers=AGENT
    )
    assert typed.status_code == 200 and typed.json() == context


async def test_the_timeline_tells_the_story_in_time_order(
    journey: RunningService, story: Story
) -> None:
    answer = await journey.client.get(f"/v1/journey/customers/{CUSTOMER}/timeline", headers=AGENT)
    assert answer.status_code == 200, answer.text
    timeline = answer.json()
    items = timeline["items"]
    assert timeline["customer_id"] == CUSTOMER and timeline["truncated"] is False

    def ident(item: dict[str, Any]) -> str:
        key = {
            "interaction": "id",
            "response": "response_id",
            "case": "case_id",
            "task": "task_id",
            "action": "action_id",
        }[item["kind"]]
        return str(item[key])

    expected = sorted(
        [
            *(
                (ago(hours=h), "interaction", str(i))
                for h, i in zip(HOURS_AGO, story.interactions, strict=True)
            ),
            (ago(days=3), "response", str(story.responses["r_old"])),
            (ago(days=1), "response", str(story.responses["r_last"])),
            (ago(hours=20), "case", str(story.cases["due_soon"])),
            (ago(hours=50), "case", str(story.cases["late"])),
            (ago(days=9), "case", str(story.cases["closed"])),
            (ago(minutes=30), "task", str(story.tasks["open"])),
            (ago(hours=101), "task", str(story.tasks["done"])),
            (ago(days=2), "action", str(story.actions["taken"])),
            (ago(days=40), "action", str(story.actions["old"])),
        ]
    )
    assert [(at(i["at"]), i["kind"], ident(i)) for i in items] == expected

    done = next(i for i in items if i["kind"] == "task" and i["state"] == "completed")
    assert done["agent_id"] == str(story.agents["done"])
    assert done["outcome"] == {
        "resolved": True,
        "handle_seconds": 240.0,
        "wait_seconds": 30.0,
        "csat": None,
    }
    assert at(done["ended_at"]) == ago(hours=100)
    closed = next(i for i in items if i["kind"] == "case" and i["state"] == "closed")
    assert all(not clock["breached"] for clock in closed["clocks"])
    first_response = next(i for i in items if i["kind"] == "response")
    assert (first_response["score"], first_response["sentiment"]["label"]) == (5, "positive")

    # A window: from 4 days ago up to 12 hours ago.
    window = await journey.client.get(
        f"/v1/journey/customers/{CUSTOMER}/timeline",
        params={"from": ago(days=4).isoformat(), "to": ago(hours=12).isoformat()},
        headers=AGENT,
    )
    assert window.status_code == 200, window.text
    assert [(at(i["at"]), i["kind"]) for i in window.json()["items"]] == [
        (at, kind) for at, kind, _ in expected if ago(days=4) <= at < ago(hours=12)
    ]


async def test_another_tenant_sees_none_of_it(journey: RunningService, story: Story) -> None:
    zeta = auth("zeta", Role.AGENT)
    by_id = await journey.client.get(
        "/v1/journey/customers/context", params={"customer_id": CUSTOMER}, headers=zeta
    )
    by_phone = await journey.client.get(
        "/v1/journey/customers/context", params={"identifier": "phone:+34600111222"}, headers=zeta
    )
    timeline = await journey.client.get(f"/v1/journey/customers/{CUSTOMER}/timeline", headers=zeta)
    assert (by_id.status_code, by_phone.status_code, timeline.status_code) == (404, 404, 404)
    # And zeta's feedback about its own crm-1 is not Ana's.
    context = await get_context(journey, customer_id=CUSTOMER)
    assert context["last_feedback"]["response_id"] == str(story.responses["r_last"])


async def test_unknown_customers_and_bad_identifiers_are_named(
    journey: RunningService, story: Story
) -> None:
    path = "/v1/journey/customers/context"
    unknown = await journey.client.get(
        path, params={"identifier": "phone:+34600999999"}, headers=AGENT
    )
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")
    assert "phone:+34600999999" in unknown.json()["detail"]
    missing = await journey.client.get("/v1/journey/customers/nobody/timeline", headers=AGENT)
    assert missing.status_code == 404 and "nobody" in missing.json()["detail"]

    for params in (
        {"identifier": "phone"},
        {"identifier": "email:not-an-email"},
        {"identifier": "Phone:+34600111222"},
        {},
        {"identifier": "phone:+34600111222", "customer_id": CUSTOMER},
    ):
        answer = await journey.client.get(path, params=params, headers=AGENT)
        assert answer.status_code == 422, (params, answer.text)
        assert [e["field"] for e in answer.json()["errors"]] == ["identifier"], params

    backwards = await journey.client.get(
        f"/v1/journey/customers/{CUSTOMER}/timeline",
        params={"from": NOW.isoformat(), "to": ago(days=1).isoformat()},
        headers=AGENT,
    )
    assert backwards.status_code == 422
    assert [e["field"] for e in backwards.json()["errors"]] == ["to"]
    unreadable = await journey.client.get(
        f"/v1/journey/customers/{CUSTOMER}/timeline", params={"from": "yesterday"}, headers=AGENT
    )
    assert unreadable.status_code == 422
    assert [e["field"] for e in unreadable.json()["errors"]] == ["from"]

    viewer = await journey.client.get(
        path, params={"customer_id": CUSTOMER}, headers=auth(TENANT, Role.VIEWER)
    )
    assert viewer.status_code == 403


async def test_a_national_number_finds_the_customer_under_the_services_country_code(
    start_journey: StartJourney,
) -> None:
    """Looked up as identity resolution stores it: with ``identity_country_code`` 34, the
    national ``600 111 222`` is Ana's ``+34600111222``, for the context as for the customers'
    lookup."""
    async with start_journey(identity_country_code="34") as journey:
        await store_customer(
            journey,
            tenant=TENANT,
            customer_id=CUSTOMER,
            identifiers={"phone": "+34600111222"},
            interactions=[{"occurred_at": ago(hours=1)}],
        )
        national = {"identifier": "phone:600 111 222"}
        context = await journey.client.get(
            "/v1/journey/customers/context", params=national, headers=AGENT
        )
        found = await journey.client.get("/v1/journey/customers", params=national, headers=AGENT)

    assert context.status_code == 200, context.text
    assert context.json()["customer"]["id"] == CUSTOMER
    assert [customer["id"] for customer in found.json()["items"]] == [CUSTOMER]
