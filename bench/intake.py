"""``POST /v1/feedback/responses`` through the gateway against a textbook one-hop endpoint, in one
run on one machine.

Baselines, each its own uvicorn process under the same load generator:
- the textbook endpoint (``textbook_app.py``): FastAPI + SQLModel as the tutorial writes it,
  validating the same body and inserting one row into SQLite with its default settings;
- the same endpoint with SQLite in WAL mode and ``synchronous=NORMAL`` (how cxops runs SQLite,
  so neither side gains from skipping fsyncs the other pays for);
- a bare uvicorn echo app (what uvicorn and the load generator alone cost).

The suite runs every guarantee: key check, rate limit, audit, proxy, feedback with its outbox,
the scorecard consuming. After the load the bench checks them: every 201 is counted by the
scorecard and has its audit record. Then an open-loop phase sends at 70% of the measured maximum
rate and reports the POST latency percentiles (measured from each request's scheduled start, so
a stall is not hidden by the generator waiting too).

Goals: intake ≥ 100% of the textbook endpoint; POST p99 ≤ 50 ms at 70% of the maximum rate.

    uv run python bench/intake.py [--seconds 10] [--concurrency 32]
"""

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import aiohttp
from common import LoadResult, percentile, post_load, start_app, start_echo, start_suite

from cxops.cli.processes import Process

TENANT = "bench"


def response_body(i: int) -> dict[str, object]:
    return {
        "kind": "nps",
        "score": i % 11,
        "comment": "The agent was helpful but the refund took too long.",
        "customer_ref": f"cust-{i % 5000}",
        "channel": "web",
    }


def start_textbook(*, wal: bool) -> tuple[Process, str]:
    database = Path(tempfile.mkdtemp(prefix="cxops-textbook-")) / "textbook.db"
    env = {"TEXTBOOK_DATABASE": str(database), **({"TEXTBOOK_WAL": "1"} if wal else {})}
    process, url = start_app("textbook", "textbook_app:app", env=env)
    return process, f"{url}/responses"


async def closed_loop(url: str, headers: dict[str, str], seconds: float, c: int) -> LoadResult:
    await post_load(url, body=response_body, headers=headers, seconds=1, concurrency=4)  # warm
    return await post_load(url, body=response_body, headers=headers, seconds=seconds, concurrency=c)


async def open_loop(
    url: str, headers: dict[str, str], *, rate: float, seconds: float
) -> tuple[list[float], int]:
    """Requests started at a fixed ``rate`` whatever the answers do; latency of each from its
    scheduled start. Returns the latencies of the 201s and the number of other answers."""
    latencies: list[float] = []
    errors = 0
    interval = 1.0 / rate
    connector = aiohttp.TCPConnector(limit=512)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int, scheduled: float) -> None:
            nonlocal errors
            payload = json.dumps(response_body(i)).encode()
            async with session.post(
                url, data=payload, headers={**headers, "content-type": "application/json"}
            ) as response:
                await response.read()
                if response.status == 201:
                    latencies.append(time.perf_counter() - scheduled)
                else:
                    errors += 1

        started = time.perf_counter()
        tasks = []
        for i in range(int(rate * seconds)):
            scheduled = started + i * interval
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, scheduled)))
        await asyncio.gather(*tasks)
    return latencies, errors


async def counted_and_audited(suite_url: str, headers: dict[str, str], expected: int) -> str:
    """Wait (bounded) until the scorecard counts ``expected`` answers and the audit log holds
    ``expected`` records of this tenant's POSTs; report what was found."""
    deadline = time.monotonic() + 60
    counted = audited = 0
    async with aiohttp.ClientSession(headers=headers) as session:
        while time.monotonic() < deadline:
            async with session.get(f"{suite_url}/v1/scorecard/metrics/nps") as answer:
                counted = (await answer.json())["responses"]
            audited = await _audit_count(session, suite_url)
            if counted >= expected and audited >= expected:
                break
            await asyncio.sleep(0.5)
    return f"scorecard counted {counted} of {expected}; audit holds {audited} of {expected}"


async def _audit_count(session: aiohttp.ClientSession, suite_url: str) -> int:
    total, cursor = 0, None
    while True:
        params = {"method": "POST", "status": "201", "limit": "1000"}
        if cursor:
            params["cursor"] = cursor
        async with session.get(f"{suite_url}/v1/audit", params=params) as answer:
            page = await answer.json()
        total += len(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return total


async def measure(seconds: float, concurrency: int) -> None:
    baselines: dict[str, LoadResult] = {}
    for name, starter in (
        ("echo (bare uvicorn)", lambda: start_echo()),
        ("textbook FastAPI+SQLModel", lambda: start_textbook(wal=False)),
        ("textbook, SQLite WAL", lambda: start_textbook(wal=True)),
    ):
        process, url = starter()
        try:
            baselines[name] = await closed_loop(url, {}, seconds, concurrency)
        finally:
            process.stop()

    suite = start_suite()
    try:
        key = suite.create_api_key(tenant=TENANT, role="admin", name="bench")
        headers = {"Authorization": f"Bearer {key}"}
        target = f"{suite.gateway_url}/v1/feedback/responses"
        intake = await closed_loop(target, headers, seconds, concurrency)
        rate = 0.7 * intake.rps
        latencies, open_errors = await open_loop(target, headers, rate=rate, seconds=seconds)
        posted = await _posted_so_far(suite.gateway_url, headers)
        guarantees = await counted_and_audited(suite.gateway_url, headers, posted)
    finally:
        suite.stop()

    textbook = baselines["textbook FastAPI+SQLModel"]
    for name, result in baselines.items():
        print(f"{name:30}: {result.rps:8.1f} req/s ({result.errors} errors)")
    print(f"{'cxops intake via the gateway':30}: {intake.rps:8.1f} req/s ({intake.errors} errors)")
    print(f"ratio intake / textbook        : {intake.rps / textbook.rps:8.1%}   (goal >= 100%)")
    wal = baselines["textbook, SQLite WAL"]
    print(f"ratio intake / textbook (WAL)  : {intake.rps / wal.rps:8.1%}")
    print(
        f"ratio intake / echo            : {intake.rps / baselines['echo (bare uvicorn)'].rps:8.1%}"
    )
    print(
        f"open loop at {rate:.0f} req/s (70%): p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms "
        f"({len(latencies)} ok, {open_errors} errors)   (goal p99 <= 50 ms)"
    )
    print(f"guarantees: {guarantees}")


async def _posted_so_far(suite_url: str, headers: dict[str, str]) -> int:
    """How many responses the tenant has: the 201s of every phase, warm-up included."""
    total, cursor = 0, None
    async with aiohttp.ClientSession(headers=headers) as session:
        while True:
            params = {"limit": "200"}
            if cursor:
                params["cursor"] = cursor
            async with session.get(f"{suite_url}/v1/feedback/responses", params=params) as answer:
                page = await answer.json()
            total += len(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    asyncio.run(measure(args.seconds, args.concurrency))


if __name__ == "__main__":
    main()
