"""Proactive triggers in the running journey service, on both databases with real NATS:
interactions published on CX_JOURNEY as the intake's relay would, the action log, the events a
treatment publishes, caps and quiet hours under a clock the test moves, the holdout across a
restart, history patterns, the effect and the dry run, versions, tenant isolation and bad
input; and a create_task that lands as a task in the routing service on the same NATS."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from nats.aio.client import Client as NatsClient
from sqlalchemy.ext.asyncio import AsyncSession

from cxops.cli.nats_server import NatsServer
from cxops.common.auth import Role
from cxops.common.migrations import upgrade
from cxops.journey.domain.triggers import Decision, Outcome, in_holdout
from cxops.journey.events import (
    HANDOFF_DELAYED,
    INTERACTION_RECORDED,
    PUBLISHED,
    TASK_REQUESTED,
    TRIGGER_FIRED,
    FiringInteraction,
    HandoffDelayedV1,
)
from cxops.journey.models import JourneyTable
from cxops.journey.triggers import Match, TriggerRepository, Triggers, act, as_rule
from tests.journey.conftest import StartJourney
from tests.support.clock import ManualClock
from tests.support.services import (
    RunningService,
    auth,
    consumer_caught_up,
    eventually,
    publish_event,
    published,
    running,
    settings_for,
)

TENANT = "acme"
ADMIN = auth(TENANT)
STREAM = "CX_JOURNEY"
INTERACTIONS_DURABLE = "journey-trigger-interactions"
HANDOFFS_DURABLE = "journey-trigger-handoffs"
#: A Monday, noon UTC: outside the default quiet hours (21:00 to 08:00).
NOON = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)

DELAYED = {
    "when": {
        "interaction": {"activity": "shipment_delayed", "attributes": {"delay_hours": {">=": 24}}}
    },
    "then": [
        {"type": "notify"},
        {"type": "create_task", "queue": "logistics", "priority": 5},
        {"type": "offer_gesture", "kind": "voucher", "value": 10},
    ],
    "budget": {"value": 15, "days": 30},
}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOON)


@pytest.fixture
async def journey(start_journey: StartJourney, clock: ManualClock) -> AsyncIterator[RunningService]:
    async with start_journey(clock=clock) as service:
        yield service


# --- helpers -------------------------------------------------------------------------------


async def put_trigger(
    journey: RunningService, key: str, body: dict[str, Any], tenant: str = TENANT
) -> dict[str, Any]:
    answer = await journey.client.put(
        f"/v1/journey/triggers/{key}", headers=auth(tenant), json=body
    )
    assert answer.status_code in (200, 201), answer.text
    return dict(answer.json())


def recorded(
    activity: str,
    *,
    customer_id: str | None = "cust-1",
    attributes: dict[str, Any] | None = None,
    at: datetime = NOON,
) -> dict[str, Any]:
    """An ``interaction.recorded`` payload as the intake publishes it."""
    return {
        "interaction_id": str(uuid.uuid4()),
        "external_id": f"ext-{uuid.uuid4()}",
        "occurred_at": at.isoformat(),
        "identifiers": {"crm_id": "crm-1"},
        "channel": "web",
        "activity": activity,
        "team": None,
        "stage": None,
        "attributes": attributes or {},
        "customer_id": customer_id,
        "received_at": at.isoformat(),
    }


async def publish_all(
    journey: RunningService,
    nats_client: NatsClient,
    payloads: list[dict[str, Any]],
    *,
    tenant: str = TENANT,
    subject: str = INTERACTION_RECORDED,
    durable: str = INTERACTIONS_DURABLE,
) -> None:
    """Publish each and wait until the trigger consumer has settled them all."""
    js = nats_client.jetstream()
    await eventually(lambda: js.stream_info(STREAM), what="the CX_JOURNEY stream")
    last = 0
    for payload in payloads:
        last = await publish_event(nats_client, subject, payload, tenant=tenant)
    await consumer_caught_up(nats_client, STREAM, durable, last)


async def action_log(journey: RunningService, tenant: str = TENANT) -> list[dict[str, Any]]:
    async with journey.db.sessionmaker() as session:
        rows = await session.execute(
            sa.text(
                "SELECT customer_id, trigger_key, trigger_version, outcome, dedupe_key, actions"
                " FROM journey_proactive_actions WHERE tenant = :tenant ORDER BY at, id"
            ),
            {"tenant": tenant},
        )
        found = [dict(row._mapping) for row in rows]
    for row in found:
        if isinstance(row["actions"], str):
            row["actions"] = json.loads(row["actions"])
    return found


async def insert(journey: RunningService, table: str, rows: list[dict[str, Any]]) -> None:
    async with journey.db.sessionmaker() as session, session.begin():
        await session.execute(sa.insert(JourneyTable.metadata.tables[table]), rows)


async def customer(journey: RunningService, customer_id: str, crm_id: str) -> None:
    await insert(
        journey,
        "journey_customer_identifiers",
        [{"tenant": TENANT, "type": "crm_id", "value": crm_id, "customer_id": customer_id}],
    )


def stored_interaction(
    customer_id: str, activity: str, at: datetime, **attributes: Any
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "tenant": TENANT,
        "external_id": f"ext-{uuid.uuid4()}",
        "occurred_at": at,
        "received_at": at,
        "channel": "phone",
        "activity": activity,
        "team": None,
        "stage": None,
        "identifiers": {},
        "attributes": attributes,
        "customer_id": customer_id,
    }


def real_contact(customer_id: str, trigger_key: str, at: datetime) -> dict[str, Any]:
    """A treatment in the action log, as a live decision stores it."""
    return {
        "id": uuid.uuid4(),
        "tenant": TENANT,
        "customer_id": customer_id,
        "trigger_key": trigger_key,
        "trigger_version": 1,
        "outcome": "taken",
        "dedupe_key": f"{trigger_key}:{at.date().isoformat()}",
        "actions": [{"type": "notify"}],
        "interaction_id": None,
        "at": at,
    }


def fact(kind: str, ref: str, at: datetime, state: str, /, **payload: Any) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "tenant": TENANT,
        "kind": kind,
        "ref_id": f"{kind}-{uuid.uuid4()}",
        "customer_ref": ref,
        "occurred_at": at,
        "state": state,
        "payload": payload,
        "last_event_at": at,
    }


# --- firing --------------------------------------------------------------------------------


async def test_a_delayed_shipment_fires_once_and_not_twice(
    journey: RunningService, nats_client: NatsClient
) -> None:
    trigger = await put_trigger(journey, "late-shipment", DELAYED)
    assert trigger["version"] == 1
    await customer(journey, "cust-1", "crm-1")
    shipment = {"delay_hours": 30, "shipment_id": "S1"}
    await publish_all(
        journey,
        nats_client,
        [
            recorded("shipment_delayed", attributes=shipment),
            # The same shipment reported again, later and later still: nothing more.
            recorded("shipment_delayed", attributes={**shipment, "delay_hours": 48}),
            # Not late enough, another activity, and a customer not yet resolved.
            recorded("shipment_delayed", attributes={"delay_hours": 5, "shipment_id": "S2"}),
            recorded("order_delivered", attributes=shipment),
            recorded(
                "shipment_delayed", customer_id=None, attributes={**shipment, "shipment_id": "S3"}
            ),
        ],
    )

    log = await action_log(journey)
    assert [(r["outcome"], r["dedupe_key"]) for r in log] == [
        ("taken", "late-shipment:shipment_id:S1"),
        ("duplicate", "late-shipment:shipment_id:S1"),
    ]
    assert log[0]["actions"][2] == {
        "type": "offer_gesture",
        "kind": "voucher",
        "value": "10",
        "offered": True,
    }

    [fired_event] = await published(journey, nats_client, TRIGGER_FIRED, models=PUBLISHED)
    fired = fired_event.data
    assert (fired["trigger_key"], fired["trigger_version"]) == ("late-shipment", 1)
    assert (fired["customer_id"], fired["customer_ref"]) == ("cust-1", "crm-1")
    assert fired["dedupe_key"] == "late-shipment:shipment_id:S1"
    assert [a["type"] for a in fired["actions"]] == ["notify", "create_task", "offer_gesture"]
    assert fired["interaction"]["activity"] == "shipment_delayed"
    assert fired["interaction"]["attributes"] == shipment
    [task_event] = await published(journey, nats_client, TASK_REQUESTED, models=PUBLISHED)
    task = task_event.data
    assert (task["queue"], task["priority"], task["action_id"]) == (
        "logistics",
        5,
        fired["action_id"],
    )

    # A second shipment: treated, but the gesture would pass the budget (10 + 10 > 15).
    await publish_all(
        journey,
        nats_client,
        [recorded("shipment_delayed", attributes={"delay_hours": 24, "shipment_id": "S4"})],
    )
    last = (await action_log(journey))[-1]
    assert last["outcome"] == "taken"
    assert last["actions"][2] == {
        "type": "offer_gesture",
        "kind": "voucher",
        "value": "10",
        "offered": False,
        "reason": "over_budget",
    }

    # Disabled, it decides nothing more.
    disabled = await put_trigger(journey, "late-shipment", {**DELAYED, "enabled": False})
    assert disabled["version"] == 2 and disabled["enabled"] is False
    await publish_all(
        journey,
        nats_client,
        [recorded("shipment_delayed", attributes={"delay_hours": 24, "shipment_id": "S5"})],
    )
    assert len(await action_log(journey)) == 3


async def test_caps_and_quiet_hours_follow_the_clock(
    journey: RunningService, nats_client: NatsClient, clock: ManualClock
) -> None:
    limits = {
        "max_contacts": 1,
        "per_days": 7,
        "quiet_hours": {"start": "21:00", "end": "08:00"},
        "timezone": "UTC",
    }
    put = await journey.client.put("/v1/journey/trigger-settings", headers=ADMIN, json=limits)
    assert put.status_code == 200, put.text
    assert (
        await journey.client.get("/v1/journey/trigger-settings", headers=ADMIN)
    ).json() == limits
    await put_trigger(journey, "late-shipment", {**DELAYED, "then": [{"type": "notify"}]})

    def late(shipment: str, **more: Any) -> dict[str, Any]:
        return recorded(
            "shipment_delayed", attributes={"delay_hours": 30, "shipment_id": shipment, **more}
        )

    await publish_all(journey, nats_client, [late("S1"), late("S2")])
    clock.advance(timedelta(days=8, hours=10))  # Tuesday 22:00 UTC: the cap has passed
    await publish_all(journey, nats_client, [late("S3")])
    clock.advance(timedelta(hours=15))  # Wednesday 13:00 UTC, 22:00 in Tokyo
    await publish_all(
        journey, nats_client, [late("S5", timezone="Asia/Tokyo"), late("S4"), late("S3")]
    )

    outcomes = [
        (r["dedupe_key"].rsplit(":", 1)[1], r["outcome"]) for r in await action_log(journey)
    ]
    assert outcomes == [
        ("S1", "taken"),
        ("S2", "capped"),
        ("S3", "quiet"),
        ("S5", "quiet"),  # night in Tokyo, though not in UTC
        ("S4", "taken"),
        ("S3", "capped"),  # the quiet match did not settle S3, but S4 used the week's contact
    ]
    assert len(await published(journey, nats_client, TRIGGER_FIRED, models=PUBLISHED)) == 2


async def test_the_holdout_is_stable_across_a_restart(
    start_journey: StartJourney, nats_client: NatsClient, clock: ManualClock
) -> None:
    customers = [f"cust-{n}" for n in range(16)]
    expected = {c: in_holdout(TENANT, "late-shipment", c, 40) for c in customers}
    assert 0 < sum(expected.values()) < len(customers)

    def late(customer_id: str, shipment: str) -> dict[str, Any]:
        return recorded(
            "shipment_delayed",
            customer_id=customer_id,
            attributes={"delay_hours": 30, "shipment_id": shipment},
        )

    seen = []
    for round_ in ("A", "B"):  # each round a freshly started service
        async with start_journey(clock=clock) as journey:
            if round_ == "A":
                await put_trigger(journey, "late-shipment", {**DELAYED, "holdout_percent": 40})
            await publish_all(journey, nats_client, [late(c, round_) for c in customers])
            log = await action_log(journey)
            seen.append(
                {r["customer_id"]: r["outcome"] for r in log if r["dedupe_key"].endswith(round_)}
            )
            held = [r for r in log if r["outcome"] == "held_out"]
            assert all(r["actions"] == [] for r in held)
        clock.advance(timedelta(days=8))  # past the cap
    assert seen[0] == seen[1] == {c: "held_out" if expected[c] else "taken" for c in customers}


async def test_history_patterns_fire(
    journey: RunningService, nats_client: NatsClient, clock: ManualClock
) -> None:
    await put_trigger(
        journey,
        "third-contact",
        {"when": {"repeat_contacts": {"count": 3, "days": 7}}, "then": [{"type": "notify"}]},
    )
    await put_trigger(
        journey,
        "angry-open-case",
        {"when": {"negative_feedback_while_case_open": {}}, "then": [{"type": "notify"}]},
    )
    await put_trigger(
        journey,
        "overdue",
        {
            "when": {"stage_overdue": {"map": "onboarding"}},
            "then": [{"type": "invite_survey", "survey": "onboarding-pulse"}],
        },
    )
    # cust-1: two stored contacts this week, one nine days ago; cust-2: an open case and a
    # detractor's answer after it; cust-3: the same, but the case is closed.
    await insert(
        journey,
        "journey_interactions",
        [
            stored_interaction("cust-1", "call", NOON - timedelta(days=9)),
            stored_interaction("cust-1", "call", NOON - timedelta(days=3)),
            stored_interaction("cust-1", "chat", NOON - timedelta(days=1)),
        ],
    )
    for n in (1, 2, 3):
        await customer(journey, f"cust-{n}", f"crm-{n}")
    await insert(
        journey,
        "journey_customer_facts",
        [
            fact("case", "crm-2", NOON - timedelta(days=2), "acknowledged"),
            fact("response", "crm-2", NOON - timedelta(days=1), "received", kind="nps", score=2),
            fact("case", "crm-3", NOON - timedelta(days=2), "closed"),
            fact("response", "crm-3", NOON - timedelta(days=1), "received", kind="nps", score=2),
        ],
    )
    await publish_all(
        journey,
        nats_client,
        [recorded("email", customer_id=f"cust-{n}") for n in (1, 2, 3)],
    )
    # As the maps' timer publishes it.
    delayed = HandoffDelayedV1(
        map_key="onboarding",
        map_version=1,
        customer_id="cust-3",
        from_stage="kyc",
        to_stage="active",
        entered_at=datetime(2026, 11, 30, 8, tzinfo=UTC),
        deadline=datetime(2026, 11, 30, 9, tzinfo=UTC),
        sla_seconds=3600.0,
        owner_team="onboarding",
    ).model_dump(mode="json")
    elsewhere = {**delayed, "map_key": "billing", "customer_id": "cust-2"}
    await publish_all(
        journey,
        nats_client,
        [delayed, delayed, elsewhere],
        subject=HANDOFF_DELAYED,
        durable=HANDOFFS_DURABLE,
    )

    fired = sorted(
        (r["trigger_key"], r["customer_id"], r["outcome"]) for r in await action_log(journey)
    )
    assert fired == [
        ("angry-open-case", "cust-2", "taken"),
        ("overdue", "cust-3", "duplicate"),
        ("overdue", "cust-3", "taken"),
        ("third-contact", "cust-1", "taken"),
    ]


# --- effect and dry run --------------------------------------------------------------------


async def test_the_effect_against_hand_worked_numbers(journey: RunningService) -> None:
    """The scenario of the domain test: treated t1..t4 (one complaint; 0, 1, 1, 2 contacts
    after; NPS 10, 9, 7; a 5.00 voucher each to t1 and t2), held out h1..h4 (three complaints;
    2, 3, 3, 4 contacts; NPS 3 and 9). Facts and contacts outside the follow-up window, before
    the trigger or of other customers do not count."""
    await put_trigger(journey, "late-shipment", DELAYED)
    voucher = [{"type": "offer_gesture", "kind": "voucher", "value": "5.00", "offered": True}]
    decided_at = NOON - timedelta(days=20)
    plan = {
        "t1": ("taken", voucher, [], 0, [10]),
        "t2": ("taken", voucher, [], 1, [9]),
        "t3": ("taken", [], ["case"], 1, [7]),
        "t4": ("taken", [], [], 2, []),
        "h1": ("held_out", [], ["complaint"], 2, [3]),
        "h2": ("held_out", [], ["case"], 3, [9]),
        "h3": ("held_out", [], ["case", "complaint"], 3, []),
        "h4": ("held_out", [], [], 4, []),
    }
    actions, interactions, facts = [], [], []
    for name, (outcome, done, complaints, contacts, scores) in plan.items():
        await customer(journey, name, f"crm-{name}")
        actions.append(
            {
                "id": uuid.uuid4(),
                "tenant": TENANT,
                "customer_id": name,
                "trigger_key": "late-shipment",
                "trigger_version": 1,
                "outcome": outcome,
                "dedupe_key": f"late-shipment:shipment_id:{name}",
                "actions": done,
                "interaction_id": None,
                "at": decided_at,
            }
        )
        after = [decided_at + timedelta(days=1 + n) for n in range(contacts)]
        interactions += [stored_interaction(name, "call", t) for t in after]
        interactions.append(stored_interaction(name, "call", decided_at - timedelta(days=1)))
        interactions.append(stored_interaction(name, "call", decided_at + timedelta(days=9)))
        for kind in complaints:
            at = decided_at + timedelta(days=2)
            facts.append(
                fact("case", f"crm-{name}", at, "open")
                if kind == "case"
                else fact("response", f"crm-{name}", at, "enriched", kind="csat", score=1)
            )
        facts += [
            fact(
                "response",
                f"crm-{name}",
                decided_at + timedelta(days=3 + n),
                "received",
                kind="nps",
                score=s,
            )
            for n, s in enumerate(scores)
        ]
        # A complaint before the trigger and one after the window: neither counts.
        facts.append(fact("case", f"crm-{name}", decided_at - timedelta(days=1), "open"))
        facts.append(fact("case", f"crm-{name}", decided_at + timedelta(days=9), "open"))
    await insert(journey, "journey_proactive_actions", actions)
    await insert(journey, "journey_interactions", interactions)
    await insert(journey, "journey_customer_facts", facts)

    answer = await journey.client.get(
        "/v1/journey/triggers/late-shipment/effect",
        headers=ADMIN,
        params={
            "from": (decided_at - timedelta(days=1)).isoformat(),
            "to": NOON.isoformat(),
            "days": 7,
        },
    )
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert (found["treated"], found["held_out"], found["follow_up_days"]) == (4, 4, 7)
    complaints = found["complaints"]
    assert (complaints["held_out"], complaints["treated"], complaints["difference"]) == (
        0.75,
        0.25,
        -0.5,
    )
    assert complaints["p_value"] == pytest.approx(0.157299, abs=1e-5)
    # Wald interval: -0.5 -+ 1.959964 * sqrt(0.1875 / 4 * 2) = -0.5 -+ 0.600114
    assert complaints["interval"]["low"] == pytest.approx(-1.0)
    assert complaints["interval"]["high"] == pytest.approx(0.100114, abs=1e-5)
    repeat = found["repeat_contacts"]
    assert (repeat["held_out"], repeat["treated"], repeat["difference"]) == (3.0, 1.0, -2.0)
    assert repeat["p_value"] == pytest.approx(0.013385, abs=1e-4)
    nps = found["nps"]
    assert (nps["held_out"], nps["difference"]) == (0.0, pytest.approx(200 / 3))
    assert Decimal(found["gesture_cost"]) == Decimal("10")
    assert found["complaints_avoided"] == 2.0
    assert Decimal(found["cost_per_complaint_avoided"]) == Decimal("5.00")

    # A period to the end of time follows up as far as there is time.
    forever = await journey.client.get(
        "/v1/journey/triggers/late-shipment/effect",
        headers=ADMIN,
        params={"from": "0001-01-01T00:00:00Z", "to": "9999-12-31T23:59:59Z", "days": 365},
    )
    assert forever.status_code == 200, forever.text
    assert (forever.json()["treated"], forever.json()["held_out"]) == (4, 4)


async def test_a_dry_run_counts_and_stores_nothing(journey: RunningService) -> None:
    limits = {
        "max_contacts": 1,
        "per_days": 7,
        "quiet_hours": {"start": "21:00", "end": "08:00"},
        "timezone": "UTC",
    }
    assert (
        await journey.client.put("/v1/journey/trigger-settings", headers=ADMIN, json=limits)
    ).status_code == 200
    await put_trigger(journey, "late-shipment", {**DELAYED, "then": [{"type": "notify"}]})
    day1, day2 = NOON - timedelta(days=2), NOON - timedelta(days=1)
    await insert(
        journey,
        "journey_interactions",
        [
            # Day 1: c1 fires, then the same shipment again (duplicate), then another shipment
            # (capped); c2 fires at night (quiet); c3 is not late enough.
            stored_interaction("c1", "shipment_delayed", day1, delay_hours=30, shipment_id="S1"),
            stored_interaction(
                "c1",
                "shipment_delayed",
                day1 + timedelta(hours=1),
                delay_hours=40,
                shipment_id="S1",
            ),
            stored_interaction(
                "c1",
                "shipment_delayed",
                day1 + timedelta(hours=2),
                delay_hours=40,
                shipment_id="S2",
            ),
            stored_interaction(
                "c2", "shipment_delayed", day1.replace(hour=23), delay_hours=30, shipment_id="S3"
            ),
            stored_interaction("c3", "shipment_delayed", day1, delay_hours=3, shipment_id="S4"),
            # Day 2: c2 again in daylight fires; c4 fires. Outside the period: c5.
            stored_interaction("c2", "shipment_delayed", day2, delay_hours=30, shipment_id="S3"),
            stored_interaction("c4", "shipment_delayed", day2, delay_hours=30, shipment_id="S5"),
            stored_interaction(
                "c5",
                "shipment_delayed",
                NOON + timedelta(hours=1),
                delay_hours=30,
                shipment_id="S6",
            ),
        ],
    )
    # Real contacts: another trigger reached c4 an hour before its delay (so the replay finds
    # c4 at its cap), and this trigger itself reached c2 (left out: the replay stands in).
    await insert(
        journey,
        "journey_proactive_actions",
        [
            real_contact("c4", "welcome", day2 - timedelta(hours=1)),
            real_contact("c2", "late-shipment", day2 - timedelta(hours=1)),
        ],
    )
    answer = await journey.client.post(
        "/v1/journey/triggers/late-shipment/dry-run",
        headers=ADMIN,
        json={"from": (day1 - timedelta(hours=1)).isoformat(), "to": NOON.isoformat()},
    )
    assert answer.status_code == 200, answer.text
    run = answer.json()
    assert (run["customers"], run["fired"], run["capped"], run["quiet"], run["duplicate"]) == (
        2,
        2,
        2,
        1,
        1,
    )
    assert run["by_day"] == [
        {"day": "2026-12-05", "fired": 1, "capped": 1, "quiet": 1, "held_out": 0, "duplicate": 1},
        {"day": "2026-12-06", "fired": 1, "capped": 1, "quiet": 0, "held_out": 0, "duplicate": 0},
    ]
    assert await journey.count("journey_proactive_actions") == 2
    assert await journey.count("cx_outbox") == 0


# --- the resource --------------------------------------------------------------------------


async def test_versions_and_tenant_isolation(
    journey: RunningService, nats_client: NatsClient
) -> None:
    first = await put_trigger(journey, "late-shipment", DELAYED)
    again = await journey.client.put(
        "/v1/journey/triggers/late-shipment", headers=ADMIN, json=DELAYED
    )
    assert again.status_code == 200 and again.json()["version"] == 1
    changed = await put_trigger(journey, "late-shipment", {**DELAYED, "holdout_percent": 10})
    assert (first["version"], changed["version"], changed["holdout_percent"]) == (1, 2, 10)
    assert (await journey.client.get("/v1/journey/triggers/late-shipment", headers=ADMIN)).json()[
        "version"
    ] == 2
    assert [
        t["key"]
        for t in (await journey.client.get("/v1/journey/triggers", headers=ADMIN)).json()["items"]
    ] == ["late-shipment"]

    other = auth("other")
    assert (
        await journey.client.get("/v1/journey/triggers/late-shipment", headers=other)
    ).status_code == 404
    assert (await journey.client.get("/v1/journey/triggers", headers=other)).json() == {"items": []}
    period = {"from": "2026-12-01T00:00:00Z", "to": "2026-12-08T00:00:00Z"}
    effect = await journey.client.get(
        "/v1/journey/triggers/late-shipment/effect", headers=other, params=period
    )
    assert effect.status_code == 404
    dry = await journey.client.post(
        "/v1/journey/triggers/late-shipment/dry-run", headers=other, json=period
    )
    assert dry.status_code == 404
    # The other tenant's delayed shipment meets no trigger of its own: nothing fires.
    await publish_all(
        journey,
        nats_client,
        [recorded("shipment_delayed", attributes={"delay_hours": 30, "shipment_id": "S1"})],
        tenant="other",
    )
    assert await action_log(journey, "other") == [] and await action_log(journey) == []
    viewer = auth(TENANT, Role.VIEWER)
    assert (
        await journey.client.put("/v1/journey/triggers/x", headers=viewer, json=DELAYED)
    ).status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**DELAYED, "when": {}}, "when"),
        (
            {
                **DELAYED,
                "when": {"repeat_contacts": {"count": 3, "days": 7}, "stage_overdue": {"map": "m"}},
            },
            "when",
        ),
        (
            {**DELAYED, "when": {"interaction": {"activity": "x", "attributes": {"d": {"~": 1}}}}},
            "when.interaction.attributes.d.~.[key]",
        ),
        (
            {
                **DELAYED,
                "when": {"interaction": {"activity": "x", "attributes": {"d": {">=": "24"}}}},
            },
            "when.interaction.attributes",
        ),
        (
            {**DELAYED, "when": {"repeat_contacts": {"count": "3", "days": 7}}},
            "when.repeat_contacts.count",
        ),
        ({**DELAYED, "then": []}, "then"),
        ({**DELAYED, "then": [{"type": "call_them"}]}, "then.0"),
        ({**DELAYED, "then": [{"type": "create_task"}]}, "then.0.create_task.queue"),
        ({k: v for k, v in DELAYED.items() if k != "budget"}, "budget"),
        ({**DELAYED, "holdout_percent": 80}, "holdout_percent"),
        ({**DELAYED, "surprise": 1}, "surprise"),
    ],
)
async def test_a_bad_trigger_is_422_naming_the_field(
    journey: RunningService, body: dict[str, Any], field: str
) -> None:
    answer = await journey.client.put(
        "/v1/journey/triggers/late-shipment", headers=ADMIN, json=body
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert field in answer.text
    assert await journey.count("journey_triggers") == 0


# --- create_task, through routing ----------------------------------------------------------


@pytest.fixture
async def routing_service(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path, nats_server: NatsServer
) -> AsyncIterator[RunningService]:
    """Routing on a database of its own, of the same kind as journey's, on the same NATS."""
    from cxops.routing.app import SPEC as ROUTING
    from cxops.routing.app import create_app as create_routing
    from cxops.routing.settings import RoutingSettings

    if database_url.startswith("sqlite"):
        url = f"sqlite+aiosqlite:///{tmp_path / 'routing.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database()
    await upgrade(url, ROUTING.migrations)
    settings = settings_for(RoutingSettings, database_url=url, nats_url=nats_server.url)
    async with running(create_routing(settings)) as service:
        yield service


