"""Survey invitations on SQLite and PostgreSQL with real NATS: surveys, the rules an exit point
goes through (recontact across surveys, quota per day, sampling, contact channel), the timer on
an injected clock (delay, restart, two replicas sending once), exit events consumed from real
streams, and responses linked by their token; tenant isolation and bad input."""

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nats.aio.client import Client as NatsClient
from nats.js.api import StreamConfig

from cxops.cli.nats_server import NatsServer
from cxops.common.auth import Role
from cxops.common.errors import PROBLEM_MEDIA_TYPE
from cxops.feedback.app import create_app
from cxops.feedback.domain.invitations import sample_bucket
from cxops.feedback.events import (
    INTERACTION_RECORDED,
    RESPONSE_RECEIVED,
    SURVEY_INVITED,
    TASK_COMPLETED,
    ResponseReceivedV1,
    SurveyInvitedV1,
)
from cxops.feedback.invitations import InvitationTimer
from cxops.feedback.settings import FeedbackSettings
from tests.support.clock import ManualClock
from tests.support.services import (
    RunningService,
    auth,
    consumer_caught_up,
    eventually,
    publish_event,
    running,
    settings_for,
)

TENANT = "acme"
OTHER = "globex"
ADMIN = auth(TENANT)
PLATFORM = auth(TENANT, Role.INTEGRATION)
SURVEYS = "/v1/feedback/surveys"
INVITATIONS = "/v1/feedback/invitations"
RESPONSES = "/v1/feedback/responses"
EMAIL = {"channel": "email", "address": "ana@example.com"}


Start = Callable[[ManualClock], AbstractAsyncContextManager[RunningService]]


@pytest.fixture
async def start(feedback_database: str, nats_server: NatsServer, nats_client: NatsClient) -> Start:
    """Start a feedback service (as many as a test wants, one database) on a clock; the streams
    of the exit events exist, as routing and journey would make them."""
    js = nats_client.jetstream()
    await js.add_stream(StreamConfig(name="CX_ROUTING", subjects=["cx.routing.>"]))
    await js.add_stream(StreamConfig(name="CX_JOURNEY", subjects=["cx.journey.>"]))
    settings = settings_for(
        FeedbackSettings, database_url=feedback_database, nats_url=nats_server.url
    )

    def starting(clock: ManualClock) -> AbstractAsyncContextManager[RunningService]:
        return running(create_app(settings, clock=clock))

    return starting


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
async def service(start: Start, clock: ManualClock) -> AsyncIterator[RunningService]:
    async with start(clock) as running_service:
        yield running_service


async def put_survey(
    service: RunningService, key: str, headers: dict[str, str] = ADMIN, **fields: Any
) -> dict[str, Any]:
    body = {"kind": "csat", **fields}
    answer = await service.client.put(f"{SURVEYS}/{key}", json=body, headers=headers)
    assert answer.status_code in (200, 201), answer.text
    return dict(answer.json())


async def invite(
    service: RunningService,
    survey_key: str,
    customer_ref: str = "c-1",
    headers: dict[str, str] = PLATFORM,
    **fields: Any,
) -> dict[str, Any]:
    body = {"survey_key": survey_key, "customer_ref": customer_ref, "contact": EMAIL, **fields}
    answer = await service.client.post(INVITATIONS, json=body, headers=headers)
    assert answer.status_code in (200, 201), answer.text
    return dict(answer.json())


