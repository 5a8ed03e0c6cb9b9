"""POST /v1/journey/interactions and the customers it resolves, on SQLite and PostgreSQL with a
real NATS: batches answered per item, retries storing nothing twice, two channels joined into
one customer, lookups by any identifier, splits that later interactions respect, the events on
the stream, and tenants kept apart."""

import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from nats.aio.client import Client as NatsClient
from sqlalchemy.ext.asyncio import create_async_engine

from cxops.common.auth import Role
from cxops.common.errors import PROBLEM_MEDIA_TYPE
from cxops.journey.domain.identity import Event, Rules, resolve
from cxops.journey.events import (
    IDENTITIES_MERGED,
    INTERACTION_RECORDED,
    PUBLISHED,
    IdentitiesMergedV1,
    InteractionRecordedV1,
)
from cxops.journey.identity_store import customers, interactions
from tests.support.services import RunningService, auth, published

INTERACTIONS = "/v1/journey/interactions"
CUSTOMERS = "/v1/journey/customers"
TENANT = "acme"
OTHER = "globex"


def interaction(external_id: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "external_id": external_id,
        "occurred_at": "2026-11-30T09:30:00+01:00",
        "identifiers": {"email": "ana@mail.test-cx.com"},
        "channel": "web",
        "activity": "order placed",
        "attributes": {"order_id": "o-1"},
    }
    body.update(changes)
    return body


async def post(
    service: RunningService, body: Any, tenant: str = TENANT, role: Role = Role.INTEGRATION
) -> Any:
    return await service.client.post(
        INTERACTIONS, content=json.dumps(body), headers=auth(tenant, role)
    )


async def test_two_channels_join_into_one_customer_with_the_merge_recorded_and_announced(
    journey: RunningService, nats_client: NatsClient
) -> None:
    web = await post(journey, interaction("web-1"))
    assert web.status_code == 201, web.text
    first = web.json()["items"][0]
    assert first["status"] == "created" and first["customer_id"]

    call = await post(
        journey,
        [
            interaction(
                "call-1",
                channel="phone",
                activity="called support",
                team="care",
                identifiers={"phone": "+34 600 111 222", "email": "ANA@mail.test-cx.com "},
                occurred_at="2026-11-30T11:00:00Z",
            ),
            interaction(
                "crm-1",
                channel="crm",
                activity="case opened",
                identifiers={"phone": "+34600111222", "crm_id": "CRM-7"},
                occurred_at="2026-11-30T12:00:00Z",
            ),
        ],
    )
    assert call.status_code == 200, call.text
    items = call.json()["items"]
    assert [item["status"] for item in items] == ["created", "created"]
    customer_id = items[0]["customer_id"]
    assert items[1]["customer_id"] == customer_id

    profile = (await journey.client.get(f"{CUSTOMERS}/{customer_id}", headers=auth(TENANT))).json()
    assert {(i["type"], i["value"]) for i in profile["identifiers"]} == {
        ("email", "ana@mail.test-cx.com"),
        ("phone", "+34600111222"),
        ("crm_id", "CRM-7"),
    }
    assert profile["interactions"] == 3
    assert profile["first_seen"].startswith("2026-11-30T08:30:00")
    linked = {(m["left"]["type"], m["right"]["type"]) for m in profile["merges"]}
    assert linked == {("email", "phone"), ("crm_id", "phone")}
    assert all(m["first_interaction"] for m in profile["merges"])

    for query in ("phone:0034 600 111 222", "phone:+34600111222", "email:Ana@Mail.test-cx.com"):
        found = await journey.client.get(
            CUSTOMERS, params={"identifier": query}, headers=auth(TENANT, Role.AGENT)
        )
        assert [c["id"] for c in found.json()["items"]] == [customer_id], query

    events = await published(journey, nats_client, "cx.journey.>", models=PUBLISHED)
    recorded = [
        InteractionRecordedV1.model_validate(e.data)
        for e in events
        if e.subject == INTERACTION_RECORDED
    ]
    assert [r.external_id for r in recorded] == ["web-1", "call-1", "crm-1"]
    assert recorded[1].customer_id == customer_id and recorded[1].team == "care"
    assert recorded[0].occurred_at.isoformat() == "2026-11-30T08:30:00+00:00"
    merged = [
        IdentitiesMergedV1.model_validate(e.data) for e in events if e.subject == IDENTITIES_MERGED
    ]
    assert len(merged) == 1 and merged[0].customer_id == customer_id
    # The CRM id sorts before the email: the profile took its name from it.
    assert merged[0].merged == [first["customer_id"]]
    assert merged[0].linked_by == ["crm_id", "email", "phone"]
    assert "ana@" not in json.dumps([e.data for e in events if e.subject == IDENTITIES_MERGED])


