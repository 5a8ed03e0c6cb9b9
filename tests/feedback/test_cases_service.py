"""Closed-loop cases through the feedback service's HTTP API, on SQLite and PostgreSQL with real
NATS: opening at intake (default and custom rules), every transition and the 409s, the SLA
clocks with a clock the test moves (escalation, each breach, exactly once, across a restart and
with two replicas), tenant isolation, bad input, and the root-cause Pareto."""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nats.aio.client import Client as NatsClient

from cxops.cli.nats_server import NatsServer
from cxops.common.auth import Role
from cxops.common.errors import PROBLEM_MEDIA_TYPE
from cxops.feedback.app import create_app
from cxops.feedback.cases import CaseClocks
from cxops.feedback.events import (
    CASE_ACKNOWLEDGED,
    CASE_ACTION_DOCUMENTED,
    CASE_ASSIGNED,
    CASE_BREACHED,
    CASE_CLOSED,
    CASE_ESCALATED,
    CASE_OPENED,
    CASE_REOPENED,
    PUBLISHED,
)
from cxops.feedback.settings import FeedbackSettings
from cxops.routing.events import CaseOpened
from tests.support.clock import ManualClock
from tests.support.services import RunningService, auth, eventually, running, settings_for
from tests.support.services import published as published_events

RESPONSES = "/v1/feedback/responses"
CASES = "/v1/feedback/cases"
RULES = "/v1/feedback/case-rules"
TENANT = "acme"
OTHER_TENANT = "globex"
HOUR = timedelta(hours=1)


Launch = Callable[[], AbstractAsyncContextManager[RunningService]]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1))


@pytest.fixture
def launch(feedback_database: str, nats_server: NatsServer, clock: ManualClock) -> Launch:
    """Start a feedback replica on the test's database, broker and clock (as often as asked)."""

    def start() -> AbstractAsyncContextManager[RunningService]:
        settings = settings_for(
            FeedbackSettings,
            database_url=feedback_database,
            nats_url=nats_server.url,
            tenant_settings_cache_seconds=0,
        )
        return running(create_app(settings, clock=clock))

    return start


@pytest.fixture
async def service(launch: Launch) -> AsyncIterator[RunningService]:
    async with launch() as started:
        yield started


def answer(**changes: Any) -> dict[str, Any]:
    return {"kind": "nps", "score": 3, "customer_ref": "cust-7", "channel": "email"} | changes


async def post_answer(
    service: RunningService, clock: ManualClock, tenant: str = TENANT, **changes: Any
) -> dict[str, Any]:
    body = answer(occurred_at=clock().isoformat()) | changes
    posted = await service.client.post(RESPONSES, json=body, headers=auth(tenant, Role.INTEGRATION))
    assert posted.status_code == 201, posted.text
    result: dict[str, Any] = posted.json()
    return result


async def cases_of(service: RunningService, tenant: str = TENANT, **query: Any) -> list[Any]:
    listed = await service.client.get(CASES, params=query, headers=auth(tenant, Role.VIEWER))
    assert listed.status_code == 200, listed.text
    items: list[Any] = listed.json()["items"]
    return items


async def act(
    service: RunningService,
    case_id: str,
    action: str,
    body: dict[str, Any] | None = None,
    *,
    tenant: str = TENANT,
    who: str = "lead-key",
) -> Any:
    return await service.client.post(
        f"{CASES}/{case_id}/{action}",
        json=body,
        headers=auth(tenant, Role.SUPERVISOR, subject=who),
    )


ROOT_CAUSE = {"category": "process", "why_chain": ["refund slow", "manual approval step"]}
ACTION = {"corrective_action": "Automate refunds under 50 EUR.", "root_cause": ROOT_CAUSE}
CLOSE = {"resolution": "Refunded and apologised.", "customer_contacted": True}


async def move_clock(service: RunningService, clock: ManualClock, by: timedelta) -> None:
    """Move time and wait until the service's timer has looked at every case at that time."""
    clock.advance(by)
    clocks = service.state.component(CaseClocks)
    clocks.wake()
    await eventually(
        lambda: asyncio.sleep(
            0, clocks.checked_until is not None and clocks.checked_until >= clock()
        ),
        what="the case clocks to catch up",
    )


