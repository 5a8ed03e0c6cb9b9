"""Outages and crashes of the real suite: nothing is lost and nothing is counted twice."""

import asyncio
import json
import uuid

import nats
import pytest

from tests.support.flow import (
    UNTHROTTLED,
    client_for,
    metric,
    post_responses,
    wait_for_responses,
    wait_until_counting,
)
from tests.support.suite import SuiteFactory

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_broker_outage_loses_nothing(
    suite_factory: SuiteFactory,
    database: str,
) -> None:
    suite = await asyncio.to_thread(suite_factory.start, database=database, env=UNTHROTTLED)
    key = suite.create_api_key(tenant="outage", role="integration", name="t")
    async with client_for(suite, key) as client:
        await asyncio.to_thread(suite.stop_nats)
        statuses = await post_responses(client, 200)
        assert statuses == [201] * 200, "intake must not depend on the broker"
        assert (await metric(client))["responses"] == 0
        await asyncio.to_thread(suite.start_nats)
        await wait_for_responses(client, 200, timeout=60)
        await asyncio.sleep(1.5)  # anything late would be a double count
        assert (await metric(client))["responses"] == 200
    assert suite.exited() == []


async def test_scorecard_killed_mid_stream_resumes_exactly(
    suite_factory: SuiteFactory,
) -> None:
    # Messages the killed process had fetched come back after the ack wait: keep it short.
    env = {**UNTHROTTLED, "CXOPS_SCORECARD_CONSUMER_ACK_WAIT_SECONDS": "3"}
    suite = await asyncio.to_thread(suite_factory.start, env=env)
    key = suite.create_api_key(tenant="crash", role="integration", name="t")
    async with client_for(suite, key) as client:
        posting = asyncio.create_task(post_responses(client, 300, concurrency=10))
        await wait_until_counting(client)
        await asyncio.to_thread(suite.kill, "scorecard")
        statuses = await posting
        assert statuses == [201] * 300
        await asyncio.to_thread(suite.start_process, "scorecard")
        await wait_for_responses(client, 300, timeout=60)
        await asyncio.sleep(1.5)
        assert (await metric(client))["responses"] == 300


async def test_feedback_killed_mid_stream_loses_nothing_it_stored(
    suite_factory: SuiteFactory,
) -> None:
    """Requests in flight when feedback dies may fail; every response it stored is counted
    by the scorecard exactly once, including events still in its outbox when it died."""
    suite = await asyncio.to_thread(suite_factory.start, env=UNTHROTTLED)
    key = suite.create_api_key(tenant="crash", role="integration", name="t")
    async with client_for(suite, key) as client:
        posting = asyncio.create_task(post_responses(client, 300, concurrency=10))
        await wait_until_counting(client)
        await asyncio.to_thread(suite.kill, "feedback")
        statuses = await posting
        await asyncio.to_thread(suite.start_process, "feedback")
        accepted = statuses.count(201)
        assert 0 < accepted < 300
        stored = await stored_responses(client)
        assert stored >= accepted
        await wait_for_responses(client, stored, timeout=60)
        await asyncio.sleep(1.5)
        assert (await metric(client))["responses"] == stored


async def test_poison_event_is_dead_lettered_and_the_flow_goes_on(
    suite_factory: SuiteFactory,
) -> None:
    suite = await asyncio.to_thread(
        suite_factory.start, env={"CXOPS_SCORECARD_CONSUMER_MAX_DELIVER": "2"}
    )
    ops = suite.create_api_key(tenant="poison", role="ops_lead", name="ops")
    other = suite.create_api_key(tenant="someone-else", role="ops_lead", name="ops")
    broker = await nats.connect(**suite.nats_options("feedback"))  # a poison event of its own
    event_id = str(uuid.uuid4())
    headers = {
        "ce-id": event_id,
        "ce-source": "/cxops/feedback",
        "ce-specversion": "1.0",
        "ce-type": "cx.feedback.response.received.v1",
        "ce-time": "2026-11-25T10:00:00+00:00",
        "ce-tenant": "poison",
        "Nats-Msg-Id": event_id,
    }
    await broker.jetstream().publish(
        "cx.feedback.response.received.v1",
        json.dumps({"score": "not a response"}).encode(),
        headers=headers,
    )
    await broker.close()
    async with client_for(suite, ops) as client, client_for(suite, other) as stranger:
        assert await post_responses(client, 5) == [201] * 5
        await wait_for_responses(client, 5, timeout=30)
        for _ in range(100):
            letters = (await client.get("/v1/scorecard/ops/dead-letters")).json()["items"]
            if letters:
                break
            await asyncio.sleep(0.1)
        assert [letter["event_id"] for letter in letters] == [event_id]
        assert letters[0]["consumer"].startswith("scorecard-")
        hidden = await stranger.get("/v1/scorecard/ops/dead-letters")
        assert hidden.json()["items"] == []


async def stored_responses(client: object) -> int:
    """How many responses feedback holds for the caller's tenant, read through its API."""
    total = 0
    params: dict[str, object] = {"limit": 200}
    while True:
        page = await client.get("/v1/feedback/responses", params=params)  # type: ignore[attr-defined]
        page.raise_for_status()
        body = page.json()
        total += len(body["items"])
        if not body.get("next_cursor"):
            return total
        params["cursor"] = body["next_cursor"]
