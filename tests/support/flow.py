"""Driving the feedback → scorecard flow through a running suite's gateway."""

import asyncio
import time

import httpx

from cxops.cli.supervisor import Suite
from tests.support.services import eventually

#: Settings for suites that push hundreds of requests: the per-key rate limit out of the way.
UNTHROTTLED = {
    "CXOPS_GATEWAY_RATE_LIMIT_PER_SECOND": "100000",
    "CXOPS_GATEWAY_RATE_LIMIT_BURST": "100000",
}


def response_body(i: int, kind: str = "nps") -> dict[str, object]:
    score = {"nps": i % 11, "csat": 1 + i % 5, "ces": 1 + i % 7}[kind]
    return {"kind": kind, "score": score, "customer_ref": f"cust-{i}", "channel": "web"}


async def post_responses(
    client: httpx.AsyncClient, count: int, *, kind: str = "nps", concurrency: int = 20
) -> list[int]:
    """POST ``count`` responses; returns the status of each."""
    limit = asyncio.Semaphore(concurrency)

    async def one(i: int) -> int:
        async with limit:
            try:
                response = await client.post("/v1/feedback/responses", json=response_body(i, kind))
                return response.status_code
            except httpx.TransportError:
                return 0

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def metric(client: httpx.AsyncClient, name: str = "nps") -> dict[str, object]:
    response = await client.get(f"/v1/scorecard/metrics/{name}")
    response.raise_for_status()
    body: dict[str, object] = response.json()
    return body


async def wait_for_responses(
    client: httpx.AsyncClient, expected: int, *, name: str = "nps", timeout: float = 60.0
) -> float:
    """Wait until the scorecard counts ``expected`` responses; returns the seconds it took.
    Fails at once if it counts more (a double count is never corrected later)."""
    started = time.monotonic()
    while True:
        try:
            seen = (await metric(client, name))["responses"]
        except httpx.HTTPError:
            seen = None
        if seen == expected:
            return time.monotonic() - started
        assert seen is None or int(str(seen)) <= expected, f"counted {seen} > {expected}"
        if time.monotonic() - started > timeout:
            raise AssertionError(f"scorecard counts {seen}, expected {expected}")
        await asyncio.sleep(0.05)


async def wait_until_counting(
    client: httpx.AsyncClient, *, at_least: int = 20, timeout: float = 30.0
) -> None:
    """Wait until the scorecard counts ``at_least`` responses: the stream is flowing."""

    async def counting() -> bool:
        return int(str((await metric(client))["responses"])) >= at_least

    await eventually(counting, what=f"the scorecard to count {at_least} responses", within=timeout)


def client_for(suite: Suite, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=suite.gateway_url,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30.0,
        trust_env=False,
    )
