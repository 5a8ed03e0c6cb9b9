"""Live complaint alerts in the feedback service, on SQLite and PostgreSQL with real NATS: the
periodic detector at a period's close (with a clock the test sets), the real-time tier rule at
intake, reading, acknowledging, tenant isolation and bad input."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.aio.client import Client as NatsClient

from cxops.common.auth import CallerContext, Role
from cxops.common.errors import PROBLEM_MEDIA_TYPE
from cxops.feedback import service
from cxops.feedback.alerting import AlertDetector, AlertRules
from cxops.feedback.cases import CaseClocks, CaseSettingsCache
from cxops.feedback.domain.complaints import Granularity, period_of
from cxops.feedback.enrichment import Enrichments
from cxops.feedback.events import ALERT_RAISED, AlertRaisedV1
from cxops.feedback.schemas import ResponseCreate
from tests.support.services import RunningService, auth

RESPONSES = "/v1/feedback/responses"
ALERTS = "/v1/feedback/alerts"
RULES = "/v1/feedback/alert-rules"
TENANT = "acme"
OTHER_TENANT = "globex"
COMPLAINT = "I was charged twice on my bill and nobody answers. This is unacceptable."
PRAISE = "Lovely agent, thank you so much, wonderful service."

#: The hour the tests evaluate: yesterday's, so every response in it is in the past.
HOUR = period_of(datetime.now(UTC) - timedelta(days=1), Granularity.HOUR)
#: Complaints about billing in the same hour of each of the previous fourteen days.
HISTORY_DAYS = 14
USUAL = 2


async def record(feedback: RunningService, *, tenant: str, at: datetime, count: int) -> None:
    """``count`` billing complaints at ``at`` (inside its hour), through the service's own
    intake function rather than HTTP: the history is only there to be counted."""
    state = feedback.state
    caller = CallerContext(tenant=tenant, role=Role.INTEGRATION, subject="seed")
    await asyncio.gather(
        *(
            service.record_response(
                db=state.db,
                group_commit=state.group_commit,
                enrichments=state.component(Enrichments),
                alert_rules=state.component(AlertRules),
                case_settings=state.component(CaseSettingsCache),
                clocks=state.component(CaseClocks),
                caller=caller,
                payload=ResponseCreate(
                    kind="nps",
                    score=2,
                    comment=COMPLAINT,
                    customer_ref=f"cust-{i}",
                    channel="email",
                    occurred_at=at + timedelta(minutes=i % 60),
                ),
                idempotency_key=None,
            )
            for i in range(count)
        )
    )


async def seed_history(feedback: RunningService, tenant: str = TENANT) -> None:
    for back in range(HISTORY_DAYS, 0, -1):
        await record(feedback, tenant=tenant, at=HOUR - timedelta(days=back), count=USUAL)


async def post_complaints(feedback: RunningService, count: int, **changes: Any) -> list[str]:
    ids = []
    for i in range(count):
        body = {
            "kind": "nps",
            "score": 1,
            "comment": COMPLAINT,
            "customer_ref": f"cust-{i}",
            "channel": "web",
            "occurred_at": (HOUR + timedelta(minutes=3 * i)).isoformat(),
        } | changes
        posted = await feedback.client.post(
            RESPONSES, json=body, headers=auth(TENANT, Role.INTEGRATION)
        )
        assert posted.status_code == 201, posted.text
        ids.append(posted.json()["id"])
    return ids


def at_the_close(feedback: RunningService) -> AlertDetector:
    """The detector, its clock set one minute after the test's hour closed."""
    detector = feedback.state.component(AlertDetector)
    detector.clock = lambda: HOUR + timedelta(hours=1, minutes=1)
    return detector


async def alert_events(nats_client: NatsClient) -> list[AlertRaisedV1]:
    """Every ``alert.raised`` on CX_FEEDBACK so far."""
    js = nats_client.jetstream()
    info = await js.stream_info("CX_FEEDBACK")
    subscription = await js.pull_subscribe(ALERT_RAISED, stream="CX_FEEDBACK")
    messages = []
    try:
        while info.state.messages and len(messages) < info.state.messages:
            try:
                messages += await subscription.fetch(100, timeout=0.5)
            except TimeoutError:
                break
    finally:
        await subscription.unsubscribe()
    return [AlertRaisedV1.model_validate_json(message.data) for message in messages]


