"""Journey's projection of other services' facts, from their events published on real streams as
their own models produce them, on both databases: one fact per response, case and task, the
newest event deciding its state whatever order they arrive in, redeliveries changing nothing,
events without a customer dropped, each tenant's facts its own."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from nats.aio.client import Client as NatsClient

from cxops.feedback import events as feedback_events
from cxops.journey.models import CustomerFact
from cxops.routing import events as routing_events
from tests.journey.customer_facts import (
    Publisher,
    case_event,
    response_enriched,
    response_received,
    streams,
    task_assigned,
    task_completed,
    task_created,
)
from tests.support.services import RunningService, auth, eventually, publish_event

__all__ = ["streams"]

TENANT = "acme"
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


async def facts(journey: RunningService, tenant: str = TENANT) -> dict[str, dict[str, Any]]:
    """The tenant's facts by ``ref_id``: kind, customer_ref, state, payload and times."""
    statement = sa.select(
        CustomerFact.ref_id,
        CustomerFact.kind,
        CustomerFact.customer_ref,
        CustomerFact.state,
        CustomerFact.payload,
        CustomerFact.occurred_at,
        CustomerFact.last_event_at,
    ).where(CustomerFact.tenant == tenant)
    async with journey.db.sessionmaker() as session:
        rows = (await session.execute(statement)).mappings()
        return {row["ref_id"]: dict(row) for row in rows}


async def test_a_response_becomes_one_fact_with_what_enrichment_read(
    journey: RunningService, streams: None, nats_client: NatsClient
) -> None:
    publisher = Publisher(nats_client)
    response_id = uuid.uuid4()
    received = response_received(response_id, customer_ref="crm-1", at=T0, score=2)
    enriched = response_enriched(response_id, customer_ref="crm-1", at=T0, score=2)
    event_id = str(uuid.uuid4())
    await publisher.publish(
        feedback_events.RESPONSE_RECEIVED, received, tenant=TENANT, event_id=event_id
    )
    await publisher.publish(feedback_events.RESPONSE_ENRICHED, enriched, tenant=TENANT)
    # The same event redelivered under another message id changes nothing.
    await publisher.publish(
        feedback_events.RESPONSE_RECEIVED,
        received,
        tenant=TENANT,
        event_id=event_id,
        msg_id="again",
    )
    await publisher.settled()

    [fact] = (await facts(journey)).values()
    assert fact["ref_id"] == str(response_id)
    assert (fact["kind"], fact["customer_ref"], fact["state"]) == ("response", "crm-1", "enriched")
    assert fact["occurred_at"] == T0
    payload = fact["payload"]["fields"]
    assert payload["survey_kind"] == "csat" and payload["score"] == 2
    assert payload["comment"] == "Refund still missing, write to [EMAIL]"
    assert payload["sentiment"] == {"label": "negative", "score": -0.7, "confidence": 0.9}


async def test_enrichment_read_before_the_receipt_is_not_undone_by_it(
    journey: RunningService, streams: None, nats_client: NatsClient
) -> None:
    publisher = Publisher(nats_client)
    response_id = uuid.uuid4()
    await publisher.publish(
        feedback_events.RESPONSE_ENRICHED,
        response_enriched(response_id, customer_ref="crm-1", at=T0),
        tenant=TENANT,
    )
    await publisher.publish(
        feedback_events.RESPONSE_RECEIVED,
        response_received(response_id, customer_ref="crm-1", at=T0),
        tenant=TENANT,
    )
    await publisher.settled()

    [fact] = (await facts(journey)).values()
    assert fact["state"] == "enriched"
    assert fact["payload"]["fields"]["sentiment"]["label"] == "negative"
    assert fact["payload"]["fields"]["comment"].startswith("Refund")


