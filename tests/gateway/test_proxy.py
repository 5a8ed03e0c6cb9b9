"""Forwarding: headers in and out, streaming both ways, size limits, upstream failures."""

import asyncio
import hashlib
import re
import uuid
from collections.abc import AsyncIterator

import httpx

from cxops.common.auth import (
    INTERNAL_TOKEN_HEADER,
    CallerContext,
    Role,
    mint_internal_token,
    verify_internal_token,
)
from cxops.gateway.proxy import strip_hop_by_hop
from tests.gateway.conftest import SECRET, Gateway, StartGateway
from tests.gateway.test_auth import assert_problem

KIB = 1024
MIB = 1024 * KIB


def test_hop_by_hop_headers_and_those_connection_names_are_dropped() -> None:
    headers = [
        (b"Connection", b"keep-alive, X-Private"),
        (b"X-Private", b"1"),
        (b"Keep-Alive", b"timeout=5"),
        (b"Proxy-Authorization", b"Basic x"),
        (b"Proxy-Connection", b"keep-alive"),
        (b"Proxy-Anything", b"1"),
        (b"TE", b"trailers"),
        (b"Trailer", b"X-Sum"),
        (b"Transfer-Encoding", b"chunked"),
        (b"Upgrade", b"h2c"),
        (b"Content-Type", b"text/plain"),
        (b"X-Kept", b"yes"),
    ]
    assert strip_hop_by_hop(headers) == [(b"content-type", b"text/plain"), (b"x-kept", b"yes")]
    assert strip_hop_by_hop(headers, drop=frozenset({b"x-kept"})) == [
        (b"content-type", b"text/plain")
    ]


async def test_the_request_reaches_the_service_without_the_key_and_with_a_token(
    gateway: Gateway,
) -> None:
    record, key = await gateway.create_key(role=Role.INTEGRATION)
    response = await gateway.client.post(
        "/v1/journey/echo?a=1&b=%20x",
        headers={
            "Authorization": f"Bearer {key}",
            "X-API-Key": key,
            "X-Request-Id": "req-123",
            "Connection": "keep-alive, x-drop-me",
            "X-Drop-Me": "1",
            "Keep-Alive": "timeout=5",
            "Proxy-Authorization": "Basic eHl6",
            "TE": "trailers",
            INTERNAL_TOKEN_HEADER: "forged-by-the-client",
            "X-Forwarded-For": "6.6.6.6",
            "X-Keep-Me": "yes",
        },
        content=b"payload",
    )
    assert response.status_code == 200, response.text
    echo = response.json()
    seen: dict[str, list[str]] = {}
    for name, value in echo["headers"]:
        seen.setdefault(name, []).append(value)

    assert echo["method"] == "POST"
    assert echo["raw_path"] == "/v1/journey/echo"
    assert echo["query"] == "a=1&b=%20x"
    assert echo["body_length"] == len(b"payload")
    for never in ("authorization", "x-api-key", "x-drop-me", "keep-alive", "te"):
        assert never not in seen, never
    assert "proxy-authorization" not in seen
    assert seen["x-keep-me"] == ["yes"]
    assert seen["x-request-id"] == ["req-123"]
    assert seen["x-forwarded-for"] == ["127.0.0.1"]  # the client's own claim is not trusted
    assert seen["x-forwarded-proto"] == ["http"]
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}", seen["traceparent"][0])
    [token] = seen[INTERNAL_TOKEN_HEADER.lower()]
    assert verify_internal_token(token, secret=SECRET) == CallerContext(
        tenant="acme", role=Role.INTEGRATION, subject=str(record.id)
    )

    assert response.headers["x-request-id"] == "req-123"
    assert response.headers["x-upstream-kept"] == "1"
    for hop in ("x-upstream-hop", "keep-alive", "proxy-authenticate", "upgrade", "trailer"):
        assert hop not in response.headers, hop
    assert len(response.headers.get_list("date")) == 1


async def test_a_request_id_is_made_when_the_client_sends_none(gateway: Gateway) -> None:
    response = await gateway.client.get("/v1/feedback/echo", headers=await gateway.key())
    forwarded = dict((k, v) for k, v in response.json()["headers"])["x-request-id"]
    assert response.headers["x-request-id"] == forwarded
    assert len(forwarded) >= 16


async def test_a_large_response_is_streamed_not_buffered(gateway: Gateway) -> None:
    """The service sends a first chunk and waits: the client can only see that chunk if the
    gateway relays it before the service finished."""
    headers = await gateway.key()
    token = uuid.uuid4().hex
    size = 24 * MIB
    received = 0
    digest_ok = True
    async with gateway.client.stream(
        "GET", f"/v1/journey/stream?size={size}&token={token}", headers=headers
    ) as response:
        assert response.status_code == 200
        chunks = response.aiter_raw()
        while received < 64 * KIB:
            chunk = await asyncio.wait_for(anext(chunks), 10)
            digest_ok &= set(chunk) <= {ord("a")}
            received += len(chunk)
        released = await gateway.client.get(f"/v1/journey/release?token={token}", headers=headers)
        assert released.status_code == 200
        async for chunk in chunks:
            received += len(chunk)
    assert digest_ok
    assert received == size


async def test_a_request_body_is_streamed_to_the_service(gateway: Gateway) -> None:
    """The client sends half, then waits until the service has seen that half."""
    headers = await gateway.key()
    token = uuid.uuid4().hex
    half = b"x" * (256 * KIB)

    async def body() -> AsyncIterator[bytes]:
        yield half

        async def upstream_has_half() -> bool:
            progress = await gateway.client.get(
                f"/v1/journey/progress?token={token}", headers=headers
            )
            return bool(progress.json()["received"] >= len(half))

        for _ in range(500):
            if await upstream_has_half():
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the first half never reached the service")
        yield half

    response = await gateway.client.post(
        f"/v1/journey/upload?token={token}", headers=headers, content=body()
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "body_length": 2 * len(half),
        "body_sha256": hashlib.sha256(half + half).hexdigest(),
    }


