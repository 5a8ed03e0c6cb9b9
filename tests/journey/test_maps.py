"""Journey maps through the journey service's HTTP API, on SQLite and PostgreSQL with real
NATS: versions put and read (the same map again is no new version), the roles, bad maps refused
naming the field with nothing stored, tenant isolation, and conformance over stored
interactions against figures worked out by hand."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from cxops.common.auth import Role
from cxops.common.errors import PROBLEM_MEDIA_TYPE
from cxops.journey.models import Interaction
from tests.journey.conftest import StartJourney
from tests.support.clock import ManualClock
from tests.support.services import RunningService, auth

MAPS = "/v1/journey/maps"
TENANT = "acme"
OTHER = "globex"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)

SUPPORT = {
    "name": "support case",
    "stages": [
        {
            "name": "intake",
            "activities": ["case opened", "triaged"],
            "owner_team": "frontline",
            "raci": {
                "responsible": ["frontline"],
                "accountable": "support-lead",
                "consulted": ["billing"],
                "informed": ["cx-office"],
            },
            "touchpoints": ["web form", "phone"],
            "channels": ["web", "voice"],
        },
        {
            "name": "billing",
            "activities": ["handed to billing", "invoice checked"],
            "optional": True,
            "owner_team": "billing",
        },
        {
            "name": "resolution",
            "activities": ["customer called back", "case resolved"],
            "owner_team": "frontline",
        },
    ],
    "handoffs": [
        {"from": "intake", "to": "billing", "sla_seconds": 3600},
        {"from": "billing", "to": "resolution", "sla_seconds": 7200},
        {"from": "intake", "to": "resolution", "sla_seconds": 86400},
    ],
}
#: The same map as the command has always read it: no owners, RACI, touchpoints or channels.
OLD_STYLE = {
    "stages": [{"name": "intake", "activities": ["case opened"]}],
}


@pytest.fixture
async def service(start_journey: StartJourney) -> AsyncIterator[RunningService]:
    async with start_journey(clock=ManualClock(NOW)) as started:
        yield started


async def put(
    service: RunningService,
    key: str,
    body: Any,
    *,
    tenant: str = TENANT,
    role: Role = Role.OPS_LEAD,
) -> Any:
    return await service.client.put(
        f"{MAPS}/{key}", json=body, headers=auth(tenant, role, subject=f"{role.value}-key")
    )


async def get(service: RunningService, path: str, *, tenant: str = TENANT, **params: Any) -> Any:
    return await service.client.get(
        f"{MAPS}{path}", params=params, headers=auth(tenant, Role.AGENT)
    )


# ---------------------------------------------------------------------- versions


async def test_a_change_is_a_new_version_and_the_same_map_is_not(service: RunningService) -> None:
    first = await put(service, "support", SUPPORT)
    again = await put(service, "support", SUPPORT)
    # The same map, its defaults spelled out: still the same version.
    spelled = {
        **SUPPORT,
        "stages": [{"optional": False, **stage} for stage in SUPPORT["stages"]],
    }
    same = await put(service, "support", spelled)
    changed_map = {**SUPPORT, "handoffs": SUPPORT["handoffs"][:1]}
    changed = await put(service, "support", changed_map, role=Role.ADMIN)

    assert first.status_code == 201, first.text
    assert (again.status_code, same.status_code, changed.status_code) == (200, 200, 200)
    assert [r.json()["version"] for r in (first, again, same, changed)] == [1, 1, 1, 2]
    assert first.json()["created_by"] == "ops_lead-key"
    assert changed.json()["created_by"] == "admin-key"
    assert first.json()["created_at"] == NOW.isoformat().replace("+00:00", "Z")
    assert await service.count("journey_maps") == 2

    latest = await get(service, "/support")
    original = await get(service, "/support", version=1)
    missing = await get(service, "/support", version=3)
    assert latest.status_code == 200
    assert latest.json()["version"] == 2
    assert latest.json()["handoffs"] == changed_map["handoffs"]
    assert original.json()["version"] == 1
    stage = original.json()["stages"][0]
    assert stage["owner_team"] == "frontline"
    assert stage["raci"] == SUPPORT["stages"][0]["raci"]  # type: ignore[index]
    assert stage["touchpoints"] == ["web form", "phone"]
    assert stage["channels"] == ["web", "voice"]
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM_MEDIA_TYPE


async def test_concurrent_changes_each_get_a_version_of_their_own(
    service: RunningService,
) -> None:
    puts = await asyncio.gather(
        *(put(service, "support", {**SUPPORT, "name": f"draft {n}"}) for n in range(5))
    )

    assert sorted(r.status_code for r in puts) == [200, 200, 200, 200, 201]
    assert sorted(r.json()["version"] for r in puts) == [1, 2, 3, 4, 5]
    assert (await get(service, "/support")).json()["version"] == 5


async def test_maps_are_listed_latest_version_first_by_key(service: RunningService) -> None:
    await put(service, "support", SUPPORT)
    await put(service, "support", {**SUPPORT, "name": "support, renamed"})
    created = await put(service, "onboarding", OLD_STYLE)

    listed = await get(service, "")

    assert created.status_code == 201
    assert created.json()["stages"] == [
        {
            "name": "intake",
            "activities": ["case opened"],
            "optional": False,
            "owner_team": None,
            "raci": None,
            "touchpoints": [],
            "channels": [],
        }
    ]
    assert [(m["key"], m["version"]) for m in listed.json()["items"]] == [
        ("onboarding", 1),
        ("support", 2),
    ]


async def test_writers_and_readers(service: RunningService) -> None:
    for role in (Role.SUPERVISOR, Role.AGENT, Role.INTEGRATION, Role.VIEWER):
        refused = await put(service, "support", SUPPORT, role=role)
        assert refused.status_code == 403, role
    assert (await service.client.put(f"{MAPS}/support", json=SUPPORT)).status_code == 401
    assert (await put(service, "support", SUPPORT)).status_code == 201
    for role in (Role.SUPERVISOR, Role.AGENT, Role.INTEGRATION, Role.OPS_LEAD, Role.ADMIN):
        read = await service.client.get(f"{MAPS}/support", headers=auth(TENANT, role))
        assert read.status_code == 200, role


async def test_tenants_see_only_their_own_maps(service: RunningService) -> None:
    await put(service, "support", SUPPORT)
    await put(service, "support", OLD_STYLE, tenant=OTHER)  # the same key, another tenant's

    ours = await get(service, "/support")
    theirs = await get(service, "/support", tenant=OTHER)
    only_ours = await put(service, "returns", OLD_STYLE)

    assert ours.json()["version"] == theirs.json()["version"] == 1
    assert len(ours.json()["stages"]) == 3
    assert len(theirs.json()["stages"]) == 1
    assert only_ours.status_code == 201
    assert [m["key"] for m in (await get(service, "", tenant=OTHER)).json()["items"]] == ["support"]
    assert (await get(service, "/returns", tenant=OTHER)).status_code == 404
    assert (await get(service, "/returns/conformance", tenant=OTHER)).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (  # an activity two stages claim
            {
                "stages": [
                    {"name": "intake", "activities": ["case opened"]},
                    {"name": "billing", "activities": ["case opened"]},
                ]
            },
            "stages.1.activities.0",
        ),
        (  # an SLA to a stage that does not exist
            {
                "stages": [{"name": "intake", "activities": ["case opened"]}],
                "handoffs": [{"from": "intake", "to": "bilin", "sla_seconds": 60}],
            },
            "handoffs.0.to",
        ),
        (  # a field the format does not have
            {"stages": [{"name": "intake", "activities": ["case opened"], "sla": 3}]},
            "stages.0.sla",
        ),
        (  # a boolean as text: request bodies are strict
            {"stages": [{"name": "intake", "activities": ["a"], "optional": "true"}]},
            "stages.0.optional",
        ),
        (  # a RACI naming nobody accountable as a list
            {"stages": [{"name": "intake", "activities": ["a"], "raci": {"accountable": []}}]},
            "stages.0.raci.accountable",
        ),
        ({"stages": []}, "stages"),
        (  # an SLA longer than ten years
            {
                "stages": [
                    {"name": "intake", "activities": ["a"]},
                    {"name": "billing", "activities": ["b"]},
                ],
                "handoffs": [{"from": "intake", "to": "billing", "sla_seconds": 4e8}],
            },
            "handoffs.0.sla_seconds",
        ),
        (  # a control character in a name
            {"stages": [{"name": "in\u0000take", "activities": ["a"]}]},
            "stages.0.name",
        ),
    ],
)
async def test_a_bad_map_is_refused_naming_the_field_and_nothing_is_stored(
    service: RunningService, body: dict[str, Any], field: str
) -> None:
    refused = await put(service, "support", body)

    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert field in [error["field"] for error in refused.json()["errors"]]
    assert await service.count("journey_maps") == 0


async def test_a_key_must_be_a_slug(service: RunningService) -> None:
    refused = await put(service, "Support Case", SUPPORT)

    assert refused.status_code == 422
    assert [error["field"] for error in refused.json()["errors"]] == ["key"]
    assert await service.count("journey_maps") == 0


# ---------------------------------------------------------------------- conformance


async def record(
    service: RunningService,
    customer: str | None,
    activity: str,
    at: datetime,
    *,
    tenant: str = TENANT,
    team: str | None = None,
) -> None:
    """An interaction stored as the intake stores it."""
    async with service.db.transaction() as session:
        await session.execute(
            sa.insert(Interaction.__table__),  # type: ignore[attr-defined]
            {
                "id": uuid.uuid4(),
                "tenant": tenant,
                "external_id": str(uuid.uuid4()),
                "occurred_at": at,
                "received_at": at,
                "channel": "web",
                "activity": activity,
                "team": team,
                "stage": None,
                "identifiers": {"crm_id": customer or "?"},
                "attributes": {},
                "customer_id": customer,
            },
        )


async def record_the_hand_worked_log(service: RunningService) -> None:
    """Five customers, worked out by hand in :func:`test_conformance_figures_by_hand`."""
    journeys: dict[str | None, list[tuple[str, timedelta]]] = {
        # Fits: intake, billing, resolution; 20 min and 70 min handoffs.
        "c1": [
            ("case opened", 0 * MINUTE),
            ("triaged", 10 * MINUTE),
            ("handed to billing", 30 * MINUTE),
            ("invoice checked", 50 * MINUTE),
            ("case resolved", 2 * HOUR),
        ],
        # Fits (billing is optional); intake to resolution takes 25 h, over its 24 h.
        "c2": [("case opened", 0 * MINUTE), ("case resolved", DAY + HOUR)],
        # A loop on intake; intake to billing takes 2 h, over its 1 h.
        "c3": [
            ("case opened", 0 * MINUTE),
            ("handed to billing", 2 * HOUR),
            ("case opened", 3 * HOUR),
            ("case resolved", 4 * HOUR),
        ],
        # Skips intake.
        "c4": [("handed to billing", 0 * MINUTE), ("case resolved", HOUR)],
        # An activity no stage claims.
        "c5": [("case opened", 0 * MINUTE), ("refund issued", 5 * MINUTE)],
        # No customer: left out.
        None: [("case opened", 0 * MINUTE)],
    }
    for customer, steps in journeys.items():
        for activity, after in steps:
            await record(service, customer, activity, T0 + after)
    await record(service, "c1", "case opened", T0 - 40 * DAY)  # before the range
    await record(service, "c9", "handed to billing", T0, tenant=OTHER)


async def test_conformance_figures_by_hand(service: RunningService) -> None:
    await put(service, "support", SUPPORT)
    await record_the_hand_worked_log(service)

    answered = await get(service, "/support/conformance")  # the 30 days up to NOW

    assert answered.status_code == 200, answered.text
    body = answered.json()
    assert body["map"] == {"key": "support", "version": 1}
    assert body["from"] == (NOW - 30 * DAY).isoformat().replace("+00:00", "Z")
    assert body["to"] == NOW.isoformat().replace("+00:00", "Z")
    assert (body["interactions"], body["interactions_without_customer"]) == (15, 1)
    assert (body["cases"], body["fitting_cases"], body["fitness"]) == (5, 2, 0.4)
    assert body["deviations"] == {
        "skipped_stage": {"cases": 1, "stages": {"intake": 1}},
        "out_of_order": {"cases": 0, "stages": {}},
        "loop": {"cases": 1, "stages": {"intake": 1}},
        "unmapped_activity": {"cases": 1, "activities": {"refund issued": 1}},
    }
    assert body["sla"] == [
        {
            "from_stage": "intake",
            "to_stage": "billing",
            "sla_seconds": 3600.0,
            "owner_team": "frontline",
            "handoffs": 2,  # c1 in 1,200 s, c3 in 7,200 s
            "breaches": 1,
            "breach_share": 0.5,
            "mean_seconds": 4200.0,
            "median_seconds": 4200.0,
            "max_seconds": 7200.0,
        },
        {
            "from_stage": "billing",
            "to_stage": "resolution",
            "sla_seconds": 7200.0,
            "owner_team": "billing",
            "handoffs": 2,  # c1 in 4,200 s, c4 in 3,600 s
            "breaches": 0,
            "breach_share": 0.0,
            "mean_seconds": 3900.0,
            "median_seconds": 3900.0,
            "max_seconds": 4200.0,
        },
        {
            "from_stage": "intake",
            "to_stage": "resolution",
            "sla_seconds": 86400.0,
            "owner_team": "frontline",
            "handoffs": 2,  # c2 in 90,000 s, c3 (after its loop) in 3,600 s
            "breaches": 1,
            "breach_share": 0.5,
            "mean_seconds": 46800.0,
            "median_seconds": 46800.0,
            "max_seconds": 90000.0,
        },
    ]
    assert body["owners"] == [
        {
            "owner_team": "frontline",
            "stages": ["intake", "resolution"],
            "skipped_stage": 1,
            "out_of_order": 0,
            "loop": 1,
            "handoffs": 4,
            "sla_breaches": 2,
        },
        {
            "owner_team": "billing",
            "stages": ["billing"],
            "skipped_stage": 0,
            "out_of_order": 0,
            "loop": 0,
            "handoffs": 2,
            "sla_breaches": 0,
        },
    ]


async def test_conformance_names_the_version_it_used(service: RunningService) -> None:
    await put(service, "support", SUPPORT)
    looser = {**SUPPORT, "handoffs": [{"from": "intake", "to": "billing", "sla_seconds": 9000}]}
    await put(service, "support", looser)
    await record_the_hand_worked_log(service)
    window = {"from": (T0 - HOUR).isoformat(), "to": (T0 + 2 * DAY).isoformat()}

    latest = (await get(service, "/support/conformance", **window)).json()
    first = (await get(service, "/support/conformance", **window, version=1)).json()

    assert latest["map"] == {"key": "support", "version": 2}
    assert [(s["to_stage"], s["breaches"]) for s in latest["sla"]] == [("billing", 0)]
    assert first["map"] == {"key": "support", "version": 1}
    assert [s["breaches"] for s in first["sla"]] == [1, 0, 1]


async def test_conformance_over_no_interactions(service: RunningService) -> None:
    await put(service, "support", SUPPORT)
    await record(service, "c1", "case opened", T0, tenant=OTHER)

    body = (await get(service, "/support/conformance")).json()

    assert (body["cases"], body["fitting_cases"], body["fitness"]) == (0, 0, None)
    assert [s["handoffs"] for s in body["sla"]] == [0, 0, 0]
    assert [o["handoffs"] for o in body["owners"]] == [0, 0]


async def test_conformance_range_must_run_forwards(service: RunningService) -> None:
    await put(service, "support", SUPPORT)

    backwards = await get(
        service, "/support/conformance", **{"from": NOW.isoformat(), "to": T0.isoformat()}
    )
    not_a_time = await get(service, "/support/conformance", **{"from": "yesterday"})

    assert backwards.status_code == 422
    assert [e["field"] for e in backwards.json()["errors"]] == ["to"]
    assert not_a_time.status_code == 422
    assert [e["field"] for e in not_a_time.json()["errors"]] == ["from"]
    assert (await get(service, "/nothing/conformance")).status_code == 404
