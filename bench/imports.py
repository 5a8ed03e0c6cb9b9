"""``POST /v1/feedback/responses/import`` through the gateway: rows stored and enriched per second,
and how long after the answer the scorecard counts every row.

Bodies of ``--rows`` NDJSON answers (100,000 by default, the most one call takes), each with an
``external_id``: one where every answer has a comment, and one where ``--comment-share`` of them
do (a survey export, where most answers have none). Baseline in the same run: reading the same
comments in this process on one core (what enrichment alone costs), and the rows per second of
single ``POST /v1/feedback/responses`` calls, 32 at a time.

After each import the bench polls ``GET /v1/scorecard/metrics/nps`` until it counts every row.
A retry of the first body is sent last: it must store nothing.

Goals: ≥ 20,000 rows/s stored and enriched; the scorecard counts all 100,000 within 10 s of the
answer.

    uv run python bench/imports.py [--rows 100000] [--comment-share 0.3]
"""

import argparse
import asyncio
import json
import random
import time

import aiohttp
from common import post_load, start_suite

from cxops.feedback.enrichment import TenantEnrichment

COMMENTS = [
    "The agent was helpful but the refund took too long.",
    "Delivery arrived two days late and the box was damaged.",
    "Great service, quick answer, thank you!",
    "I was charged twice and nobody answers the phone.",
    "The app keeps crashing when I try to pay.",
    "Friendly staff, but I waited 40 minutes on hold.",
    "Write to me at ana.garcia@example.com, the invoice is wrong.",
    "Easy to return the item, refund came in a day.",
]


def rows(count: int, *, comment_share: float, prefix: str) -> list[dict[str, object]]:
    chooser = random.Random(7)
    return [
        {
            "external_id": f"{prefix}-{i}",
            "kind": "nps",
            "score": i % 11,
            "comment": (
                COMMENTS[i % len(COMMENTS)] + f" Order {i}."
                if chooser.random() < comment_share
                else None
            ),
            "customer_ref": f"cust-{i % 20_000}",
            "channel": "email",
            "occurred_at": "2026-11-02T10:00:00Z",
        }
        for i in range(count)
    ]


def ndjson(answers: list[dict[str, object]]) -> bytes:
    return b"\n".join(json.dumps(answer).encode() for answer in answers)


async def counted(session: aiohttp.ClientSession, base: str) -> int:
    async with session.get(f"{base}/v1/scorecard/metrics/nps") as metric:
        return int((await metric.json())["responses"])


async def import_once(
    session: aiohttp.ClientSession, base: str, body: bytes, expected_total: int
) -> tuple[dict[str, object], float, float]:
    """The answer, its seconds, and the seconds from the answer until the scorecard counts
    ``expected_total`` responses."""
    started = time.perf_counter()
    async with session.post(
        f"{base}/v1/feedback/responses/import",
        data=body,
        headers={"Content-Type": "application/x-ndjson"},
        timeout=aiohttp.ClientTimeout(total=600),
    ) as response:
        assert response.status == 200, await response.text()
        result: dict[str, object] = await response.json()
    answered = time.perf_counter()
    while True:
        if await counted(session, base) >= expected_total:
            return result, answered - started, time.perf_counter() - answered
        await asyncio.sleep(0.05)


def enrichment_alone(answers: list[dict[str, object]]) -> float:
    """Comments read per second in this process, on one core."""
    reader = TenantEnrichment.built_in()
    comments = [str(answer["comment"]) for answer in answers if answer["comment"]]
    started = time.perf_counter()
    for comment in comments:
        reader.read_as_json(comment, kind="nps", score=5)
    return len(comments) / (time.perf_counter() - started)


async def single_posts(base: str, key: str, seconds: float) -> float:
    def body(i: int) -> dict[str, object]:
        return {
            "kind": "nps",
            "score": i % 11,
            "comment": COMMENTS[i % len(COMMENTS)],
            "customer_ref": f"single-{i}",
            "channel": "email",
        }

    result = await post_load(
        f"{base}/v1/feedback/responses",
        body=body,
        headers={"Authorization": f"Bearer {key}"},
        seconds=seconds,
        concurrency=32,
    )
    return result.rps


async def measure(count: int, comment_share: float) -> None:
    every = rows(count, comment_share=1.0, prefix="all")
    some = rows(count, comment_share=comment_share, prefix="some")
    baseline = enrichment_alone(every[:20_000])
    suite = start_suite()
    try:
        key = suite.create_api_key(tenant="imports", role="integration", name="bench")
        base = suite.gateway_url
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as session:
            warm = rows(2_000, comment_share=1.0, prefix="warm")
            await import_once(session, base, ndjson(warm), len(warm))  # starts the workers
            total = len(warm)
            figures = []
            for name, answers in (("every row a comment", every), (f"{comment_share:.0%}", some)):
                total += len(answers)
                result, seconds, lag = await import_once(session, base, ndjson(answers), total)
                assert result["accepted"] == len(answers), result
                figures.append((name, len(answers) / seconds, seconds, lag))
            retry, retry_seconds, _ = await import_once(session, base, ndjson(every), total)
            assert retry == {"accepted": 0, "duplicates": count, "rejected": []}, retry
        single = await single_posts(base, key, seconds=5)
    finally:
        suite.stop()
    print(f"rows per import: {count}")
    for name, rate, seconds, lag in figures:
        print(
            f"import, {name:22}: {rate:8.0f} rows/s ({seconds:5.1f} s)   "
            f"scorecard counts all {lag:5.1f} s after the answer"
        )
    print(f"retry of the first import : {count / retry_seconds:8.0f} rows/s, all duplicates")
    print(f"baseline, enrichment alone: {baseline:8.0f} comments/s on one core in-process")
    print(f"baseline, single POSTs    : {single:8.0f} rows/s (32 concurrent)")
    print(
        f"ratio, every-comment import / enrichment alone: {figures[0][1] / baseline:.2f}x; "
        f"/ single POSTs: {figures[0][1] / single:.1f}x"
    )
    print("goals: >= 20,000 rows/s; the scorecard counts all rows within 10 s of the answer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--comment-share", type=float, default=0.3)
    arguments = parser.parse_args()
    asyncio.run(measure(arguments.rows, arguments.comment_share))


if __name__ == "__main__":
    main()