async def test_a_retried_batch_stores_nothing_twice(
    journey: RunningService, nats_client: NatsClient
) -> None:
    batch = [
        interaction(f"e-{n}", identifiers={"email": f"c{n}@mail.test-cx.com"}) for n in range(5)
    ]
    first = (await post(journey, batch)).json()
    assert first["created"] == 5
    again = await post(journey, [*batch, batch[0]])
    assert again.status_code == 200
    body = again.json()
    assert (body["created"], body["duplicates"]) == (0, 6)
    assert [i["id"] for i in body["items"][:5]] == [i["id"] for i in first["items"]]
    single = await post(journey, batch[2])
    assert single.status_code == 200 and single.json()["items"][0]["status"] == "duplicate"
    assert len(await published(journey, nats_client, "cx.journey.>", models=PUBLISHED)) == 5
    js = nats_client.jetstream()
    assert (await js.stream_info("CX_JOURNEY")).state.messages == 5


async def test_bad_items_are_named_by_index_and_field_and_the_good_ones_kept(
    journey: RunningService,
) -> None:
    response = await post(
        journey,
        [
            interaction("ok-1"),
            interaction("bad-1", occurred_at="2026-11-30T09:30:00"),
            interaction("bad-2", identifiers={}),
            {"external_id": "bad-3", "channel": "web"},
            "not an object",
            interaction("ok-2", identifiers={"Email": "x@mail.test-cx.com"}),
        ],
    )
    assert response.status_code == 200
    items = response.json()["items"]
    assert [i["status"] for i in items] == [
        "created",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
    ]
    assert [e["field"] for e in items[1]["errors"]] == ["[1].occurred_at"]
    assert "offset" in items[1]["errors"][0]["message"]
    assert [e["field"] for e in items[2]["errors"]] == ["[2].identifiers"]
    assert {e["field"] for e in items[3]["errors"]} >= {"[3].occurred_at", "[3].identifiers"}
    assert items[5]["errors"][0]["field"].startswith("[5].identifiers")
    stored = await journey.client.get(
        CUSTOMERS, params={"identifier": "email:ana@mail.test-cx.com"}, headers=auth(TENANT)
    )
    assert stored.json()["items"][0]["interactions"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (interaction("x", channel=""), "channel"),
        (interaction("x", occurred_at="yesterday"), "occurred_at"),
        (interaction("x", attributes=[1]), "attributes"),
        ([], "body"),
        ([interaction(f"x{n}") for n in range(1001)], "body"),
        ("just text", "body"),
    ],
)
async def test_bad_bodies_get_a_problem_naming_the_field_and_store_nothing(
    journey: RunningService, body: Any, field: str
) -> None:
    response = await post(journey, body)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    assert field in {e["field"] for e in response.json()["errors"]}
    found = await journey.client.get(
        CUSTOMERS, params={"identifier": "email:ana@mail.test-cx.com"}, headers=auth(TENANT)
    )
    assert found.json()["items"] == []