async def published(
    service: RunningService, nats_client: NatsClient, subject: str = "cx.feedback.case.>"
) -> list[tuple[str, dict[str, Any]]]:
    """Every case event on CX_FEEDBACK so far (subject, payload), in order."""
    events = await published_events(service, nats_client, subject, models=PUBLISHED)
    return [(event.subject, event.data) for event in events]


def subjects(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [subject for subject, _ in events]


# ---------------------------------------------------------------------- opening


async def test_default_rules_open_cases_for_detractors_only(
    service: RunningService, clock: ManualClock, nats_client: NatsClient
) -> None:
    opening = [("nps", 6), ("csat", 2), ("ces", 5), ("nps", 0), ("csat", 1), ("ces", 7)]
    not_opening = [("nps", 7), ("nps", 10), ("csat", 3), ("csat", 5), ("ces", 4), ("ces", 1)]
    opened_for = set()
    for kind, score in opening + not_opening:
        response = await post_answer(service, clock, kind=kind, score=score, customer_tier="gold")
        if (kind, score) in opening:
            opened_for.add(response["id"])

    listed = await cases_of(service)

    assert {case["response_id"] for case in listed} == opened_for
    assert {case["rule"] for case in listed} == {
        "nps-detractor",
        "csat-dissatisfied",
        "ces-high-effort",
    }
    for case in listed:
        assert case["state"] == "open"
        assert case["team"] == "cases"
        assert case["tier"] == "gold"
        assert case["allowed_actions"] == ["assign", "acknowledge"]
        assert case["deadlines"]["action"] == (clock() + 72 * HOUR).isoformat().replace(
            "+00:00", "Z"
        )
    opened = await published(service, nats_client, CASE_OPENED)
    assert len(opened) == len(opening)
    for _, payload in opened:
        read = CaseOpened.model_validate(payload)  # what routing makes a task of
        assert read.team == "cases" and read.tier == "gold" and read.customer_ref == "cust-7"
        assert read.action_due_at == clock() + 72 * HOUR
        assert payload["seconds_since_feedback"] == 0


async def test_a_case_and_its_response_are_one_write(
    service: RunningService, clock: ManualClock
) -> None:
    await post_answer(service, clock)
    [case] = await cases_of(service)

    detail = await service.client.get(f"{CASES}/{case['id']}", headers=auth(TENANT, Role.VIEWER))

    assert detail.status_code == 200
    body = detail.json()
    assert body["case"] == case
    assert body["response"]["id"] == case["response_id"]
    assert body["response"]["score"] == 3
    assert body["history"] == [
        {
            "action": "open",
            "by": "system",
            "at": clock().isoformat().replace("+00:00", "Z"),
            "from_state": None,
            "to_state": "open",
            "detail": {"rule": "nps-detractor", "team": "cases", "topic": None},
        }
    ]
    assert await service.count("feedback_cases") == 1
    assert await service.count("feedback_case_history") == 1


async def test_custom_rules_tiers_teams_and_clocks(
    service: RunningService, clock: ManualClock
) -> None:
    rules = {
        "rules": [
            {"name": "gold-passives", "nps_at_most": 8, "tiers": ["gold", "platinum"]},
            {"name": "billing-complaints", "topics": ["billing"]},
        ],
        "topic_teams": {"billing": "billing-team"},
        "default_team": "care",
        "sla": {
            "acknowledge_within_seconds": 60,
            "action_within_seconds": 120,
            "close_within_seconds": 600,
        },
    }
    refused = await service.client.put(RULES, json=rules, headers=auth(TENANT, Role.SUPERVISOR))
    put = await service.client.put(RULES, json=rules, headers=auth(TENANT, Role.OPS_LEAD))
    assert refused.status_code == 403
    assert put.status_code == 200, put.text
    assert put.json() | {"updated_at": None} == rules | {
        "rules": [
            rules["rules"][0]
            | {"csat_at_most": None, "ces_at_least": None, "topics": None}
            | {"negative_sentiment_above": None, "tiers": ["gold", "platinum"]},
            rules["rules"][1]
            | {"nps_at_most": None, "csat_at_most": None}
            | {"ces_at_least": None, "negative_sentiment_above": None, "tiers": None},
        ],
        "version": 1,
        "updated_at": None,
        "updated_by": "test-key",
    }
    read = await service.client.get(RULES, headers=auth(TENANT, Role.VIEWER))
    assert read.json() == put.json()

    gold = await post_answer(service, clock, score=8, customer_tier="gold")
    await post_answer(service, clock, score=8, customer_tier="standard")
    await post_answer(service, clock, score=2)  # no tier: the default rules no longer apply
    await post_answer(service, clock, score=8, customer_ref="other", customer_tier="platinum")

    listed = await cases_of(service)
    assert len(listed) == 2
    case = next(c for c in listed if c["response_id"] == gold["id"])
    assert (case["rule"], case["team"], case["topic"]) == ("gold-passives", "care", None)
    assert case["sla"] == rules["sla"]
    assert (
        case["deadlines"]["acknowledge"] == (clock() + timedelta(seconds=60)).isoformat()[:19] + "Z"
    )
    # The defaults are per tenant: another tenant's detractor still opens a case.
    await post_answer(service, clock, tenant=OTHER_TENANT, score=2)
    assert len(await cases_of(service, OTHER_TENANT)) == 1


async def test_rules_on_what_was_read_in_the_comment(
    service: RunningService, clock: ManualClock
) -> None:
    """Sentiment and topic rules see the enrichment; a topic's team is the taxonomy's owner
    unless the case rules map the topic, and the topic complained about is the case's."""
    rules = {
        "rules": [
            {"name": "angry", "negative_sentiment_above": 0.3},
            {"name": "attitude-mentions", "topics": ["agent_attitude"]},
        ],
        "topic_teams": {"delivery": "couriers"},
    }
    put = await service.client.put(RULES, json=rules, headers=auth(TENANT, Role.OPS_LEAD))
    assert put.status_code == 200, put.text
    taxonomy = await service.client.get("/v1/feedback/taxonomy", headers=auth(TENANT, Role.VIEWER))
    owners = {topic["name"]: topic["owner"] for topic in taxonomy.json()["effective"]}

    angry = await post_answer(
        service,
        clock,
        score=9,
        comment="The staff were lovely but the refund was refused and I am furious.",
    )
    assert angry["enrichment"]["sentiment"]["label"] == "negative"
    late = await post_answer(
        service, clock, score=9, comment="The delivery was late again, terrible service."
    )
    await post_answer(service, clock, score=3, comment="Fine, thanks.")  # no rule matches now

    listed = {case["response_id"]: case for case in await cases_of(service)}
    assert set(listed) == {angry["id"], late["id"]}
    refused = listed[angry["id"]]
    assert refused["rule"] == "angry"
    # The refund the customer complained about comes before the staff they praised.
    tags = {tag["topic"]: tag for tag in angry["enrichment"]["topics"]}
    assert next(iter(tags)) == "agent_attitude"
    assert tags["agent_attitude"]["sentiment"]["label"] == "positive"
    assert refused["topic"] == "refunds_and_returns"
    assert tags["refunds_and_returns"]["sentiment"]["label"] == "negative"
    assert refused["team"] == owners["refunds_and_returns"]
    assert owners["delivery"] != "couriers"
    assert (listed[late["id"]]["topic"], listed[late["id"]]["team"]) == ("delivery", "couriers")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"rules": [{"name": "everything"}]}, "rules.0"),
        ({"rules": [{"name": "x", "csat_at_most": 9}]}, "rules.0.csat_at_most"),
        ({"rules": [{"name": "x", "nps_at_most": 6, "csat_at_most": 2}]}, "rules.0"),
        ({"rules": [{"name": "x", "nps_at_most": 6}, {"name": "x", "ces_at_least": 5}]}, "rules"),
        ({"rules": [{"name": "x", "topics": []}]}, "rules.0.topics"),
        (
            {"rules": [{"name": "x", "negative_sentiment_above": 1}]},
            "rules.0.negative_sentiment_above",
        ),
        ({"rules": []}, "rules"),
        ({"rules": [{"name": "x", "nps_at_most": 6, "npss": 1}]}, "rules.0.npss"),
        ({"sla": {"acknowledge_within_seconds": 0}}, "sla.acknowledge_within_seconds"),
        ({"default_team": "  "}, "default_team"),
    ],
)
async def test_bad_rules_are_422_naming_the_field_and_nothing_is_stored(
    service: RunningService, change: dict[str, Any], field: str
) -> None:
    body = {"rules": [{"name": "ok", "nps_at_most": 6}]} | change

    put = await service.client.put(RULES, json=body, headers=auth(TENANT, Role.OPS_LEAD))

    assert put.status_code == 422, put.text
    assert put.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert field in {error["field"] for error in put.json()["errors"]}, put.json()
    assert await service.count("feedback_case_settings") == 0
    read = await service.client.get(RULES, headers=auth(TENANT, Role.VIEWER))
    assert read.json()["version"] == 0