async def test_a_declared_oversize_body_is_413_before_it_is_sent(
    start_gateway: StartGateway,
) -> None:
    async with start_gateway(max_body_bytes=1000) as gateway:
        _, key = await gateway.create_key()
        host, port = gateway.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            (
                "POST /v1/journey/echo HTTP/1.1\r\n"
                f"Host: {host}\r\nX-API-Key: {key}\r\n"
                "Content-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)  # no body was sent
        writer.close()
        assert head.startswith(b"HTTP/1.1 413 ")
        assert b"application/problem+json" in head
        assert b"connection: close" in head.lower()


async def test_a_streamed_body_that_grows_past_the_limit_is_413(
    start_gateway: StartGateway,
) -> None:
    async with start_gateway(max_body_bytes=64 * KIB) as gateway:
        headers = await gateway.key()

        async def too_much() -> AsyncIterator[bytes]:
            for _ in range(8):
                yield b"y" * (16 * KIB)

        for path in ("/v1/journey/upload", "/v1/keys"):  # proxied, and the gateway's own
            response = await gateway.client.post(path, headers=headers, content=too_much())
            assert_problem(response, 413)
        within = await gateway.client.post(
            "/v1/journey/upload", headers=headers, content=b"z" * (64 * KIB)
        )
        assert within.status_code == 200


async def test_a_bulk_import_has_a_larger_limit_of_its_own(start_gateway: StartGateway) -> None:
    async with start_gateway(max_body_bytes=64 * KIB, import_max_body_bytes=256 * KIB) as gateway:
        headers = await gateway.key()
        body = b"x" * (128 * KIB)
        imported = await gateway.client.post(
            "/v1/feedback/responses/import", headers=headers, content=body
        )
        assert imported.status_code == 200, imported.text
        assert imported.json()["body_length"] == len(body)
        elsewhere = await gateway.client.post(
            "/v1/feedback/responses/upload", headers=headers, content=body
        )
        assert_problem(elsewhere, 413)
        too_large = await gateway.client.post(
            "/v1/feedback/responses/import", headers=headers, content=b"x" * (300 * KIB)
        )
        body_problem = assert_problem(too_large, 413)
        assert str(256 * KIB) in body_problem["detail"]


async def test_an_event_log_upload_has_a_larger_limit_of_its_own(
    start_gateway: StartGateway,
) -> None:
    async with start_gateway(
        max_body_bytes=64 * KIB, event_log_max_body_bytes=256 * KIB
    ) as gateway:
        headers = await gateway.key()
        uploaded = await gateway.client.post(
            "/v1/journey/event-logs", headers=headers, content=b"x" * (128 * KIB)
        )
        assert uploaded.status_code == 200, uploaded.text
        assert uploaded.json()["body_length"] == 128 * KIB
        too_large = await gateway.client.post(
            "/v1/journey/event-logs", headers=headers, content=b"x" * (300 * KIB)
        )
        assert str(256 * KIB) in assert_problem(too_large, 413)["detail"]


async def test_a_bulk_import_may_take_longer_than_other_calls(
    start_gateway: StartGateway,
) -> None:
    async with start_gateway(upstream_timeout_seconds=0.3, import_timeout_seconds=10) as gateway:
        headers = await gateway.key()
        slow_import = await gateway.client.post(
            "/v1/feedback/responses/import?seconds=1", headers=headers, content=b"x"
        )
        assert slow_import.status_code == 200, slow_import.text
        slow_upload = await gateway.client.post(
            "/v1/feedback/responses/upload?seconds=1", headers=headers, content=b"x"
        )
        assert_problem(slow_upload, 504)


async def test_an_unreachable_service_is_503_problem(gateway: Gateway) -> None:
    response = await gateway.client.get("/v1/scorecard/metrics/nps", headers=await gateway.key())
    body = assert_problem(response, 503)
    assert body["service"] == "scorecard"
    assert response.headers["retry-after"] == "1"


async def test_a_service_too_slow_to_answer_is_504_problem(start_gateway: StartGateway) -> None:
    async with start_gateway(upstream_timeout_seconds=0.3) as gateway:
        response = await gateway.client.get(
            "/v1/journey/slow?seconds=3", headers=await gateway.key()
        )
        assert assert_problem(response, 504)["service"] == "journey"


async def test_unknown_services_are_404_and_wrong_methods_405(gateway: Gateway) -> None:
    headers = await gateway.key()
    assert_problem(await gateway.client.get("/v1/billing/invoices", headers=headers), 404)
    assert_problem(await gateway.client.get(f"/v1/keys/{uuid.uuid4()}", headers=headers), 405)
    dotted = await gateway.client.get("/v1/journey/a/%2E%2E/echo", headers=headers)
    assert_problem(dotted, 400)


async def test_a_service_called_directly_without_the_internal_token_is_401(
    routing_service: str,
) -> None:
    async with httpx.AsyncClient(base_url=routing_service, trust_env=False) as client:
        assert_problem(await client.get("/v1/routing/ops/dead-letters"), 401)
        forged = mint_internal_token(
            CallerContext(tenant="acme", role=Role.ADMIN, subject="me"),
            secret="not-the-gateway-secret-but-long-enough-0123",
        )
        response = await client.get(
            "/v1/routing/ops/dead-letters", headers={INTERNAL_TOKEN_HEADER: forged}
        )
        assert_problem(response, 401)
