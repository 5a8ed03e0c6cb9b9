"""Latency from ``POST /v1/feedback/responses`` to the scorecard metric reflecting it: the whole
path gateway → feedback → outbox → NATS → scorecard consumer → metric. Goal: p95 ≤ 250 ms.

Baseline in the same run: the latency of the POST alone, so the share of the event path shows.

    uv run python bench/e2e_latency.py [--samples 200]
"""

import argparse
import asyncio
import time

import aiohttp
from common import percentile, start_suite


async def measure(samples: int) -> None:
    suite = start_suite()
    try:
        key = suite.create_api_key(tenant="latency", role="integration", name="bench")
        headers = {"Authorization": f"Bearer {key}"}
        base = suite.gateway_url
        end_to_end: list[float] = []
        post_only: list[float] = []
        async with aiohttp.ClientSession(headers=headers) as session:
            for i in range(samples + 10):
                body = {
                    "kind": "csat",
                    "score": 1 + i % 5,
                    "customer_ref": f"c{i}",
                    "channel": "chat",
                }
                started = time.perf_counter()
                async with session.post(f"{base}/v1/feedback/responses", json=body) as response:
                    assert response.status == 201, await response.text()
                posted = time.perf_counter()
                while True:
                    async with session.get(f"{base}/v1/scorecard/metrics/csat") as metric:
                        if (await metric.json())["responses"] == i + 1:
                            break
                    await asyncio.sleep(0.002)
                if i >= 10:  # the first ten warm the path up
                    end_to_end.append(time.perf_counter() - started)
                    post_only.append(posted - started)
    finally:
        suite.stop()
    for name, values in (("POST alone", post_only), ("POST → scorecard", end_to_end)):
        print(
            f"{name:18}: p50 {percentile(values, 0.5) * 1000:6.1f} ms   "
            f"p95 {percentile(values, 0.95) * 1000:6.1f} ms   "
            f"max {max(values) * 1000:6.1f} ms   (n={len(values)})"
        )
    print("goal: POST → scorecard p95 <= 250 ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=200)
    asyncio.run(measure(parser.parse_args().samples))


if __name__ == "__main__":
    main()