# ---------------------------------------------------------------------- transitions


async def test_the_whole_loop_with_who_and_when(
    service: RunningService, clock: ManualClock, nats_client: NatsClient
) -> None:
    await post_answer(service, clock)
    [case] = await cases_of(service)
    case_id = case["id"]
    steps = [
        ("assign", {"owner": "agent-ana"}, "open", "agent-key"),
        ("acknowledge", None, "acknowledged", "ana-key"),
        ("actions", ACTION, "action_documented", "ana-key"),
        ("close", CLOSE, "closed", "lead-key"),
        ("reopen", {"reason": "The customer wrote again."}, "open", "lead-key"),
    ]
    for action, body, state, who in steps:
        clock.advance(HOUR)
        done = await act(service, case_id, action, body, who=who)
        assert done.status_code == 200, done.text
        assert done.json()["state"] == state

    detail = (await service.client.get(f"{CASES}/{case_id}", headers=auth(TENANT))).json()
    current = detail["case"]
    assert current["round"] == 2
    assert current["owner"] == "agent-ana"
    assert current["version"] == 6
    assert current["acknowledged_at"] is None and current["root_cause"] is None
    assert [(h["action"], h["by"], h["from_state"], h["to_state"]) for h in detail["history"]] == [
        ("open", "system", None, "open"),
        ("assign", "agent-key", "open", "open"),
        ("acknowledge", "ana-key", "open", "acknowledged"),
        ("document_action", "ana-key", "acknowledged", "action_documented"),
        ("close", "lead-key", "action_documented", "closed"),
        ("reopen", "lead-key", "closed", "open"),
    ]
    assert [h["at"][:19] for h in detail["history"]][-1] == clock().isoformat()[:19]
    assert detail["history"][3]["detail"] == ACTION
    assert detail["history"][4]["detail"] == CLOSE

    events = await published(service, nats_client)
    assert subjects(events) == [
        CASE_OPENED,
        CASE_ASSIGNED,
        CASE_ACKNOWLEDGED,
        CASE_ACTION_DOCUMENTED,
        CASE_CLOSED,
        CASE_REOPENED,
    ]
    by_subject = dict(events)
    assert by_subject[CASE_ACKNOWLEDGED]["acknowledged_after_seconds"] == 2 * 3600
    assert by_subject[CASE_ACKNOWLEDGED]["by"] == "ana-key"
    assert by_subject[CASE_ACTION_DOCUMENTED]["root_cause"] == ROOT_CAUSE
    assert by_subject[CASE_CLOSED]["customer_contacted"] is True
    assert by_subject[CASE_CLOSED]["closed_after_seconds"] == 4 * 3600
    assert by_subject[CASE_CLOSED]["seconds_since_open"] == 4 * 3600
    assert by_subject[CASE_REOPENED]["round"] == 2
    assert by_subject[CASE_REOPENED]["owner"] == "agent-ana"


