"""Requests per second of ``POST /v1/feedback/responses`` through the gateway, against a bare
uvicorn echo app measured in the same run on the same machine. Goal: at least 40% of the echo.

    uv run python bench/intake.py [--seconds 10] [--concurrency 32]
"""

import argparse
import asyncio

from common import post_load, start_echo, start_suite


def response_body(i: int) -> dict[str, object]:
    return {
        "kind": "nps",
        "score": i % 11,
        "comment": "The agent was helpful but the refund took too long.",
        "customer_ref": f"cust-{i % 5000}",
        "channel": "web",
    }


async def measure(seconds: float, concurrency: int) -> None:
    echo, echo_url = start_echo()
    suite = start_suite()
    try:
        key = suite.create_api_key(tenant="bench", role="integration", name="bench")
        headers = {"Authorization": f"Bearer {key}"}
        target = f"{suite.gateway_url}/v1/feedback/responses"
        # Warm both up (connections, caches, JIT-less but import-lazy paths).
        await post_load(echo_url, body=response_body, headers={}, seconds=1, concurrency=4)
        await post_load(target, body=response_body, headers=headers, seconds=2, concurrency=4)
        baseline = await post_load(
            echo_url, body=response_body, headers={}, seconds=seconds, concurrency=concurrency
        )
        intake = await post_load(
            target, body=response_body, headers=headers, seconds=seconds, concurrency=concurrency
        )
    finally:
        suite.stop()
        echo.stop()
    ratio = intake.rps / baseline.rps
    print(f"echo (bare uvicorn)          : {baseline.rps:8.1f} req/s ({baseline.errors} errors)")
    print(f"POST /v1/feedback/responses  : {intake.rps:8.1f} req/s ({intake.errors} errors)")
    print(f"ratio intake / echo          : {ratio:8.1%}   (goal >= 40%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    asyncio.run(measure(args.seconds, args.concurrency))


if __name__ == "__main__":
    main()
