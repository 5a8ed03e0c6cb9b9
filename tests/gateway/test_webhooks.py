"""Signed webhooks: endpoints, Standard Webhooks signatures checked by an independent receiver
(the ``standardwebhooks`` package), retries, 410, tenant isolation and the retry endpoint, on
a real NATS and on both databases."""

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks

from cxops.cli.nats_server import NatsServer
from cxops.common.auth import Role
from cxops.feedback.events import SURVEY_INVITED, SurveyInvitedV1
from tests.gateway.conftest import Gateway, StartGateway, running_gateway
from tests.gateway.events import Publisher
from tests.gateway.test_auth import assert_problem
from tests.gateway.webhook_receiver import receiving
from tests.support.services import eventually

CASE_OPENED = "cx.feedback.case.opened.v1"
TASK_CREATED = "cx.routing.task.created.v1"

#: Fast enough for a test: three quick retries, then the delivery has failed.
FAST: dict[str, Any] = {
    "environment": "development",
    "webhook_retry_schedule_seconds": (0.05, 0.05, 0.05),
    "webhook_poll_seconds": 0.05,
}


@pytest.fixture
def webhook_gateway(nats_server: NatsServer, tmp_path: Path) -> StartGateway:
    """``async with webhook_gateway(database_url, **settings)``: a gateway reading ``nats_server``
    with the fast retry schedule, in development (receivers on 127.0.0.1 allowed). No service
    runs behind it: webhooks need only the streams."""

    def start(database_url: str | None = None, **overrides: Any) -> Any:
        return running_gateway(
            tmp_path, database_url, nats_url=nats_server.url, **(FAST | overrides)
        )

    return start


@pytest.fixture
async def publisher(nats_server: NatsServer) -> AsyncIterator[Publisher]:
    async with Publisher(nats_server.url) as publisher:
        yield publisher