@pytest.mark.parametrize(
    ("steps", "refused", "body", "allowed"),
    [
        ([], "close", CLOSE, ["assign", "acknowledge"]),
        ([], "actions", ACTION, ["assign", "acknowledge"]),
        ([], "reopen", None, ["assign", "acknowledge"]),
        (["acknowledge"], "acknowledge", None, ["assign", "document_action"]),
        (["acknowledge", "actions", "close"], "assign", {"owner": "x"}, ["reopen"]),
        (["acknowledge", "actions", "close"], "close", CLOSE, ["reopen"]),
    ],
)
async def test_a_transition_the_state_does_not_allow_is_409_naming_the_allowed(
    service: RunningService,
    clock: ManualClock,
    steps: list[str],
    refused: str,
    body: dict[str, Any] | None,
    allowed: list[str],
) -> None:
    await post_answer(service, clock)
    [case] = await cases_of(service)
    bodies = {"actions": ACTION, "close": CLOSE}
    for step in steps:
        assert (await act(service, case["id"], step, bodies.get(step))).status_code == 200
    before = (await service.client.get(f"{CASES}/{case['id']}", headers=auth(TENANT))).json()

    answered = await act(service, case["id"], refused, body)

    assert answered.status_code == 409
    assert answered.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert answered.json()["allowed"] == allowed
    after = (await service.client.get(f"{CASES}/{case['id']}", headers=auth(TENANT))).json()
    assert after == before