async def test_a_rise_raises_an_alert_at_the_close_once_with_the_responses_behind_it(
    feedback: RunningService, nats_client: NatsClient
) -> None:
    await seed_history(feedback)
    posted = await post_complaints(feedback, 15)

    raised = await at_the_close(feedback).evaluate_due()

    billing = [a for a in raised if a.topic == "billing"]
    assert [(a.granularity, a.segment, a.observed) for a in billing] == [("hour", "all", 15)]
    [alert] = billing
    assert alert.test == "poisson-tail" and alert.p_value is not None and alert.p_value < 0.001
    assert alert.expected is not None and 1.5 < alert.expected < 2.5
    assert alert.period_start == HOUR and alert.period_end == HOUR + timedelta(hours=1)
    assert alert.team == "billing-operations"
    assert "15 complaints" in alert.reason

    # Again in this process, on another replica, and on demand: nothing new is stored.
    assert await at_the_close(feedback).evaluate_due() == []
    other_replica = AlertDetector(feedback.state)
    other_replica.clock = at_the_close(feedback).clock
    assert await other_replica.evaluate_due() == []
    again = await feedback.client.post(f"{ALERTS}/evaluate", headers=auth(TENANT, Role.OPS_LEAD))
    assert again.status_code == 200 and again.json() == {"raised": []}
    stored = await feedback.count("feedback_alerts")
    assert stored == len(raised)

    await feedback.outbox_drained()
    published = await alert_events(nats_client)
    assert sorted(str(e.alert_id) for e in published) == sorted(str(a.id) for a in raised)
    [event] = [e for e in published if e.alert_id == alert.id]
    assert (event.test, event.topic, event.segment, event.observed) == (
        "poisson-tail",
        "billing",
        "all",
        15,
    )

    listed = await feedback.client.get(
        ALERTS, params={"topic": "billing"}, headers=auth(TENANT, Role.VIEWER)
    )
    assert [item["id"] for item in listed.json()["items"]] == [str(alert.id)]
    detail = (
        await feedback.client.get(f"{ALERTS}/{alert.id}", headers=auth(TENANT, Role.SUPERVISOR))
    ).json()
    assert detail["responses_total"] == 15
    assert sorted(r["id"] for r in detail["responses"]) == sorted(posted)
    assert {r["sentiment"] for r in detail["responses"]} == {"negative"}
    assert all("charged twice" in r["comment"] for r in detail["responses"])


async def test_steady_traffic_raises_nothing(feedback: RunningService) -> None:
    await seed_history(feedback)
    await post_complaints(feedback, USUAL)
    assert await at_the_close(feedback).evaluate_due() == []
    assert await feedback.count("feedback_alerts") == 0


async def test_acknowledging_records_who_and_when_once_and_only_in_the_tenant(
    feedback: RunningService,
) -> None:
    await seed_history(feedback)
    await post_complaints(feedback, 15)
    evaluated = await feedback.client.post(
        f"{ALERTS}/evaluate", headers=auth(TENANT, Role.OPS_LEAD)
    )
    # The on-demand evaluation uses the detector's clock: the real one, whose latest closed
    # hour holds none of these complaints (and a day needs six weeks of history).
    assert evaluated.json() == {"raised": []}
    [alert] = [a for a in await at_the_close(feedback).evaluate_due() if a.topic == "billing"]
    path = f"{ALERTS}/{alert.id}"

    # Another tenant sees nothing and cannot acknowledge.
    stranger = auth(OTHER_TENANT, Role.ADMIN)
    assert (await feedback.client.get(path, headers=stranger)).status_code == 404
    assert (await feedback.client.post(f"{path}/acknowledge", headers=stranger)).status_code == 404
    assert (await feedback.client.get(ALERTS, headers=stranger)).json()["items"] == []
    # A viewer reads but does not acknowledge.
    viewer = await feedback.client.post(f"{path}/acknowledge", headers=auth(TENANT, Role.VIEWER))
    assert viewer.status_code == 403

    acknowledged = await feedback.client.post(
        f"{path}/acknowledge", headers=auth(TENANT, Role.SUPERVISOR, subject="sup-1")
    )
    assert acknowledged.status_code == 200, acknowledged.text
    body = acknowledged.json()
    assert body["status"] == "acknowledged" and body["acknowledged_by"] == "sup-1"
    assert body["acknowledged_at"] is not None

    twice = await feedback.client.post(
        f"{path}/acknowledge", headers=auth(TENANT, Role.OPS_LEAD, subject="lead-2")
    )
    assert twice.status_code == 409
    assert twice.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert twice.json()["acknowledged_by"] == "sup-1"
    open_ones = await feedback.client.get(
        ALERTS, params={"status": "open", "topic": "billing"}, headers=auth(TENANT, Role.VIEWER)
    )
    assert open_ones.json()["items"] == []