async def test_a_split_undoes_a_wrong_merge_and_later_interactions_respect_it(
    journey: RunningService,
) -> None:
    shared = {"email": "family@mail.test-cx.com"}
    await post(
        journey,
        [
            interaction("a", identifiers={**shared, "phone": "+34600000001"}),
            interaction("b", identifiers={**shared, "phone": "+34600000002"}),
        ],
    )
    (merged,) = (
        await journey.client.get(
            CUSTOMERS, params={"identifier": "phone:+34600000001"}, headers=auth(TENANT)
        )
    ).json()["items"]
    assert len(merged["identifiers"]) == 3

    refused = await journey.client.post(
        f"{CUSTOMERS}/{merged['id']}/split",
        json={"identifiers": [{"type": "phone", "value": "+34699999999"}]},
        headers=auth(TENANT, Role.SUPERVISOR),
    )
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "identifiers"
    viewer = await journey.client.post(
        f"{CUSTOMERS}/{merged['id']}/split",
        json={"identifiers": [{"type": "phone", "value": "+34600000002"}]},
        headers=auth(TENANT, Role.VIEWER),
    )
    assert viewer.status_code == 403

    split = await journey.client.post(
        f"{CUSTOMERS}/{merged['id']}/split",
        json={
            "identifiers": [{"type": "phone", "value": "+34 600 000 002"}],
            "reason": "two people share the family inbox",
        },
        headers=auth(TENANT, Role.SUPERVISOR, subject="key-sup"),
    )
    assert split.status_code == 200, split.text
    body = split.json()
    assert body["split"]["by"] == "key-sup"
    assert body["split"]["left"] == [{"type": "phone", "value": "+34600000002"}]
    assert len(body["customers"]) == 2
    apart = {frozenset(i["value"] for i in c["identifiers"]) for c in body["customers"]}
    assert frozenset({"+34600000002"}) in apart

    # An interaction with both still goes with the inbox's profile (it holds its smallest
    # identifier), but the phone stays apart, and is the profile of what it alone carries.
    later = await post(journey, interaction("c", identifiers={"phone": "+34600000002", **shared}))
    assert later.status_code == 201
    await post(journey, interaction("d", identifiers={"phone": "+34600000002"}))
    after = (
        await journey.client.get(
            CUSTOMERS, params={"identifier": "phone:+34600000002"}, headers=auth(TENANT)
        )
    ).json()["items"]
    assert [i["value"] for i in after[0]["identifiers"]] == ["+34600000002"]
    assert any(r["reason"] == "split" for r in after[0]["refusals"])
    assert after[0]["interactions"] == 1
    assert (
        after[0]["splits"] == []
        and len(
            merged_after := (
                await journey.client.get(f"{CUSTOMERS}/{merged['id']}", headers=auth(TENANT))
            ).json()["splits"]
        )
        == 1
    )
    assert merged_after[0]["reason"] == "two people share the family inbox"


async def test_an_id_that_ceased_still_finds_its_customer(journey: RunningService) -> None:
    """A profile joined into another, or renamed when a smaller identifier joined it: its old id
    still finds the customer (the profile, the timeline, the context), answered with the current
    id, and chains of renames lead to the last. A split that gives the old id a profile again
    makes it that profile's id once more."""
    ana = {"email": "ana@mail.test-cx.com"}
    phone = {"phone": "+34600111222"}

    async def customer_of(external_id: str, identifiers: dict[str, str]) -> str:
        answer = await post(journey, interaction(external_id, identifiers=identifiers))
        return str(answer.json()["items"][0]["customer_id"])

    by_email = await customer_of("web", ana)
    by_phone = await customer_of("call", phone)
    assert await customer_of("both", {**ana, **phone}) == by_email  # "email" < "phone"
    renamed = await customer_of("crm", {**phone, "crm_id": "CRM-7"})  # "crm_id" < "email"
    assert len({by_email, by_phone, renamed}) == 3

    for old in (by_email, by_phone):
        profile = await journey.client.get(f"{CUSTOMERS}/{old}", headers=auth(TENANT))
        assert profile.status_code == 200 and profile.json()["id"] == renamed, old
        timeline = await journey.client.get(f"{CUSTOMERS}/{old}/timeline", headers=auth(TENANT))
        assert timeline.status_code == 200 and timeline.json()["customer_id"] == renamed
        context = await journey.client.get(
            f"{CUSTOMERS}/context", params={"customer_id": old}, headers=auth(TENANT)
        )
        assert context.status_code == 200 and context.json()["customer"]["id"] == renamed
        other = await journey.client.get(f"{CUSTOMERS}/{old}", headers=auth(OTHER))
        assert other.status_code == 404
    assert (await journey.client.get(f"{CUSTOMERS}/p_0", headers=auth(TENANT))).status_code == 404

    split = await journey.client.post(
        f"{CUSTOMERS}/{renamed}/split",
        json={"identifiers": [{"type": "crm_id", "value": "CRM-7"}]},
        headers=auth(TENANT, Role.SUPERVISOR),
    )
    assert split.status_code == 200, split.text
    again = (await journey.client.get(f"{CUSTOMERS}/{by_email}", headers=auth(TENANT))).json()
    assert again["id"] == by_email
    assert {i["type"] for i in again["identifiers"]} == {"email", "phone"}