async def test_bad_input_to_a_transition_is_422_naming_the_field_and_changes_nothing(
    service: RunningService, clock: ManualClock
) -> None:
    await post_answer(service, clock)
    [case] = await cases_of(service)
    assert (await act(service, case["id"], "acknowledge")).status_code == 200
    bad = [
        (
            "actions",
            ACTION | {"root_cause": ROOT_CAUSE | {"category": "weather"}},
            "root_cause.category",
        ),
        (
            "actions",
            ACTION | {"root_cause": ROOT_CAUSE | {"why_chain": []}},
            "root_cause.why_chain",
        ),
        ("actions", ACTION | {"corrective_action": "   "}, "corrective_action"),
        ("assign", {"owner": ""}, "owner"),
        ("assign", {"owner": "x", "team": "y"}, "team"),
    ]
    for action, body, field in bad:
        answered = await act(service, case["id"], action, body)
        assert answered.status_code == 422, (action, answered.text)
        assert field in {e["field"] for e in answered.json()["errors"]}, answered.json()
    unchanged = (await service.client.get(f"{CASES}/{case['id']}", headers=auth(TENANT))).json()
    assert unchanged["case"]["version"] == 2
    assert len(unchanged["history"]) == 2


async def test_concurrent_transitions_one_wins_the_other_is_409(
    service: RunningService, clock: ManualClock, nats_client: NatsClient
) -> None:
    await post_answer(service, clock)
    [case] = await cases_of(service)

    answers = await asyncio.gather(*(act(service, case["id"], "acknowledge") for _ in range(4)))

    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409]
    events = await published(service, nats_client, CASE_ACKNOWLEDGED)
    assert len(events) == 1


async def test_roles_that_may_work_cases(service: RunningService, clock: ManualClock) -> None:
    await post_answer(service, clock)
    [case] = await cases_of(service)
    viewer = await service.client.post(
        f"{CASES}/{case['id']}/acknowledge", headers=auth(TENANT, Role.VIEWER)
    )
    agent = await service.client.post(
        f"{CASES}/{case['id']}/acknowledge", headers=auth(TENANT, Role.AGENT)
    )
    assert viewer.status_code == 403
    assert agent.status_code == 200


async def test_another_tenants_case_is_not_found_and_not_listed(
    service: RunningService, clock: ManualClock
) -> None:
    await post_answer(service, clock)
    [case] = await cases_of(service)

    assert await cases_of(service, OTHER_TENANT) == []
    read = await service.client.get(f"{CASES}/{case['id']}", headers=auth(OTHER_TENANT))
    assert read.status_code == 404
    assert read.headers["content-type"] == PROBLEM_MEDIA_TYPE
    for action, body in [("assign", {"owner": "x"}), ("acknowledge", None), ("close", CLOSE)]:
        answered = await act(service, case["id"], action, body, tenant=OTHER_TENANT)
        assert answered.status_code == 404
    [untouched] = await cases_of(service)
    assert untouched["version"] == 1


async def test_listing_filters_and_pages(service: RunningService, clock: ManualClock) -> None:
    for _ in range(3):
        await post_answer(service, clock)
    first, second, third = await cases_of(service)
    assert (await act(service, third["id"], "acknowledge")).status_code == 200

    assert [c["id"] for c in await cases_of(service, status="open")] == [first["id"], second["id"]]
    assert [c["id"] for c in await cases_of(service, status="acknowledged")] == [third["id"]]
    assert len(await cases_of(service, owner_team="cases")) == 3
    assert await cases_of(service, owner_team="billing") == []
    assert await cases_of(service, topic="billing") == []
    assert await cases_of(service, breached="true") == []
    page = await service.client.get(CASES, params={"limit": 2}, headers=auth(TENANT))
    rest = await service.client.get(
        CASES, params={"limit": 2, "cursor": page.json()["next_cursor"]}, headers=auth(TENANT)
    )
    assert [c["id"] for c in page.json()["items"] + rest.json()["items"]] == [
        first["id"],
        second["id"],
        third["id"],
    ]
    assert rest.json()["next_cursor"] is None
    bad = await service.client.get(CASES, params={"status": "lost"}, headers=auth(TENANT))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "status"