async def create_endpoint(
    gateway: Gateway, headers: dict[str, str], url: str, *types: str, **extra: Any
) -> dict[str, Any]:
    response = await gateway.client.post(
        "/v1/webhooks/endpoints",
        headers=headers,
        json={"url": url, "event_types": list(types) or [CASE_OPENED], **extra},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def deliveries(
    gateway: Gateway, headers: dict[str, str], endpoint_id: str, **params: Any
) -> list[dict[str, Any]]:
    response = await gateway.client.get(
        f"/v1/webhooks/endpoints/{endpoint_id}/deliveries", headers=headers, params=params
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def settled(
    gateway: Gateway, headers: dict[str, str], endpoint_id: str, count: int
) -> list[dict[str, Any]]:
    """The endpoint's deliveries once ``count`` of them are no longer pending."""

    async def done() -> list[dict[str, Any]] | None:
        items = await deliveries(gateway, headers, endpoint_id)
        finished = [item for item in items if item["status"] != "pending"]
        return items if len(finished) >= count else None

    items = await eventually(done, what="the deliveries", within=15)
    assert items is not None, f"fewer than {count} deliveries of {endpoint_id} settled"
    return items


def verify(secret: str, request: Any) -> Any:
    return standardwebhooks.Webhook(secret).verify(request.body, request.headers)


async def test_deliveries_verify_with_standard_webhooks_before_and_after_a_rotation(
    webhook_gateway: StartGateway, publisher: Publisher, database_url: str
) -> None:
    async with webhook_gateway(database_url) as gateway, receiving() as receiver:
        integration = await gateway.key(tenant="acme", role=Role.INTEGRATION)
        endpoint = await create_endpoint(
            gateway, integration, receiver.url, "cx.feedback.case.*", description="crm"
        )
        assert endpoint["secret"].startswith("whsec_")
        assert endpoint["event_types"] == ["cx.feedback.case.*"] and endpoint["enabled"]

        await publisher.publish(TASK_CREATED, tenant="acme", task_id="t-1")  # not subscribed
        await publisher.publish(CASE_OPENED, tenant="globex", case_id="theirs")  # not acme's
        event = await publisher.publish(CASE_OPENED, tenant="acme", case_id="c-1", score=2)

        (first,) = await receiver.wait_for(1)
        assert first.webhook_id == event.id
        assert verify(endpoint["secret"], first) == {
            "type": CASE_OPENED,
            "timestamp": event.time.isoformat().replace("+00:00", "Z"),
            "data": {"case_id": "c-1", "score": 2},
        }
        assert first.headers["content-type"] == "application/json"
        assert len(first.headers["webhook-signature"].split(" ")) == 1

        rotated = await gateway.client.post(
            f"/v1/webhooks/endpoints/{endpoint['id']}/rotate-secret", headers=integration
        )
        assert rotated.status_code == 200, rotated.text
        new_secret = rotated.json()["secret"]
        assert new_secret.startswith("whsec_") and new_secret != endpoint["secret"]
        assert rotated.json()["overlap_seconds"] == gateway.settings.webhook_secret_overlap_seconds
        expires = datetime.fromisoformat(rotated.json()["previous_secret_expires_at"])
        assert expires > datetime.fromisoformat(rotated.json()["endpoint"]["updated_at"])

        second_event = await publisher.publish(CASE_OPENED, tenant="acme", case_id="c-2")
        _, second = await receiver.wait_for(2)
        assert second.webhook_id == second_event.id
        assert len(second.headers["webhook-signature"].split(" ")) == 2
        for secret in (endpoint["secret"], new_secret):  # either side of the switch verifies
            assert verify(secret, second)["data"] == {"case_id": "c-2"}
        with pytest.raises(standardwebhooks.WebhookVerificationError):
            verify(endpoint["secret"], dataclasses.replace(second, body=second.body + b" "))

        items = await settled(gateway, integration, endpoint["id"], 2)
        assert [(item["event_id"], item["status"], item["attempts"]) for item in items] == [
            (second_event.id, "succeeded", 1),
            (event.id, "succeeded", 1),
        ]
        assert items[0]["last_response_code"] == 204
        await asyncio.sleep(0.2)
        assert len(receiver.received) == 2, "a delivery of another tenant or type went out"


async def test_a_survey_invitation_reaches_the_platform_that_subscribed_to_it(
    webhook_gateway: StartGateway, publisher: Publisher, database_url: str
) -> None:
    """Feedback's ``survey.invited`` (issue 14) is delivered, signed, to an endpoint subscribed
    to exactly that type: the platform learns whom to ask, how, and the token to link."""
    invited = SurveyInvitedV1(
        invitation_id=uuid.uuid4(),
        survey_key="csat-after-chat",
        kind="csat",
        customer_ref="c-1",
        contact_channel="email",
        contact_address="ana@example.com",
        token="tok_" + "a" * 39,
        task_id=uuid.uuid4(),
        agent_id=None,
        due_at=datetime.now(UTC),
        expires_at=datetime.now(UTC) + timedelta(days=14),
    ).model_dump(mode="json")
    async with webhook_gateway(database_url) as gateway, receiving() as receiver:
        integration = await gateway.key(tenant="acme", role=Role.INTEGRATION)
        endpoint = await create_endpoint(gateway, integration, receiver.url, SURVEY_INVITED)
        await publisher.publish(CASE_OPENED, tenant="acme", case_id="not subscribed")
        event = await publisher.publish(SURVEY_INVITED, tenant="acme", **invited)
        (received,) = await receiver.wait_for(1)
        assert received.webhook_id == event.id
        assert verify(endpoint["secret"], received)["data"] == invited


async def wait_for_delivery(
    gateway: Gateway, headers: dict[str, str], endpoint_id: str, check: Any
) -> dict[str, Any]:
    """The endpoint's only delivery, once ``check(delivery)`` holds."""

    async def found() -> dict[str, Any] | None:
        items = await deliveries(gateway, headers, endpoint_id)
        return items[0] if items and check(items[0]) else None

    delivery = await eventually(found, what="the delivery", within=15)
    assert delivery is not None, f"no delivery of {endpoint_id} reached the expected state"
    return delivery


async def test_retry_after_is_honoured_and_every_retry_carries_the_same_id(
    webhook_gateway: StartGateway, publisher: Publisher, database_url: str
) -> None:
    async with webhook_gateway(database_url) as gateway, receiving() as receiver:
        admin = await gateway.key(tenant="acme")
        endpoint = await create_endpoint(gateway, admin, receiver.url, "cx.routing.*")
        receiver.answer(429, {"Retry-After": "2"})
        receiver.answer(503)
        event = await publisher.publish(TASK_CREATED, tenant="acme", task_id="t-7")

        waiting = await wait_for_delivery(
            gateway, admin, endpoint["id"], lambda d: d["last_response_code"] == 429
        )
        assert waiting["status"] == "pending" and waiting["attempts"] == 1
        gap = datetime.fromisoformat(waiting["next_attempt_at"]) - datetime.fromisoformat(
            waiting["last_attempt_at"]
        )
        assert gap.total_seconds() == 2  # not the schedule's 0.05 s: the receiver asked for 2

        done = await wait_for_delivery(
            gateway, admin, endpoint["id"], lambda d: d["status"] == "succeeded"
        )
        assert done["attempts"] == 3 and done["last_response_code"] == 204
        assert done["last_error"] is None and done["next_attempt_at"] is None
        requests = receiver.received
        assert [r.webhook_id for r in requests] == [event.id] * 3
        assert len({r.body for r in requests}) == 1
        for request in requests:
            verify(endpoint["secret"], request)


async def test_a_failed_delivery_is_sent_again_by_the_retry_endpoint(
    webhook_gateway: StartGateway, publisher: Publisher, database_url: str
) -> None:
    async with webhook_gateway(database_url) as gateway, receiving() as receiver:
        integration = await gateway.key(tenant="acme", role=Role.INTEGRATION)
        endpoint = await create_endpoint(gateway, integration, receiver.url, CASE_OPENED)
        receiver.answer(500, times=4)  # the first attempt and the schedule's three retries
        event = await publisher.publish(CASE_OPENED, tenant="acme", case_id="c-9")

        failed = await wait_for_delivery(
            gateway, integration, endpoint["id"], lambda d: d["status"] == "failed"
        )
        assert failed["attempts"] == 4 and failed["last_response_code"] == 500
        assert failed["last_error"] == "HTTP 500" and failed["next_attempt_at"] is None
        only_failed = await deliveries(gateway, integration, endpoint["id"], status="failed")
        assert [d["id"] for d in only_failed] == [failed["id"]]
        assert await deliveries(gateway, integration, endpoint["id"], status="succeeded") == []

        retried = await gateway.client.post(
            f"/v1/webhooks/deliveries/{failed['id']}/retry", headers=integration
        )
        assert retried.status_code == 202, retried.text
        assert retried.json()["status"] == "pending" and retried.json()["attempts"] == 0
        done = await wait_for_delivery(
            gateway, integration, endpoint["id"], lambda d: d["status"] == "succeeded"
        )
        assert done["attempts"] == 1 and done["id"] == failed["id"]
        assert [r.webhook_id for r in receiver.received] == [event.id] * 5

        again = await gateway.client.post(
            f"/v1/webhooks/deliveries/{uuid.uuid4()}/retry", headers=integration
        )
        assert_problem(again, 404)


async def test_410_gone_disables_the_endpoint_until_it_is_enabled_again(
    webhook_gateway: StartGateway, publisher: Publisher, database_url: str
) -> None:
    async with webhook_gateway(database_url) as gateway, receiving() as receiver:
        admin = await gateway.key(tenant="acme")
        endpoint = await create_endpoint(gateway, admin, receiver.url, CASE_OPENED)
        receiver.answer(410)
        await publisher.publish(CASE_OPENED, tenant="acme", case_id="c-1")

        gone = await wait_for_delivery(
            gateway, admin, endpoint["id"], lambda d: d["status"] == "failed"
        )
        assert gone["attempts"] == 1 and gone["last_response_code"] == 410
        path = f"/v1/webhooks/endpoints/{endpoint['id']}"
        disabled = (await gateway.client.get(path, headers=admin)).json()
        assert disabled["enabled"] is False and "410" in disabled["disabled_reason"]

        await publisher.publish(CASE_OPENED, tenant="acme", case_id="c-2")  # not for a gone one
        await publisher.wait_until_consumed("gateway-webhooks-feedback", service="feedback")
        enabled = await gateway.client.patch(path, headers=admin, json={"enabled": True})
        assert enabled.status_code == 200 and enabled.json()["disabled_reason"] is None
        third = await publisher.publish(CASE_OPENED, tenant="acme", case_id="c-3")
        await receiver.wait_for(2)
        assert [r.webhook_id for r in receiver.received][1:] == [third.id]
        assert len(await deliveries(gateway, admin, endpoint["id"])) == 2


async def test_endpoints_belong_to_their_tenant_and_need_admin_or_integration(
    webhook_gateway: StartGateway, publisher: Publisher
) -> None:
    async with webhook_gateway() as gateway, receiving() as receiver:
        acme = await gateway.key(tenant="acme", role=Role.INTEGRATION)
        globex = await gateway.key(tenant="globex")
        theirs = await create_endpoint(gateway, globex, receiver.url, "cx.*")
        ours = await create_endpoint(gateway, acme, receiver.url, "cx.*")

        listed = (await gateway.client.get("/v1/webhooks/endpoints", headers=acme)).json()
        assert [item["id"] for item in listed["items"]] == [ours["id"]]
        assert "secret" not in listed["items"][0]
        other = f"/v1/webhooks/endpoints/{theirs['id']}"
        for method, path in [
            ("GET", other),
            ("PATCH", other),
            ("DELETE", other),
            ("POST", f"{other}/rotate-secret"),
            ("POST", f"{other}/test"),
            ("GET", f"{other}/deliveries"),
        ]:
            body = {"enabled": False} if method == "PATCH" else None
            response = await gateway.client.request(method, path, headers=acme, json=body)
            assert_problem(response, 404)

        event = await publisher.publish(TASK_CREATED, tenant="globex", task_id="t-1")
        (delivered,) = await receiver.wait_for(1)
        verify(theirs["secret"], delivered)
        with pytest.raises(standardwebhooks.WebhookVerificationError):
            verify(ours["secret"], delivered)
        (delivery,) = await deliveries(gateway, globex, theirs["id"])
        assert delivery["event_id"] == event.id
        assert await deliveries(gateway, acme, ours["id"]) == []
        retry = await gateway.client.post(
            f"/v1/webhooks/deliveries/{delivery['id']}/retry", headers=acme
        )
        assert_problem(retry, 404)

        for role in (Role.OPS_LEAD, Role.SUPERVISOR, Role.AGENT, Role.VIEWER):
            headers = await gateway.key(tenant="acme", role=role)
            response = await gateway.client.get("/v1/webhooks/endpoints", headers=headers)
            assert_problem(response, 403)

        deleted = await gateway.client.delete(f"/v1/webhooks/endpoints/{ours['id']}", headers=acme)
        assert deleted.status_code == 204
        gone = await gateway.client.get(f"/v1/webhooks/endpoints/{ours['id']}", headers=acme)
        assert_problem(gone, 404)


async def test_the_test_delivery_is_signed_like_any_other(webhook_gateway: StartGateway) -> None:
    async with webhook_gateway() as gateway, receiving() as receiver:
        admin = await gateway.key(tenant="acme")
        endpoint = await create_endpoint(gateway, admin, receiver.url, CASE_OPENED)
        response = await gateway.client.post(
            f"/v1/webhooks/endpoints/{endpoint['id']}/test", headers=admin
        )
        assert response.status_code == 200, response.text
        sent = response.json()
        assert sent["status"] == "succeeded" and sent["last_response_code"] == 204
        assert sent["event_type"] == "cx.gateway.webhook.test.v1"
        (request,) = receiver.received
        assert request.webhook_id == sent["event_id"]
        payload = verify(endpoint["secret"], request)
        assert payload["type"] == "cx.gateway.webhook.test.v1"
        assert payload["data"]["endpoint_id"] == endpoint["id"]


async def test_bad_endpoints_are_refused_naming_the_field(webhook_gateway: StartGateway) -> None:
    async with webhook_gateway() as gateway:
        admin = await gateway.key(tenant="acme")
        cases: list[tuple[dict[str, Any], str]] = [
            ({"url": "https://h.example/x", "event_types": ["cx.routin.*"]}, "event_types.0"),
            ({"url": "https://h.example/x", "event_types": [CASE_OPENED, "*"]}, "event_types.1"),
            ({"url": "https://h.example/x", "event_types": []}, "event_types"),
            ({"url": "ftp://h.example/x", "event_types": [CASE_OPENED]}, "url"),
            ({"url": "https://u:p@h.example/x", "event_types": [CASE_OPENED]}, "url"),
            ({"url": "https://h.example/x", "event_types": [CASE_OPENED], "x": 1}, "x"),
        ]
        for body, field in cases:
            response = await gateway.client.post("/v1/webhooks/endpoints", headers=admin, json=body)
            problem = assert_problem(response, 422)
            assert [error["field"] for error in problem["errors"]] == [field], body
