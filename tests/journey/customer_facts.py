"""Other services' events as their publishers' own models produce them, published on real
CX_FEEDBACK and CX_ROUTING streams, for journey's projection and the customer's story; and
journey's tables written directly where the lead's intake would write them."""

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from nats.aio.client import Client as NatsClient
from nats.js.api import StreamConfig
from uuid6 import uuid7

from cxops.feedback import events as feedback_events
from cxops.journey.models import (
    Customer,
    CustomerIdentifier,
    Interaction,
    ProactiveAction,
)
from cxops.routing import events as routing_events
from tests.support.services import (
    RunningService,
    consumer_caught_up,
    publish_event,
)

FEEDBACK_DURABLE = "journey-feedback-facts"
ROUTING_DURABLE = "journey-routing-facts"


@pytest.fixture
async def streams(nats_client: NatsClient) -> None:
    """CX_FEEDBACK and CX_ROUTING as their services would provision them."""
    for name, subjects in (("CX_FEEDBACK", "cx.feedback.>"), ("CX_ROUTING", "cx.routing.>")):
        await nats_client.jetstream().add_stream(
            StreamConfig(name=name, subjects=[subjects], duplicate_window=120)
        )


class Publisher:
    """Publishes feedback's and routing's events and waits for journey to have handled them."""

    def __init__(self, nats_client: NatsClient) -> None:
        self.nats = nats_client
        self.last = {"CX_FEEDBACK": 0, "CX_ROUTING": 0}

    async def publish(self, subject: str, payload: Any, *, tenant: str, **options: Any) -> None:
        data = payload.model_dump(mode="json")
        stream = "CX_FEEDBACK" if subject.startswith("cx.feedback.") else "CX_ROUTING"
        self.last[stream] = await publish_event(self.nats, subject, data, tenant=tenant, **options)

    async def settled(self) -> None:
        for stream, durable in (("CX_FEEDBACK", FEEDBACK_DURABLE), ("CX_ROUTING", ROUTING_DURABLE)):
            if self.last[stream]:
                await consumer_caught_up(self.nats, stream, durable, self.last[stream])


def response_received(
    response_id: uuid.UUID, *, customer_ref: str, at: datetime, score: int = 2, **fields: Any
) -> feedback_events.ResponseReceivedV1:
    return feedback_events.ResponseReceivedV1(
        response_id=response_id,
        kind="csat",
        score=score,
        customer_ref=customer_ref,
        channel="email",
        occurred_at=at,
        received_at=at + timedelta(seconds=5),
        has_comment=True,
        **fields,
    )


def response_enriched(
    response_id: uuid.UUID,
    *,
    customer_ref: str,
    at: datetime,
    score: int = 2,
    comment: str = "Refund still missing, write to [EMAIL]",
    sentiment: str = "negative",
) -> feedback_events.ResponseEnrichedV1:
    return feedback_events.ResponseEnrichedV1.model_validate(
        {
            "response_id": response_id,
            "kind": "csat",
            "score": score,
            "customer_ref": customer_ref,
            "channel": "email",
            "occurred_at": at,
            "comment": comment,
            "language": "en",
            "sentiment": {"label": sentiment, "score": -0.7, "confidence": 0.9},
            "topics": [
                {
                    "topic": "refund",
                    "confidence": 0.8,
                    "owner": "billing",
                    "sentiment": None,
                }
            ],
            "needs_review": False,
            "review_reasons": [],
            "taxonomy_version": 1,
        }
    )


def case_event(
    subject: str,
    case_id: uuid.UUID,
    *,
    customer_ref: str,
    opened_at: datetime,
    at: datetime,
    state: str,
    round: int = 1,
    **fields: Any,
) -> Any:
    """A case event of ``subject`` about a case opened at ``opened_at``, changed ``at``; the
    clocks 24 h, 72 h and 120 h from the feedback (an hour before the opening)."""
    feedback_at = opened_at - timedelta(hours=1)
    return feedback_events.CASE_EVENTS[subject].model_validate(
        {
            "case_id": case_id,
            "response_id": uuid.uuid4(),
            "state": state,
            "team": "billing",
            "owner": None,
            "topic": "refund",
            "customer_ref": customer_ref,
            "tier": "gold",
            "rule": "negative-csat",
            "round": round,
            "by": "system",
            "feedback_at": feedback_at,
            "opened_at": opened_at,
            "acknowledge_due_at": feedback_at + timedelta(hours=24),
            "action_due_at": feedback_at + timedelta(hours=72),
            "close_due_at": feedback_at + timedelta(hours=120),
            "root_cause": None,
            "seconds_since_feedback": (at - feedback_at).total_seconds(),
            "seconds_since_open": (at - opened_at).total_seconds(),
            **fields,
        }
    )