# ---------------------------------------------------------------------- clocks


async def test_escalation_at_half_the_acknowledge_clock_then_each_breach_once(
    service: RunningService, clock: ManualClock, nats_client: NatsClient
) -> None:
    await post_answer(service, clock)
    [case] = await cases_of(service)
    opened = clock()

    await move_clock(service, clock, 12 * HOUR - timedelta(seconds=1))
    assert subjects(await published(service, nats_client)) == [CASE_OPENED]
    await move_clock(service, clock, timedelta(seconds=1))
    assert subjects(await published(service, nats_client)) == [CASE_OPENED, CASE_ESCALATED]
    await move_clock(service, clock, 12 * HOUR)
    await move_clock(service, clock, 48 * HOUR)
    await move_clock(service, clock, 96 * HOUR)
    await move_clock(service, clock, 96 * HOUR)  # nothing is left to fall due

    events = await published(service, nats_client)
    assert subjects(events) == [
        CASE_OPENED,
        CASE_ESCALATED,
        CASE_BREACHED,
        CASE_BREACHED,
        CASE_BREACHED,
    ]
    escalated = events[1][1]
    assert escalated["escalate_to"] == "supervisor" and escalated["team"] == "cases"
    assert escalated["seconds_since_feedback"] == 12 * 3600
    breaches = [(p["clock"], p["deadline"], p["breach_round"]) for _, p in events[2:]]
    stamp = lambda moment: moment.isoformat().replace("+00:00", "Z")  # noqa: E731
    assert breaches == [
        ("acknowledge", stamp(opened + 24 * HOUR), 1),
        ("action", stamp(opened + 72 * HOUR), 1),
        ("close", stamp(opened + 7 * 24 * HOUR), 1),
    ]
    [breached] = await cases_of(service, breached="true")
    assert breached["id"] == case["id"]
    assert [b["clock"] for b in breached["breaches"]] == ["acknowledge", "action", "close"]
    assert breached["next_due_at"] is None
    assert breached["escalated_at"] is not None


async def test_acknowledged_in_time_then_the_action_clock_breaches_at_72_hours(
    service: RunningService, clock: ManualClock, nats_client: NatsClient
) -> None:
    await post_answer(service, clock)
    [case] = await cases_of(service)
    await move_clock(service, clock, 2 * HOUR)
    assert (await act(service, case["id"], "acknowledge")).status_code == 200

    await move_clock(service, clock, 70 * HOUR - timedelta(seconds=1))
    assert CASE_BREACHED not in subjects(await published(service, nats_client))
    await move_clock(service, clock, timedelta(seconds=1))

    events = await published(service, nats_client, CASE_BREACHED)
    assert [payload["clock"] for _, payload in events] == ["action"]
    assert events[0][1]["state"] == "acknowledged"
    assert events[0][1]["acknowledged_after_seconds"] == 2 * 3600
    # Documenting late does not breach the action clock twice; closing in time meets the last.
    assert (await act(service, case["id"], "actions", ACTION)).status_code == 200
    assert (await act(service, case["id"], "close", CLOSE)).status_code == 200
    await move_clock(service, clock, 30 * 24 * HOUR)
    assert len(await published(service, nats_client, CASE_BREACHED)) == 1


async def test_a_reopened_case_runs_its_clocks_again(
    service: RunningService, clock: ManualClock, nats_client: NatsClient
) -> None:
    await post_answer(service, clock)
    [case] = await cases_of(service)
    for action, body in [("acknowledge", None), ("actions", ACTION), ("close", CLOSE)]:
        assert (await act(service, case["id"], action, body)).status_code == 200
    await move_clock(service, clock, 10 * 24 * HOUR)
    assert (await act(service, case["id"], "reopen")).status_code == 200

    await move_clock(service, clock, 12 * HOUR)
    await move_clock(service, clock, 12 * HOUR)

    events = await published(service, nats_client)
    assert subjects(events)[-2:] == [CASE_ESCALATED, CASE_BREACHED]
    assert events[-1][1]["breach_round"] == 2
    assert events[-1][1]["clock"] == "acknowledge"


