"""``POST /v1/journey/interactions`` through the gateway: interactions resolved into customers and
stored per second, in batches of 1,000.

The interactions are the identity bench's customers (emails on the web, phones on calls, CRM ids
on cases, some shared inboxes and placeholder numbers), ``--customers`` of them, so that most
batches join values already stored. Baseline in the same run: one ``resolve`` over the same
interactions in this process (what identity resolution alone costs, with no storage).

Goal: ≥ 20,000 interactions/s resolved and stored on this machine.

    uv run python bench/journey_intake.py [--interactions 50000] [--customers 15000] [--batch 1000]
"""

import argparse
import asyncio
import gc
import json
import random
import time
from datetime import UTC, datetime, timedelta

import aiohttp
from common import start_suite

from cxops.journey.domain.identity import Event, Rules, resolve

START = datetime(2026, 11, 1, tzinfo=UTC)


def interactions(count: int, customers: int, seed: int = 7) -> list[dict[str, object]]:
    rng = random.Random(seed)
    found = []
    for number in range(count):
        customer = rng.randrange(customers)
        email = f"c{customer}@mail.test-cx.com"
        channel = rng.random()
        if channel < 0.4:
            identifiers = {"email": email}
            name = "web"
        elif channel < 0.7:
            identifiers = {"phone": f"+44 7{customer:09d}", "email": email}
            name = "phone"
        else:
            identifiers = {"phone": f"+44 7{customer:09d}", "crm_id": f"CRM-{customer:07d}"}
            name = "crm"
        if number % 200 == 0:
            identifiers["email"] = f"support@{rng.choice(['acme', 'shop'])}.com"
        found.append(
            {
                "external_id": f"i-{number}",
                "occurred_at": (START + timedelta(seconds=rng.randrange(30 * 86_400))).isoformat(),
                "identifiers": identifiers,
                "channel": name,
                "activity": rng.choice(["order placed", "called support", "case opened"]),
                "attributes": {"n": number},
            }
        )
    return found


async def post_batches(
    base: str, key: str, batches: list[list[dict[str, object]]], *, concurrency: int
) -> tuple[float, int]:
    """Every batch, ``concurrency`` at a time; seconds taken and interactions created."""
    queue = list(enumerate(batches))
    created = 0
    async with aiohttp.ClientSession(
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=aiohttp.ClientTimeout(total=600),
    ) as session:

        async def worker() -> None:
            nonlocal created
            while queue:
                _, batch = queue.pop(0)
                async with session.post(
                    f"{base}/v1/journey/interactions", data=json.dumps(batch)
                ) as response:
                    body = await response.json()
                    if response.status != 200:
                        raise RuntimeError(f"{response.status}: {body}")
                    created += body["created"]

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, created


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--interactions", type=int, default=50_000)
    parser.add_argument("--customers", type=int, default=15_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    bodies = interactions(args.interactions, args.customers)
    batches = [bodies[i : i + args.batch] for i in range(0, len(bodies), args.batch)]

    events = [
        Event(str(body["external_id"]), tuple(body["identifiers"].items()))  # type: ignore[attr-defined]
        for body in bodies
    ]
    gc.disable()
    started = time.perf_counter()
    resolution = resolve(events, Rules())
    alone = time.perf_counter() - started
    gc.enable()

    suite = start_suite()
    try:
        key = suite.create_api_key(tenant="journey-bench", role="integration", name="bench")
        seconds, created = await post_batches(
            suite.gateway_url, key, batches, concurrency=args.concurrency
        )
        retry_seconds, again = await post_batches(
            suite.gateway_url, key, batches[:5], concurrency=args.concurrency
        )
    finally:
        suite.stop()
    assert created == len(bodies), f"{created} of {len(bodies)} stored"
    assert again == 0, "a retried batch stored something"
    rate = created / seconds
    print(
        f"{len(bodies):,} interactions of {args.customers:,} customers in batches of "
        f"{args.batch:,}, {args.concurrency} at a time: {len(resolution.profiles):,} profiles"
    )
    print(f"resolve alone, in memory, one run over all: {len(bodies) / alone:,.0f} interactions/s")
    print(f"through the gateway, resolved and stored: {rate:,.0f} interactions/s ({seconds:.1f} s)")
    print(f"retry of 5 batches: {5 * args.batch / retry_seconds:,.0f} interactions/s, 0 stored")
    print(
        f"ratio: {rate / (len(bodies) / alone):.2f} of resolve alone; "
        f"goal ≥ 20,000/s: {rate >= 20_000}"
    )


if __name__ == "__main__":
    asyncio.run(main())