async def test_a_tenant_sees_none_of_another_tenants_customers(journey: RunningService) -> None:
    created = (await post(journey, interaction("t-1"))).json()["items"][0]
    only_ours = (
        await post(journey, interaction("t-2", identifiers={"email": "solo@mail.test-cx.com"}))
    ).json()["items"][0]
    other = await post(journey, interaction("t-1"), tenant=OTHER)
    assert other.json()["items"][0]["status"] == "created"
    assert other.json()["items"][0]["id"] != created["id"]

    read = await journey.client.get(f"{CUSTOMERS}/{only_ours['customer_id']}", headers=auth(OTHER))
    assert read.status_code == 404
    assert read.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    split = await journey.client.post(
        f"{CUSTOMERS}/{only_ours['customer_id']}/split",
        json={"identifiers": [{"type": "email", "value": "solo@mail.test-cx.com"}]},
        headers=auth(OTHER, Role.OPS_LEAD),
    )
    assert split.status_code == 404
    for tenant in (TENANT, OTHER):
        found = (
            await journey.client.get(
                CUSTOMERS, params={"identifier": "email:ana@mail.test-cx.com"}, headers=auth(tenant)
            )
        ).json()["items"]
        assert len(found) == 1 and found[0]["interactions"] == 1
    unauthenticated = await journey.client.get(f"{CUSTOMERS}/{created['customer_id']}")
    assert unauthenticated.status_code == 401


def _random_events(rng: random.Random, count: int) -> list[dict[str, Any]]:
    """Small customers who share values now and then (a family inbox, a placeholder phone, a
    reused CRM id), with caps low enough to refuse joins: what makes order matter for a naive
    resolver."""
    events = []
    for number in range(count):
        identifiers: dict[str, str] = {}
        for type_name, pool in (("email", 6), ("phone", 8), ("crm_id", 4)):
            if rng.random() < 0.55:
                value = rng.randrange(pool)
                identifiers[type_name] = (
                    f"c{value}@mail.test-cx.com"
                    if type_name == "email"
                    else f"+346000000{value:02d}"
                    if type_name == "phone"
                    else f"CRM-{value}"
                )
        if not identifiers:
            identifiers["email"] = f"c{rng.randrange(6)}@mail.test-cx.com"
        if rng.random() < 0.1:
            identifiers["phone"] = "0000000000"
        elif rng.random() < 0.2:
            identifiers["email"] = "family@mail.test-cx.com"  # found common once seen enough
        events.append(
            interaction(
                f"p-{number}",
                identifiers=identifiers,
                occurred_at=f"2026-11-{1 + rng.randrange(28):02d}T{rng.randrange(24):02d}:00:00Z",
            )
        )
    return events


async def test_resolving_as_interactions_arrive_equals_one_batch_run_in_any_order(
    journey: RunningService, database_url: str
) -> None:
    """For random histories posted in random orders and batch sizes, the stored profiles (their
    identifiers, and which interactions each holds) are what one run of ``resolve`` over all
    the stored interactions gives."""
    engine = create_async_engine(database_url)
    try:
        for case in range(8):
            rng = random.Random(case)
            tenant = f"prop-{case}"
            events = _random_events(rng, rng.randrange(12, 30))
            rng.shuffle(events)
            start = 0
            while start < len(events):
                size = rng.randrange(1, 6)
                response = await post(journey, events[start : start + size], tenant=tenant)
                assert response.status_code == 200, response.text
                start += size
            async with engine.connect() as connection:
                stored = (
                    await connection.execute(
                        sa.select(
                            interactions.c.id,
                            interactions.c.identifiers,
                            interactions.c.occurred_at,
                            interactions.c.customer_id,
                        ).where(interactions.c.tenant == tenant)
                    )
                ).all()
                profiles = (
                    await connection.execute(
                        sa.select(customers.c.id, customers.c.identifiers).where(
                            customers.c.tenant == tenant
                        )
                    )
                ).all()
            batch = resolve(
                [
                    Event(str(key), tuple(identifiers.items()), _utc(occurred_at))
                    for key, identifiers, occurred_at, _ in stored
                ],
                Rules(),
            )
            expected = {
                profile.profile_id: (
                    {(i.type, i.value) for i in profile.identifiers},
                    set(profile.events),
                )
                for profile in batch.profiles
            }
            held: dict[str, set[str]] = {}
            for key, _, _, customer_id in stored:
                if customer_id is not None:
                    held.setdefault(customer_id, set()).add(str(key))
            actual = {
                customer_id: (
                    {(i["type"], i["value"]) for i in identifiers},
                    held.get(customer_id, set()),
                )
                for customer_id, identifiers in profiles
            }
            assert actual == expected, f"case {case}"
            assert {str(key) for key, *_, customer in stored if customer is None} == set(
                batch.unresolved_events
            )
    finally:
        await engine.dispose()


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