async def test_feedback_older_than_a_clock_is_breached_as_the_case_opens(
    service: RunningService, clock: ManualClock, nats_client: NatsClient
) -> None:
    """The deadline passed before the answer arrived: the breach is recorded with the case."""
    await post_answer(service, clock, occurred_at=(clock() - 30 * HOUR).isoformat())
    [case] = await cases_of(service)

    assert case["breaches"][0]["clock"] == "acknowledge"  # overdue at intake: breached at once
    events = await published(service, nats_client)
    assert subjects(events) == [CASE_OPENED, CASE_BREACHED, CASE_ESCALATED]
    assert (await act(service, case["id"], "acknowledge")).status_code == 200
    await move_clock(service, clock, timedelta(seconds=1))
    assert subjects(await published(service, nats_client))[3:] == [CASE_ACKNOWLEDGED]


async def test_clocks_survive_a_restart_and_fire_once(
    launch: Launch, clock: ManualClock, nats_client: NatsClient
) -> None:
    async with launch() as first:
        await post_answer(first, clock)
        await first.outbox_drained()

    clock.advance(25 * HOUR)  # nobody is running when both the escalation and the deadline pass

    async with launch() as second:
        clocks = second.state.component(CaseClocks)
        await eventually(
            lambda: asyncio.sleep(0, clocks.checked_until == clock()),
            what="the clocks to look at the cases after the restart",
        )
        await move_clock(second, clock, timedelta(seconds=1))
        events = await published(second, nats_client)

    assert subjects(events) == [CASE_OPENED, CASE_BREACHED, CASE_ESCALATED]
    assert events[1][1]["clock"] == "acknowledge"


async def test_two_replicas_publish_each_breach_once(
    launch: Launch, clock: ManualClock, nats_client: NatsClient
) -> None:
    async with launch() as one, launch() as two:
        for _ in range(5):
            await post_answer(one, clock)
        clock.advance(8 * 24 * HOUR)
        for replica in (one, two):
            replica.state.component(CaseClocks).wake()
        await asyncio.gather(
            move_clock(one, clock, timedelta(0)), move_clock(two, clock, timedelta(0))
        )
        events = await published(one, nats_client)

    counted: dict[str, int] = {}
    for subject, _ in events:
        counted[subject] = counted.get(subject, 0) + 1
    assert counted == {CASE_OPENED: 5, CASE_ESCALATED: 5, CASE_BREACHED: 15}


# ---------------------------------------------------------------------- root causes


async def test_root_causes_pareto_with_recurrence(
    service: RunningService, clock: ManualClock
) -> None:
    clock.advance(-6 * 24 * HOUR)  # answers are never in the future: start in the past
    start = clock() - HOUR

    async def documented(cause: dict[str, Any], *, closed: bool) -> None:
        await post_answer(service, clock)
        case = (await cases_of(service))[0]
        steps = [("acknowledge", None), ("actions", ACTION | {"root_cause": cause})]
        for action, body in steps + ([("close", CLOSE)] if closed else []):
            assert (await act(service, case["id"], action, body)).status_code == 200

    await documented(ROOT_CAUSE, closed=True)
    clock.advance(5 * 24 * HOUR)
    await documented(ROOT_CAUSE, closed=False)  # the same cause within 30 days of a close
    await documented({"category": "product", "why_chain": ["app crashed"]}, closed=False)
    await post_answer(service, clock)  # no root cause yet: not counted

    answered = await service.client.get(
        f"{CASES}/root-causes",
        params={"from": start.isoformat(), "to": (clock() + HOUR).isoformat()},
        headers=auth(TENANT, Role.VIEWER),
    )

    assert answered.status_code == 200, answered.text
    body = answered.json()
    assert body["total"] == 3
    assert [
        (r["category"], r["team"], r["count"], r["recurrences"], r["cumulative_share"])
        for r in body["items"]
    ] == [("process", "cases", 2, 1, 2 / 3), ("product", "cases", 1, 0, 1.0)]
    # Without a range: the 90 days up to now.
    recent = await service.client.get(f"{CASES}/root-causes", headers=auth(TENANT, Role.VIEWER))
    assert recent.json()["items"] == body["items"]
    other = await service.client.get(
        f"{CASES}/root-causes",
        params={"from": start.isoformat(), "to": (clock() + HOUR).isoformat()},
        headers=auth(OTHER_TENANT, Role.VIEWER),
    )
    assert other.json()["items"] == []
    backwards = await service.client.get(
        f"{CASES}/root-causes",
        params={"from": clock().isoformat(), "to": start.isoformat()},
        headers=auth(TENANT),
    )
    assert backwards.status_code == 422