async def test_create_task_lands_as_a_routing_task(
    journey: RunningService, routing_service: RunningService, nats_client: NatsClient
) -> None:
    queue = await routing_service.client.post(
        "/v1/routing/queues",
        headers=ADMIN,
        json={"name": "logistics", "channel": "phone", "requires": {"logistics": 1}},
    )
    assert queue.status_code == 201, queue.text
    await put_trigger(journey, "late-shipment", DELAYED)
    await customer(journey, "cust-1", "crm-1")
    late = {"delay_hours": 30, "shipment_id": "S1"}
    await publish_all(
        journey,
        nats_client,
        [
            recorded("shipment_delayed", attributes=late),
            recorded("shipment_delayed", attributes=late),
        ],
    )
    [fired_event] = await published(journey, nats_client, TRIGGER_FIRED, models=PUBLISHED)
    fired = fired_event.data

    async def tasks() -> list[dict[str, Any]]:
        listed = await routing_service.client.get("/v1/routing/tasks", headers=ADMIN)
        return list(listed.json())

    [task] = await eventually(tasks, what="the trigger's task in routing")
    assert task["external_id"] == f"journey-{fired['action_id']}"
    assert (task["queue"], task["priority"], task["customer_ref"]) == ("logistics", 5, "crm-1")
    await consumer_caught_up(
        nats_client,
        STREAM,
        "routing-journey-tasks",
        (await nats_client.jetstream().stream_info(STREAM)).state.last_seq,
    )
    assert await routing_service.count("routing_tasks") == 1