def task_created(
    task_id: uuid.UUID, *, customer_ref: str | None, at: datetime
) -> routing_events.TaskCreatedV1:
    return routing_events.TaskCreatedV1(
        task_id=task_id,
        external_id=f"t-{task_id}",
        queue="billing",
        channel="chat",
        priority=0,
        tier="gold",
        customer_ref=customer_ref,
        case_id=None,
        created_at=at,
    )


def task_assigned(
    task_id: uuid.UUID, agent_id: uuid.UUID, *, at: datetime
) -> routing_events.TaskAssignedV1:
    return routing_events.TaskAssignedV1(
        task_id=task_id,
        reservation_id=uuid.uuid4(),
        agent_id=agent_id,
        team="billing",
        queue="billing",
        channel="chat",
        wait_seconds=30.0,
        assigned_at=at,
    )


def task_completed(
    task_id: uuid.UUID, agent_id: uuid.UUID, *, customer_ref: str | None, at: datetime
) -> routing_events.TaskCompletedV1:
    return routing_events.TaskCompletedV1(
        task_id=task_id,
        agent_id=agent_id,
        team="billing",
        queue="billing",
        channel="chat",
        tier="gold",
        customer_ref=customer_ref,
        case_id=None,
        wait_seconds=30.0,
        handle_seconds=240.0,
        resolved=True,
        csat=None,
        completed_at=at,
    )


async def store_customer(
    journey: RunningService,
    *,
    tenant: str,
    customer_id: str,
    identifiers: dict[str, str],
    interactions: list[dict[str, Any]],
) -> list[uuid.UUID]:
    """A resolved profile holding ``identifiers`` (normalised values) and its interactions
    (``occurred_at``, ``channel``, ``activity``, ``stage``...), as identity resolution stores
    them; the interactions' ids."""
    times = [item["occurred_at"] for item in interactions]
    ids = []
    async with journey.db.transaction() as session:
        session.add(
            Customer(
                tenant=tenant,
                id=customer_id,
                identifiers=[{"type": t, "value": v} for t, v in identifiers.items()],
                merges=[],
                refusals=[],
                interactions=len(interactions),
                first_seen=min(times),
                last_seen=max(times),
                updated_at=max(times),
            )
        )
        for type_, value in identifiers.items():
            session.add(
                CustomerIdentifier(tenant=tenant, type=type_, value=value, customer_id=customer_id)
            )
        for item in interactions:
            interaction = Interaction(
                id=uuid7(),
                tenant=tenant,
                external_id=f"{customer_id}-{len(ids)}",
                received_at=item["occurred_at"],
                channel=item.get("channel", "phone"),
                activity=item.get("activity", "call"),
                team=item.get("team"),
                stage=item.get("stage"),
                identifiers=identifiers,
                attributes=item.get("attributes", {}),
                customer_id=customer_id,
                occurred_at=item["occurred_at"],
            )
            session.add(interaction)
            ids.append(interaction.id)
    return ids


async def store_action(
    journey: RunningService,
    *,
    tenant: str,
    customer_id: str,
    trigger_key: str,
    outcome: str,
    at: datetime,
) -> uuid.UUID:
    action_id = uuid7()
    async with journey.db.transaction() as session:
        session.add(
            ProactiveAction(
                id=action_id,
                tenant=tenant,
                customer_id=customer_id,
                trigger_key=trigger_key,
                trigger_version=1,
                outcome=outcome,
                # One per decision: the action log allows one settled row per dedupe key.
                dedupe_key=f"{trigger_key}:{customer_id}:{action_id}",
                actions=[{"type": "notify"}] if outcome == "taken" else [],
                at=at,
            )
        )
    return action_id