async def listed(
    service: RunningService, headers: dict[str, str] = ADMIN, **params: Any
) -> list[dict[str, Any]]:
    answer = await service.client.get(INVITATIONS, params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


async def invited_events(nats_client: NatsClient, *, settle: float = 0.5) -> list[SurveyInvitedV1]:
    """Every ``survey.invited`` on CX_FEEDBACK so far, read by an ephemeral consumer."""
    js = nats_client.jetstream()
    await eventually(lambda: js.stream_info("CX_FEEDBACK"), what="the CX_FEEDBACK stream")
    subscription = await js.pull_subscribe(SURVEY_INVITED, stream="CX_FEEDBACK")
    found = []
    try:
        while True:
            try:
                batch = await subscription.fetch(100, timeout=settle)
            except TimeoutError:
                break
            found += [SurveyInvitedV1.model_validate_json(m.data) for m in batch]
    finally:
        await subscription.unsubscribe()
    return found


async def sent(service: RunningService, invitation_id: str) -> bool:
    answer = await service.client.get(f"{INVITATIONS}/{invitation_id}", headers=ADMIN)
    return bool(answer.json()["status"] == "sent")


def wake(service: RunningService) -> None:
    service.state.component(InvitationTimer).wake()


# ----------------------------------------------------------------------------- surveys


async def test_a_survey_is_created_replaced_versioned_and_read(
    service: RunningService, clock: ManualClock
) -> None:
    exit_point = {
        "event": TASK_COMPLETED,
        "conditions": [{"field": "channel", "op": "in", "value": ["chat", "voice"]}],
    }
    created = await service.client.put(
        f"{SURVEYS}/csat-after-chat",
        json={"kind": "csat", "exit_points": [exit_point], "delay_seconds": 600},
        headers=auth(TENANT, Role.OPS_LEAD),
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["version"] == 1 and body["recontact_days"] is None and body["valid_days"] == 14
    assert body["exit_points"] == [{**exit_point, "activity": None}]
    assert body["sampling_percentage"] == 100

    clock.advance(timedelta(minutes=5))
    same = await put_survey(service, "csat-after-chat", exit_points=[exit_point], delay_seconds=600)
    assert same["version"] == 1 and same["updated_at"] == body["updated_at"]
    changed = await put_survey(service, "csat-after-chat", sampling_percentage=12.5)
    assert changed["version"] == 2 and changed["updated_at"] > body["updated_at"]
    assert changed["created_at"] == body["created_at"] and changed["exit_points"] == []

    read = await service.client.get(f"{SURVEYS}/csat-after-chat", headers=auth(TENANT, Role.VIEWER))
    assert read.status_code == 200 and read.json() == changed
    assert [
        s["key"] for s in (await service.client.get(SURVEYS, headers=ADMIN)).json()["items"]
    ] == ["csat-after-chat"]
    # Another tenant sees none of it; a supervisor may not write it.
    assert (await service.client.get(SURVEYS, headers=auth(OTHER))).json()["items"] == []
    missing = await service.client.get(f"{SURVEYS}/csat-after-chat", headers=auth(OTHER))
    assert missing.status_code == 404
    refused = await service.client.put(
        f"{SURVEYS}/x", json={"kind": "nps"}, headers=auth(TENANT, Role.SUPERVISOR)
    )
    assert refused.status_code == 403


BAD_SURVEYS: list[tuple[str, str, dict[str, Any], str, str]] = [
    # (case, key, body, field named, where)
    ("unknown kind", "s", {"kind": "promoter"}, "kind", "body"),
    ("bad key", "Bad Key!", {"kind": "nps"}, "key", "path"),
    ("unknown field", "s", {"kind": "nps", "mood": 1}, "mood", "body"),
    ("sampling above 100", "s", {"kind": "nps", "sampling_percentage": 101}, "sampling_percentage",
     "body"),
    ("sampling too precise", "s", {"kind": "nps", "sampling_percentage": 1.234},
     "sampling_percentage", "body"),
    ("negative delay", "s", {"kind": "nps", "delay_seconds": -1}, "delay_seconds", "body"),
    ("zero quota", "s", {"kind": "nps", "quota_per_day": 0}, "quota_per_day", "body"),
    ("unknown exit event", "s", {"kind": "nps", "exit_points": [{"event": "cx.x.y.v1"}]},
     "exit_points.0.event", "body"),
    ("activity on a task", "s",
     {"kind": "nps", "exit_points": [{"event": TASK_COMPLETED, "activity": "x"}]},
     "exit_points.0.activity", "body"),
    ("unknown condition field", "s",
     {"kind": "nps", "exit_points": [
         {"event": TASK_COMPLETED, "conditions": [{"field": "colour", "op": "eq", "value": 1}]}]},
     "exit_points.0.conditions", "body"),
    ("unknown operator", "s",
     {"kind": "nps", "exit_points": [
         {"event": TASK_COMPLETED, "conditions": [{"field": "channel", "op": "~", "value": 1}]}]},
     "exit_points.0.conditions.0.op", "body"),
    ("in without a list", "s",
     {"kind": "nps", "exit_points": [
         {"event": TASK_COMPLETED, "conditions": [{"field": "queue", "op": "in", "value": "a"}]}]},
     "exit_points.0.conditions", "body"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "key", "body", "field", "where"), BAD_SURVEYS)
async def test_a_bad_survey_is_a_problem_naming_the_field_and_nothing_is_stored(
    service: RunningService, case: str, key: str, body: dict[str, Any], field: str, where: str
) -> None:
    answer = await service.client.put(f"{SURVEYS}/{key}", json=body, headers=ADMIN)
    assert answer.status_code == 422, case
    assert answer.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert (field, where) in [(e["field"], e["in"]) for e in answer.json()["errors"]], answer.text
    assert await service.count("feedback_surveys") == 0


async def test_a_bad_manual_invitation_is_a_problem_and_nothing_is_stored(
    service: RunningService,
) -> None:
    await put_survey(service, "nps")
    for body, field in [
        ({"survey_key": "nps"}, "customer_ref"),
        (
            {"survey_key": "nps", "customer_ref": "c", "contact": {"address": "a@b"}},
            "contact.channel",
        ),
        ({"survey_key": "nps", "customer_ref": "c", "task_id": "t-1"}, "task_id"),
        ({"survey_key": "nps", "customer_ref": "c", "force": "maybe"}, "force"),
    ]:
        answer = await service.client.post(INVITATIONS, json=body, headers=PLATFORM)
        assert answer.status_code == 422, body
        assert answer.json()["errors"][0]["field"] == field
    unknown = await service.client.post(
        INVITATIONS, json={"survey_key": "nope", "customer_ref": "c"}, headers=PLATFORM
    )
    assert unknown.status_code == 404 and unknown.headers["content-type"] == PROBLEM_MEDIA_TYPE
    refused = await service.client.post(
        INVITATIONS,
        json={"survey_key": "nps", "customer_ref": "c"},
        headers=auth(TENANT, Role.AGENT),
    )
    assert refused.status_code == 403
    bad_status = await service.client.get(INVITATIONS, params={"status": "lost"}, headers=ADMIN)
    assert bad_status.status_code == 422 and bad_status.json()["errors"][0]["field"] == "status"
    assert await service.count("feedback_invitations") == 0


# ------------------------------------------------------------------------------- rules


async def test_recontact_spans_surveys_and_a_survey_may_set_its_own_window(
    service: RunningService, clock: ManualClock
) -> None:
    await put_survey(service, "csat")
    await put_survey(service, "nps", kind="nps")
    await put_survey(service, "ces-always", kind="ces", recontact_days=0)
    await put_survey(service, "csat-monthly", recontact_days=30)

    first = await invite(service, "csat")
    assert first["status"] == "scheduled" and first["token"]
    assert (await invite(service, "nps"))["status"] == "throttled"  # another survey, 7 days
    assert (await invite(service, "ces-always"))["status"] == "scheduled"  # its own window: 0
    assert (await invite(service, "nps", customer_ref="c-2"))["status"] == "scheduled"

    clock.advance(timedelta(days=7))
    assert (await invite(service, "nps"))["status"] == "scheduled"  # the default has passed
    clock.advance(timedelta(days=7, seconds=1))
    assert (await invite(service, "csat-monthly"))["status"] == "throttled"  # 30 days
    clock.advance(timedelta(days=30))
    assert (await invite(service, "csat-monthly"))["status"] == "scheduled"

    outcomes = [
        "invited" if i["status"] in ("scheduled", "sent") else i["status"]
        for i in await listed(service, customer_ref="c-1")
    ]  # newest first; those without a delay are sent at once
    assert outcomes == ["invited", "throttled", "invited", "invited", "throttled", "invited"]
    assert len(await listed(service, customer_ref="c-1", status="throttled")) == 2
    assert all("token" not in i for i in await listed(service))  # only its POST shows a token


async def test_a_quota_counts_invitations_per_utc_day(
    service: RunningService, clock: ManualClock
) -> None:
    clock.at = datetime.now(UTC).replace(hour=23, minute=0, second=0, microsecond=0)
    await put_survey(service, "nps", kind="nps", quota_per_day=2)
    outcomes = [(await invite(service, "nps", f"c-{n}"))["status"] for n in range(4)]
    assert outcomes == ["scheduled", "scheduled", "quota_full", "quota_full"]
    clock.advance(timedelta(hours=1))  # midnight UTC: a new day
    assert (await invite(service, "nps", "c-2"))["status"] == "scheduled"
    # A customer refused for the quota was not invited, so not throttled either.
    assert (await invite(service, "nps", "c-3"))["status"] == "scheduled"
    assert (await invite(service, "nps", "c-4"))["status"] == "quota_full"


async def test_sampling_is_deterministic_auditable_and_force_skips_only_it(
    service: RunningService,
) -> None:
    await put_survey(service, "nps", kind="nps", sampling_percentage=40)
    decided = []
    for n in range(30):
        invitation = await invite(service, "nps", f"c-{n}", external_id=f"visit-{n}")
        decided.append(invitation)
        assert invitation["sample_bucket"] == sample_bucket(TENANT, "nps", f"visit-{n}")
        expected = "scheduled" if invitation["sample_bucket"] < 4000 else "sampled_out"
        assert invitation["status"] == expected
    assert 4 <= sum(i["status"] == "scheduled" for i in decided) <= 20
    # The same external id is the same decision, not a new draw.
    again = await service.client.post(
        INVITATIONS,
        json={
            "survey_key": "nps",
            "customer_ref": "c-0",
            "contact": EMAIL,
            "external_id": "visit-0",
        },
        headers=PLATFORM,
    )
    assert again.status_code == 200 and again.json() == decided[0]
    assert await service.count("feedback_invitations") == 30

    out = next(i for i in decided if i["status"] == "sampled_out")
    forced = await invite(service, "nps", out["customer_ref"], external_id="forced", force=True)
    assert forced["status"] == "scheduled" and forced["forced"] is True
    invited = next(i for i in decided if i["status"] == "scheduled")
    throttled = await invite(service, "nps", invited["customer_ref"], force=True)
    assert throttled["status"] == "throttled"  # force skips sampling, not recontact


async def test_without_a_usable_contact_channel_nobody_is_invited(service: RunningService) -> None:
    await put_survey(service, "nps", kind="nps", channels=["email"])
    none = await invite(service, "nps", contact=None)
    sms = await invite(service, "nps", contact={"channel": "sms", "address": "+34600111222"})
    assert none["status"] == sms["status"] == "no_contact_channel"
    assert none["token"] is None and none["due_at"] is None
    assert (await invite(service, "nps"))["status"] == "scheduled"  # not throttled by those


# ------------------------------------------------------------------------------- timer


async def test_an_invitation_is_sent_when_due_on_the_injected_clock(
    service: RunningService, clock: ManualClock, nats_client: NatsClient
) -> None:
    await put_survey(service, "csat", delay_seconds=3600, valid_days=3)
    task_id, agent_id = uuid.uuid4(), uuid.uuid4()
    invitation = await invite(service, "csat", task_id=str(task_id), agent_id=str(agent_id))
    due_at = clock.at + timedelta(hours=1)
    assert invitation["status"] == "scheduled"
    assert datetime.fromisoformat(invitation["due_at"]) == due_at
    assert datetime.fromisoformat(invitation["expires_at"]) == due_at + timedelta(days=3)

    clock.advance(timedelta(minutes=59))
    wake(service)
    await service.outbox_drained()
    assert not await sent(service, invitation["id"])
    assert await invited_events(nats_client, settle=0.2) == []

    clock.advance(timedelta(minutes=1))
    wake(service)
    await eventually(lambda: sent(service, invitation["id"]), what="the invitation to be sent")
    await service.outbox_drained()
    [event] = await invited_events(nats_client)
    assert event == SurveyInvitedV1(
        invitation_id=uuid.UUID(invitation["id"]),
        survey_key="csat",
        kind="csat",
        customer_ref="c-1",
        contact_channel="email",
        contact_address="ana@example.com",
        token=invitation["token"],
        task_id=task_id,
        agent_id=agent_id,
        due_at=due_at,
        expires_at=due_at + timedelta(days=3),
    )


async def test_pending_invitations_survive_a_restart_and_two_replicas_send_each_once(
    start: Start, clock: ManualClock, nats_client: NatsClient
) -> None:
    async with start(clock) as first:
        await put_survey(first, "csat", delay_seconds=600)
        pending = [(await invite(first, "csat", f"c-{n}"))["id"] for n in range(5)]
    clock.advance(timedelta(minutes=10))
    async with start(clock) as one, start(clock) as two:
        for replica in (one, two):
            wake(replica)

        async def all_sent() -> bool:
            return all([await sent(one, invitation) for invitation in pending])

        await eventually(all_sent, what="every pending invitation to be sent")
        await one.outbox_drained()
        await two.outbox_drained()
    events = await invited_events(nats_client)
    assert sorted(str(e.invitation_id) for e in events) == sorted(pending)


# ------------------------------------------------------------------------- exit events


def task_completed(**fields: Any) -> dict[str, Any]:
    """A ``task.completed`` payload as routing publishes it."""
    return {
        "task_id": str(uuid.uuid4()),
        "agent_id": str(uuid.uuid4()),
        "team": "billing",
        "queue": "billing",
        "channel": "chat",
        "tier": "gold",
        "customer_ref": "c-9",
        "case_id": None,
        "wait_seconds": 12.0,
        "handle_seconds": 340.5,
        "resolved": True,
        "csat": None,
        "completed_at": datetime.now(UTC).isoformat(),
        **fields,
    }


async def test_a_completed_task_on_nats_invites_its_customer_once(
    service: RunningService, nats_client: NatsClient
) -> None:
    await put_survey(
        service,
        "csat-after-chat",
        exit_points=[
            {
                "event": TASK_COMPLETED,
                "conditions": [
                    {"field": "channel", "op": "eq", "value": "chat"},
                    {"field": "handle_seconds", "op": "gte", "value": 60},
                ],
            }
        ],
    )
    payload = task_completed()
    event_id = str(uuid.uuid4())
    await publish_event(nats_client, TASK_COMPLETED, payload, tenant=TENANT, event_id=event_id)
    # Redelivered under another message id; a voice task; another tenant's chat.
    await publish_event(
        nats_client, TASK_COMPLETED, payload, tenant=TENANT, event_id=event_id, msg_id="again"
    )
    await publish_event(
        nats_client,
        TASK_COMPLETED,
        task_completed(channel="voice", customer_ref="c-8"),
        tenant=TENANT,
    )
    last = await publish_event(nats_client, TASK_COMPLETED, task_completed(), tenant=OTHER)
    await consumer_caught_up(nats_client, "CX_ROUTING", "feedback-routing-tasks", last)

    [invitation] = await listed(service)
    await eventually(lambda: sent(service, invitation["id"]), what="the invitation to be sent")
    await service.outbox_drained()
    assert invitation["source"] == TASK_COMPLETED and invitation["source_id"] == event_id
    assert (invitation["customer_ref"], invitation["contact_channel"]) == ("c-9", "chat")
    assert invitation["task_id"] == payload["task_id"]
    assert invitation["agent_id"] == payload["agent_id"]
    assert await service.count("feedback_invitations") == 1  # nothing for the other tenant
    [event] = await invited_events(nats_client)
    assert str(event.invitation_id) == invitation["id"]

    # A second task for the same customer is throttled, and recorded as such.
    last = await publish_event(nats_client, TASK_COMPLETED, task_completed(), tenant=TENANT)
    await consumer_caught_up(nats_client, "CX_ROUTING", "feedback-routing-tasks", last)
    assert [i["status"] for i in await listed(service)] == ["throttled", "sent"]


async def test_a_journey_interaction_invites_by_email_or_records_why_not(
    service: RunningService, nats_client: NatsClient
) -> None:
    await put_survey(
        service,
        "nps-delivered",
        kind="nps",
        exit_points=[
            {
                "event": INTERACTION_RECORDED,
                "activity": "order_delivered",
                "conditions": [{"field": "attributes.order_value", "op": "gte", "value": 50}],
            }
        ],
    )

    def interaction(identifiers: dict[str, str], **fields: Any) -> dict[str, Any]:
        return {
            "external_id": str(uuid.uuid4()),
            "occurred_at": datetime.now(UTC).isoformat(),
            "identifiers": identifiers,
            "channel": "web",
            "activity": "order_delivered",
            "team": "logistics",
            "stage": "delivery",
            "attributes": {"order_value": 80},
            **fields,
        }

    await publish_event(
        nats_client,
        INTERACTION_RECORDED,
        interaction({"email": "ana@example.com", "crm_id": "crm-1"}),
        tenant=TENANT,
    )
    await publish_event(
        nats_client, INTERACTION_RECORDED, interaction({"crm_id": "crm-2"}), tenant=TENANT
    )
    await publish_event(
        nats_client,
        INTERACTION_RECORDED,
        interaction({"phone": "+34600111222"}, attributes={"order_value": 20}),
        tenant=TENANT,
    )
    last = await publish_event(
        nats_client,
        INTERACTION_RECORDED,
        interaction({"phone": "+34600111222"}, activity="case_opened"),
        tenant=TENANT,
    )
    await consumer_caught_up(nats_client, "CX_JOURNEY", "feedback-journey-interactions", last)

    invitations = {i["customer_ref"]: i for i in await listed(service)}
    assert set(invitations) == {"crm-1", "crm-2"}
    assert invitations["crm-1"]["status"] in ("scheduled", "sent")
    assert invitations["crm-1"]["contact_address"] == "ana@example.com"
    assert invitations["crm-2"]["status"] == "no_contact_channel"


# ---------------------------------------------------------------------------- tokens


async def test_a_response_quoting_its_token_is_linked_to_the_invitation(
    service: RunningService, clock: ManualClock, nats_client: NatsClient
) -> None:
    await put_survey(service, "csat")
    task_id, agent_id = str(uuid.uuid4()), str(uuid.uuid4())
    invitation = await invite(service, "csat", task_id=task_id, agent_id=agent_id)
    await eventually(lambda: sent(service, invitation["id"]), what="the invitation to be sent")

    answer = {"kind": "csat", "score": 2, "customer_ref": "c-1", "channel": "email"}
    posted = await service.client.post(
        RESPONSES, json={**answer, "invitation_token": invitation["token"]}, headers=PLATFORM
    )
    assert posted.status_code == 201, posted.text
    response = posted.json()
    assert (response["invitation_id"], response["task_id"], response["agent_id"]) == (
        invitation["id"],
        task_id,
        agent_id,
    )
    read = await service.client.get(f"{INVITATIONS}/{invitation['id']}", headers=ADMIN)
    assert read.json()["status"] == "responded" and read.json()["responded_at"] is not None

    await service.outbox_drained()
    js = nats_client.jetstream()
    subscription = await js.pull_subscribe(RESPONSE_RECEIVED, stream="CX_FEEDBACK")
    [message] = await subscription.fetch(1, timeout=5)
    received = ResponseReceivedV1.model_validate_json(message.data)
    assert (received.invitation_id, received.task_id, received.agent_id) == (
        uuid.UUID(invitation["id"]),
        uuid.UUID(task_id),
        uuid.UUID(agent_id),
    )

    # A task the response names itself wins over the invitation's.
    own_task = str(uuid.uuid4())
    again = await service.client.post(
        RESPONSES,
        json={**answer, "task_id": own_task, "invitation_token": invitation["token"]},
        headers=PLATFORM,
    )
    assert again.status_code == 201 and again.json()["task_id"] == own_task
    assert again.json()["agent_id"] == agent_id


async def test_an_unknown_expired_or_other_tenants_token_is_refused_and_nothing_stored(
    service: RunningService, clock: ManualClock
) -> None:
    await put_survey(service, "csat", valid_days=14)
    await put_survey(service, "csat", headers=auth(OTHER), valid_days=14)
    theirs = await invite(service, "csat", headers=auth(OTHER, Role.INTEGRATION))
    clock.advance(timedelta(days=-15))  # an invitation sent 15 days ago has expired by now
    expired = await invite(service, "csat", customer_ref="c-2")
    refused_outcome = await invite(service, "csat", customer_ref="c-3", contact=None)
    answer = {"kind": "csat", "score": 4, "customer_ref": "c-1", "channel": "email"}
    for token in ["x" * 43, theirs["token"], expired["token"], "not a token!"]:
        posted = await service.client.post(
            RESPONSES, json={**answer, "invitation_token": token}, headers=PLATFORM
        )
        assert posted.status_code == 422, token
        assert posted.headers["content-type"] == PROBLEM_MEDIA_TYPE
        assert posted.json()["errors"][0]["field"] == "invitation_token"
    assert refused_outcome["token"] is None
    assert await service.count("feedback_responses") == 0
    assert (
        await service.scalar(
            "SELECT count(*) FROM cx_outbox WHERE subject = :s", s=RESPONSE_RECEIVED
        )
        == 0
    )
    # Nor is another tenant's invitation listed, or readable, here.
    assert [i["id"] for i in await listed(service, headers=auth(OTHER))] == [theirs["id"]]
    assert theirs["id"] not in [i["id"] for i in await listed(service)]
    other = await service.client.get(f"{INVITATIONS}/{theirs['id']}", headers=ADMIN)
    assert other.status_code == 404