async def test_the_tier_rule_alerts_a_team_at_once_for_a_named_tier_only(
    feedback: RunningService, nats_client: NatsClient
) -> None:
    # Off by default.
    await post_complaints(feedback, 1, customer_tier="gold")
    assert await feedback.count("feedback_alerts") == 0

    rules = {"realtime": {"enabled": True, "tiers": ["gold", "platinum"], "min_confidence": 0.5}}
    put = await feedback.client.put(RULES, json=rules, headers=auth(TENANT, Role.OPS_LEAD))
    assert put.status_code == 200, put.text
    assert put.json()["realtime"]["tiers"] == ["gold", "platinum"]
    assert put.json()["periodic"]["enabled"] is True

    [gold] = await post_complaints(feedback, 1, customer_tier="gold")
    await post_complaints(feedback, 1, customer_tier="silver")
    await post_complaints(feedback, 1)
    await post_complaints(feedback, 1, customer_tier="gold", comment=PRAISE, score=10)

    [alert] = (await feedback.client.get(ALERTS, headers=auth(TENANT, Role.VIEWER))).json()["items"]
    assert (alert["granularity"], alert["test"], alert["segment"]) == (
        "realtime",
        "realtime",
        "tier:gold",
    )
    assert alert["response_id"] == gold and alert["team"] == "billing-operations"
    assert alert["topic"] == "billing" and alert["p_value"] is None
    detail = (await feedback.client.get(f"{ALERTS}/{alert['id']}", headers=auth(TENANT))).json()
    assert [r["id"] for r in detail["responses"]] == [gold] and detail["responses_total"] == 1

    await feedback.outbox_drained()
    [event] = await alert_events(nats_client)
    assert (str(event.alert_id), event.test, str(event.response_id)) == (
        alert["id"],
        "realtime",
        gold,
    )

    off = {"realtime": {"enabled": False, "tiers": ["gold"]}}
    assert (await feedback.client.put(RULES, json=off, headers=auth(TENANT))).status_code == 200
    await post_complaints(feedback, 1, customer_tier="gold")
    assert await feedback.count("feedback_alerts") == 1


async def test_bad_input_is_a_problem_naming_the_field_and_stores_nothing(
    feedback: RunningService,
) -> None:
    for body, field in [
        ({"realtime": {"enabled": True, "min_confidence": 2}}, "realtime.min_confidence"),
        ({"realtime": {"enabled": "yes"}}, "realtime.enabled"),
        ({"periodic": {"alpha": 0}}, "periodic.alpha"),
        ({"realtime": {"tierz": ["gold"]}}, "realtime.tierz"),
    ]:
        refused = await feedback.client.put(RULES, json=body, headers=auth(TENANT, Role.OPS_LEAD))
        assert refused.status_code == 422, (body, refused.text)
        assert refused.headers["content-type"] == PROBLEM_MEDIA_TYPE
        assert field in [e["field"] for e in refused.json()["errors"]], refused.json()
    assert await feedback.count("feedback_alert_rules") == 0
    assert (await feedback.client.get(RULES, headers=auth(TENANT))).json()["updated_at"] is None

    bad_status = await feedback.client.get(
        ALERTS, params={"status": "closed"}, headers=auth(TENANT, Role.VIEWER)
    )
    assert bad_status.status_code == 422
    assert [(e["field"], e["in"]) for e in bad_status.json()["errors"]] == [("status", "query")]
    # Writing the rules is for operations leads and admins.
    supervisor = await feedback.client.put(RULES, json={}, headers=auth(TENANT, Role.SUPERVISOR))
    assert supervisor.status_code == 403
    assert await feedback.count("feedback_alert_rules") == 0


async def test_a_day_is_evaluated_at_its_close_against_previous_same_weekdays(
    feedback: RunningService,
) -> None:
    day = period_of(HOUR, Granularity.DAY)
    for back in range(49, 0, -1):
        await record(feedback, tenant=TENANT, at=HOUR - timedelta(days=back), count=USUAL)
    await record(feedback, tenant=TENANT, at=HOUR, count=15)
    # A detector of its own: the service's evaluated the real clock's latest closed day (this
    # one) at start, before the complaints were there, and evaluates each period once.
    detector = AlertDetector(feedback.state)
    detector.clock = lambda: day + timedelta(days=1, minutes=1)

    raised = await detector.evaluate_due()

    [alert] = [a for a in raised if a.granularity == "day" and a.topic == "billing"]
    assert (alert.period_start, alert.period_end) == (day, day + timedelta(days=1))
    assert (alert.segment, alert.observed, alert.test) == ("all", 15, "poisson-tail")
    assert f"for a {day.strftime('%A')}" in alert.reason
    detail = (await feedback.client.get(f"{ALERTS}/{alert.id}", headers=auth(TENANT))).json()
    assert detail["responses_total"] == 15
