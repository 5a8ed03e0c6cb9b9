"""The gateway as a real process in the whole suite: SIGKILLed while deliveries are in flight
and events unacknowledged, it loses none once restarted; SIGTERMed with an event stream open,
it ends the stream and exits by itself."""

import asyncio
from typing import Any

import httpx
import pytest

from tests.gateway.webhook_receiver import receiving
from tests.support.flow import UNTHROTTLED, client_for, post_responses
from tests.support.services import eventually
from tests.support.sse import SseEvent, open_stream
from tests.support.suite import SuiteFactory

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

RESPONSES = 20
FAST_WEBHOOKS = {
    **UNTHROTTLED,
    "CXOPS_GATEWAY_WEBHOOK_TIMEOUT_SECONDS": "1",
    "CXOPS_GATEWAY_WEBHOOK_LEASE_SECONDS": "2",
    "CXOPS_GATEWAY_WEBHOOK_POLL_SECONDS": "0.1",
    "CXOPS_GATEWAY_WEBHOOK_RETRY_SCHEDULE_SECONDS": "[0.2, 0.2, 0.2, 0.2, 0.2, 0.2]",
    "CXOPS_GATEWAY_WEBHOOK_CONSUMER_ACK_WAIT_SECONDS": "3",
}


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_a_gateway_killed_mid_delivery_loses_none(
    suite_factory: SuiteFactory,
    database: str,
) -> None:
    suite = await asyncio.to_thread(suite_factory.start, database=database, env=FAST_WEBHOOKS)
    key = suite.create_api_key(tenant="hooks", role="admin", name="t")
    async with receiving() as receiver, client_for(suite, key) as client:
        created = await client.post(
            "/v1/webhooks/endpoints",
            json={"url": receiver.url, "event_types": ["cx.feedback.response.received.v1"]},
        )
        assert created.status_code == 201, created.text
        endpoint = created.json()
        receiver.hold()  # deliveries hang in flight, leased, until the gateway is gone

        assert await post_responses(client, RESPONSES) == [201] * RESPONSES
        await receiver.wait_for(1, within=60)
        await asyncio.to_thread(suite.kill, "gateway")
        receiver.release()
        await asyncio.to_thread(suite.start_process, "gateway")

        async def all_delivered() -> list[dict[str, Any]] | None:
            response = await client.get(
                f"/v1/webhooks/endpoints/{endpoint['id']}/deliveries", params={"limit": 1000}
            )
            items: list[dict[str, Any]] = response.json()["items"]
            done = len(items) == RESPONSES and all(i["status"] == "succeeded" for i in items)
            return items if done else None

        items = await eventually(all_delivered, what="every delivery to succeed", within=120)
        event_ids = {item["event_id"] for item in items}
        assert len(event_ids) == RESPONSES
        assert event_ids <= receiver.ids()
        assert all(r.headers["webhook-signature"].startswith("v1,") for r in receiver.received)
    assert suite.exited() == []


async def test_sigterm_ends_open_event_streams_and_the_gateway_exits(
    suite_factory: SuiteFactory,
) -> None:
    suite = await asyncio.to_thread(suite_factory.start, env=UNTHROTTLED)
    key = suite.create_api_key(tenant="live", role="admin", name="t")
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        httpx.AsyncClient(base_url=suite.gateway_url, timeout=30, trust_env=False) as client,
        client_for(suite, key) as api,
        open_stream(client, headers, types="cx.feedback.response.received.v1") as stream,
    ):
        assert await post_responses(api, 1) == [201]
        (event,) = await stream.events(1, within=60)
        assert isinstance(event, SseEvent) and event.event == "cx.feedback.response.received.v1"
        stopping = asyncio.create_task(asyncio.to_thread(suite.stop_process, "gateway"))
        while (item := await stream.item(within=60)) is not None:
            assert not isinstance(item, SseEvent)
        await stopping
    log = suite.process("gateway").spec.log_file.read_text()
    assert "Finished server process" in log, "the gateway did not exit by itself on SIGTERM"
