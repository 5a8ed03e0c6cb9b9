"""Signed webhooks: endpoints, Standard Webhooks signatures checked by an independent receiver
(the ``standardwebhooks`` package), retries, 410, tenant isolation and the retry endpoint, on
a real NATS and on both databases."""

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import pytest
import standardwebhooks

from cxops.common.auth import Role
from cxops.common.embedded import NatsServer
from tests.gateway.conftest import Gateway, StartGateway, eventually
from tests.gateway.events import Publisher
from tests.gateway.webhook_receiver import receiving

CASE_OPENED = "cx.feedback.case.opened.v1"
TASK_CREATED = "cx.routing.task.created.v1"

#: Fast enough for a test: three quick retries, then the delivery has failed.
FAST: dict[str, Any] = {
    "environment": "development",
    "webhook_retry_schedule_seconds": (0.05, 0.05, 0.05),
    "webhook_poll_seconds": 0.05,
}


@pytest.fixture
def webhook_gateway(start_gateway: StartGateway, nats_server: NatsServer) -> Any:
    """``async with webhook_gateway(database_url, **settings)``: a gateway reading ``nats_server``
    with the fast retry schedule, in development (receivers on 127.0.0.1 allowed)."""

    @asynccontextmanager
    async def start(database_url: str | None = None, **overrides: Any) -> AsyncIterator[Gateway]:
        async with start_gateway(
            database_url, nats_url=nats_server.url, **(FAST | overrides)
        ) as gateway:
            yield gateway

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

    items = await eventually(done, within=15)
    assert items is not None, f"fewer than {count} deliveries of {endpoint_id} settled"
    return items


def verify(secret: str, request: Any) -> Any:
    return standardwebhooks.Webhook(secret).verify(request.body, request.headers)


async def test_deliveries_verify_with_standard_webhooks_before_and_after_a_rotation(
    webhook_gateway: Any, publisher: Publisher, database_url: str
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