async def test_a_late_older_case_event_does_not_overwrite_the_newer_state(
    journey: RunningService, streams: None, nats_client: NatsClient
) -> None:
    publisher = Publisher(nats_client)
    case_id = uuid.uuid4()
    common = {"customer_ref": "crm-1", "opened_at": T0}
    closed_at = T0 + timedelta(hours=30)
    # Closed; then the older events arrive: the opening, and the breach of the acknowledge
    # clock (due 23 h after the opening, acknowledged 25 h after it).
    await publisher.publish(
        feedback_events.CASE_CLOSED,
        case_event(
            feedback_events.CASE_CLOSED,
            case_id,
            **common,
            at=closed_at,
            state="closed",
            owner="ana",
            acknowledged_after_seconds=26 * 3600.0,
            action_documented_after_seconds=28 * 3600.0,
            closed_after_seconds=31 * 3600.0,
            customer_contacted=True,
        ),
        tenant=TENANT,
    )
    await publisher.publish(
        feedback_events.CASE_OPENED,
        case_event(feedback_events.CASE_OPENED, case_id, **common, at=T0, state="open"),
        tenant=TENANT,
    )
    breached_at = T0 + timedelta(hours=23)
    await publisher.publish(
        feedback_events.CASE_BREACHED,
        case_event(
            feedback_events.CASE_BREACHED,
            case_id,
            **common,
            at=breached_at,
            state="open",
            clock="acknowledge",
            deadline=breached_at,
            breach_round=1,
        ),
        tenant=TENANT,
    )
    await publisher.settled()

    [fact] = (await facts(journey)).values()
    assert (fact["kind"], fact["state"]) == ("case", "closed")
    assert fact["last_event_at"] == closed_at
    assert fact["occurred_at"] == T0
    payload = fact["payload"]["fields"]
    assert payload["owner"] == "ana" and payload["customer_contacted"] is True
    assert payload["closed_after_seconds"] == 31 * 3600.0
    assert fact["payload"]["breaches"] == [
        {"clock": "acknowledge", "deadline": breached_at.isoformat(), "round": 1}
    ]


async def test_a_task_follows_routing_and_its_late_creation_only_fills_in(
    journey: RunningService, streams: None, nats_client: NatsClient
) -> None:
    publisher = Publisher(nats_client)
    task_id, agent_id = uuid.uuid4(), uuid.uuid4()
    created = task_created(task_id, customer_ref="crm-1", at=T0)
    await publisher.publish(routing_events.TASK_CREATED, created, tenant=TENANT)
    await publisher.publish(
        routing_events.TASK_ASSIGNED,
        task_assigned(task_id, agent_id, at=T0 + timedelta(seconds=30)),
        tenant=TENANT,
    )
    await publisher.settled()
    [assigned] = (await facts(journey)).values()
    assert (assigned["state"], assigned["payload"]["fields"]["agent_id"]) == (
        "assigned",
        str(agent_id),
    )

    await publisher.publish(
        routing_events.TASK_COMPLETED,
        task_completed(task_id, agent_id, customer_ref="crm-1", at=T0 + timedelta(minutes=5)),
        tenant=TENANT,
    )
    # The creation again, late (a new event id): it changes no state.
    await publisher.publish(routing_events.TASK_CREATED, created, tenant=TENANT)
    await publisher.settled()

    [fact] = (await facts(journey)).values()
    assert (fact["kind"], fact["state"], fact["customer_ref"]) == ("task", "completed", "crm-1")
    assert fact["occurred_at"] == T0
    payload = fact["payload"]["fields"]
    assert payload["queue"] == "billing" and payload["channel"] == "chat"
    assert payload["handle_seconds"] == 240.0 and payload["resolved"] is True


async def test_events_without_a_customer_are_dropped_and_tenants_kept_apart(
    journey: RunningService, streams: None, nats_client: NatsClient
) -> None:
    publisher = Publisher(nats_client)
    anonymous, other = uuid.uuid4(), uuid.uuid4()
    await publisher.publish(
        routing_events.TASK_CREATED,
        task_created(anonymous, customer_ref=None, at=T0),
        tenant=TENANT,
    )
    # Its assignment names no customer either: nothing to attach it to.
    await publisher.publish(
        routing_events.TASK_ASSIGNED,
        task_assigned(anonymous, uuid.uuid4(), at=T0 + timedelta(seconds=5)),
        tenant=TENANT,
    )
    await publisher.publish(
        routing_events.TASK_CREATED, task_created(other, customer_ref="crm-1", at=T0), tenant="zeta"
    )
    await publisher.settled()

    assert await facts(journey) == {}
    [fact] = (await facts(journey, "zeta")).values()
    assert fact["ref_id"] == str(other)


async def test_an_unreadable_event_goes_to_the_dead_letters(
    journey: RunningService, streams: None, nats_client: NatsClient
) -> None:
    await publish_event(
        nats_client, feedback_events.CASE_OPENED, {"case_id": "x"}, tenant=TENANT, event_id="bad"
    )

    async def dead_lettered() -> list[dict[str, Any]] | None:
        listed = await journey.client.get("/v1/journey/ops/dead-letters", headers=auth(TENANT))
        assert listed.status_code == 200, listed.text
        return listed.json()["items"] or None

    [item] = await eventually(dead_lettered, what="the unreadable case in the dead letters")
    assert (item["event_id"], item["consumer"]) == ("bad", "journey-feedback-facts")
    assert await facts(journey) == {}