async def test_contact_limits_are_per_tenant_and_checked(journey: RunningService) -> None:
    defaults = (await journey.client.get("/v1/journey/trigger-settings", headers=ADMIN)).json()
    assert defaults == {
        "max_contacts": 3,
        "per_days": 7,
        "quiet_hours": {"start": "21:00", "end": "08:00"},
        "timezone": "UTC",
    }
    limits = {**defaults, "max_contacts": 1, "timezone": "Europe/Madrid"}
    bad = await journey.client.put(
        "/v1/journey/trigger-settings", headers=ADMIN, json={**limits, "timezone": "Mars/Olympus"}
    )
    assert bad.status_code == 422 and "timezone" in bad.text
    late = {**limits, "quiet_hours": {"start": "25:00", "end": "08:00"}}
    bad = await journey.client.put("/v1/journey/trigger-settings", headers=ADMIN, json=late)
    assert bad.status_code == 422 and "quiet_hours.start" in bad.text
    assert await journey.count("journey_trigger_settings") == 0

    put = await journey.client.put("/v1/journey/trigger-settings", headers=ADMIN, json=limits)
    assert put.status_code == 200, put.text
    assert (
        await journey.client.get("/v1/journey/trigger-settings", headers=ADMIN)
    ).json() == limits
    other = await journey.client.get("/v1/journey/trigger-settings", headers=auth("other"))
    assert other.json() == defaults


