"""The first flow end to end through the embedded runtime: gateway → feedback → outbox → NATS →
scorecard, on SQLite and on PostgreSQL."""

import asyncio
import json
import time
import uuid

import httpx
import nats
import pytest

from cxops.cli.supervisor import Suite
from cxops.common.components import SERVICES
from tests.support.flow import client_for, metric, wait_for_responses

pytestmark = pytest.mark.slow


async def test_posted_response_is_reflected_within_two_seconds(suite: Suite) -> None:
    key = suite.create_api_key(tenant="e2e-latency", role="integration", name="t")
    async with client_for(suite, key) as client:
        for expected in (1, 2, 3):
            posted = await client.post(
                "/v1/feedback/responses",
                json={
                    "kind": "csat",
                    "score": 5,
                    "customer_ref": "c-1",
                    "channel": "email",
                    "comment": "Quick and friendly.",
                },
            )
            assert posted.status_code == 201, posted.text
            started = time.monotonic()
            await wait_for_responses(client, expected, name="csat", timeout=2.0)
            assert time.monotonic() - started < 2.0


async def test_scores_follow_their_definitions(suite: Suite) -> None:
    key = suite.create_api_key(tenant="e2e-scores", role="integration", name="t")
    answers = {
        "nps": [10, 9, 9, 8, 7, 6, 0, 10],  # 4 promoters, 2 detractors of 8 → +25
        "csat": [5, 4, 3, 1, 5],  # 3 of 5 satisfied → 60%
        "ces": [2, 3, 7],  # mean 4
    }
    async with client_for(suite, key) as client:
        for kind, scores in answers.items():
            for i, score in enumerate(scores):
                response = await client.post(
                    "/v1/feedback/responses",
                    json={"kind": kind, "score": score, "customer_ref": f"c{i}", "channel": "web"},
                )
                assert response.status_code == 201, response.text
        for kind, scores in answers.items():
            await wait_for_responses(client, len(scores), name=kind, timeout=10)
        assert await metric(client, "nps") == {"metric": "nps", "value": 25.0, "responses": 8}
        assert await metric(client, "csat") == {"metric": "csat", "value": 60.0, "responses": 5}
        assert await metric(client, "ces") == {"metric": "ces", "value": 4.0, "responses": 3}


async def test_tenants_never_see_each_other(suite: Suite) -> None:
    key_a = suite.create_api_key(tenant="tenant-a", role="integration", name="a")
    key_b = suite.create_api_key(tenant="tenant-b", role="viewer", name="b")
    async with client_for(suite, key_a) as a, client_for(suite, key_b) as b:
        posted = await a.post(
            "/v1/feedback/responses",
            json={"kind": "nps", "score": 10, "customer_ref": "secret", "channel": "web"},
        )
        await wait_for_responses(a, 1, timeout=10)
        assert (await metric(b, "nps"))["responses"] == 0
        assert (await b.get("/v1/feedback/responses")).json()["items"] == []
        stolen = await b.get(f"/v1/feedback/responses/{posted.json()['id']}")
        assert stolen.status_code == 404


async def test_rejections_through_the_gateway(suite: Suite) -> None:
    key = suite.create_api_key(tenant="e2e-rejections", role="integration", name="t")
    viewer = suite.create_api_key(tenant="e2e-rejections", role="viewer", name="v")
    async with client_for(suite, key) as client, client_for(suite, viewer) as looker:
        anonymous = await client.post(
            "/v1/feedback/responses", json={}, headers={"Authorization": ""}
        )
        assert anonymous.status_code == 401
        forbidden = await looker.post(
            "/v1/feedback/responses",
            json={"kind": "nps", "score": 5, "customer_ref": "c", "channel": "web"},
        )
        assert forbidden.status_code == 403
        out_of_range = await client.post(
            "/v1/feedback/responses",
            json={"kind": "csat", "score": 6, "customer_ref": "c", "channel": "web"},
        )
        assert out_of_range.status_code == 422
        assert out_of_range.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in out_of_range.json()["errors"]] == ["score"]
        malformed = await client.post(
            "/v1/feedback/responses",
            content=b'{"kind": "nps", "score": ',
            headers={"content-type": "application/json"},
        )
        assert malformed.status_code == 422
        assert (await declared_oversize(suite, key)).startswith(b"HTTP/1.1 413 ")
        await asyncio.sleep(0.5)
        assert (await metric(client, "csat"))["responses"] == 0
        assert (await client.get("/v1/feedback/responses")).json()["items"] == []


async def declared_oversize(running: Suite, key: str) -> bytes:
    """The head of the gateway's answer to a POST that declares 2 MiB and sends none of it: the
    gateway answers before the body, so sending it all (as httpx would) races the gateway
    closing the connection."""
    host, port = running.gateway_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        (
            "POST /v1/feedback/responses HTTP/1.1\r\n"
            f"Host: {host}\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {2 * 1024 * 1024}\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    finally:
        writer.close()


async def test_services_refuse_calls_that_bypass_the_gateway(suite: Suite) -> None:
    async with httpx.AsyncClient(trust_env=False) as client:
        for service in SERVICES:
            direct = await client.get(f"{suite.url(service)}/v1/{service}/ops/dead-letters")
            assert direct.status_code == 401, service
            assert (await client.get(f"{suite.url(service)}/healthz")).status_code == 200


async def test_one_trace_from_the_caller_through_the_gateway_to_the_event(
    suite: Suite,
) -> None:
    """The caller's trace id reaches feedback over HTTP and travels on in the event's headers."""
    key = suite.create_api_key(tenant="e2e-trace", role="integration", name="t")
    trace_id = uuid.uuid4().hex
    async with client_for(suite, key) as client:
        posted = await client.post(
            "/v1/feedback/responses",
            json={"kind": "ces", "score": 2, "customer_ref": "c", "channel": "web"},
            headers={"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"},
        )
        assert posted.status_code == 201
        await wait_for_responses(client, 1, name="ces", timeout=10)
    broker = await nats.connect(**suite.nats_options("gateway"))  # the reader of every stream
    try:
        subscription = await broker.jetstream().pull_subscribe(
            "cx.feedback.response.received.v1", stream="CX_FEEDBACK"
        )
        found = None
        while found is None:
            for message in await subscription.fetch(100, timeout=5):
                if json.loads(message.data)["response_id"] == posted.json()["id"]:
                    found = message
    finally:
        await broker.close()
    assert found.headers is not None
    assert found.headers["ce-tenant"] == "e2e-trace"
    assert found.headers["traceparent"].split("-")[1] == trace_id