async def test_decisions_of_a_tenant_take_turns(journey: RunningService) -> None:
    """Two replicas deciding at once: the second waits for the first's commit, so the budget
    it reads includes the gesture the first just offered (10 of 15: no room for 10 more)."""
    await put_trigger(journey, "late-shipment", DELAYED)
    triggers = journey.state.component(Triggers)
    async with journey.db.transaction() as session:
        row = await TriggerRepository(session, tenant=TENANT).latest("late-shipment")
    assert row is not None
    trigger = as_rule(row)

    async def decide(session: AsyncSession, customer_id: str, shipment: str) -> Decision:
        return await act(
            triggers,
            session,
            tenant=TENANT,
            customer_id=customer_id,
            match=Match(trigger, f"late-shipment:shipment_id:{shipment}"),
            interaction=FiringInteraction(
                interaction_id=None,
                external_id=None,
                activity="shipment_delayed",
                channel="web",
                occurred_at=NOON,
                attributes={"delay_hours": 30, "shipment_id": shipment},
            ),
        )

    async def decide_alone(customer_id: str, shipment: str) -> Decision:
        async with journey.db.transaction() as session:
            return await decide(session, customer_id, shipment)

    async with journey.db.transaction() as session:
        first = await decide(session, "cust-1", "S1")
        second = asyncio.create_task(decide_alone("cust-2", "S2"))
        await asyncio.sleep(0.5)
        assert not second.done(), "the second decision did not wait for the first's commit"
    later = await second
    assert first.outcome is later.outcome is Outcome.TAKEN
    assert first.actions[2]["offered"] is True
    assert (later.actions[2]["offered"], later.actions[2]["reason"]) == (False, "over_budget")
