"""The agent desktop's context call (issue 15), through the gateway, with a million interactions
and 100,000 customers stored in PostgreSQL. Goal: p95 <= 50 ms.

1. **Seed** journey's database straight through COPY: ``--customers`` profiles (a phone, an
   email and a CRM id each, so three identifier rows), ``--interactions`` interactions over the
   last year (most customers about ten, one in a thousand a heavy one with fifty times more),
   feedback responses, cases and routing tasks as journey's projection stores them (built with
   the projection's own fold, so the payloads are what the consumers write) and proactive
   actions. Then ``ANALYZE``. The database is a throwaway PostgreSQL server, as the tests start
   it, unless ``--database-url`` names one (it must be empty; it is migrated first), or, with
   ``--seeded``, one an earlier run seeded with the same ``--customers``, to measure again.
2. **Serve** the embedded suite (NATS, the four services, the gateway) with journey on that
   database, and call ``GET /v1/journey/customers/context`` through the gateway for random
   customers, half by ``identifier=phone:...`` (normalised and looked up), half by
   ``customer_id``, ``--samples`` times one at a time, then again from ``--concurrency``
   callers at once.
3. **Baselines in the same run**, same client, same key: the gateway's own ``/healthz`` (no
   service behind it) and the cheapest call through the gateway to journey that still reads
   its database: the context of a customer that does not exist (a 404 after one indexed
   lookup). The ratios say what the context's queries add to the door.

    uv run python bench/journey_context.py [--customers 100000] [--interactions 1000000]
        [--samples 2000] [--concurrency 8] [--database-url postgresql+asyncpg://... [--seeded]]
"""

import argparse
import asyncio
import contextlib
import json
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from common import ROOT, percentile, start_suite
from uuid6 import uuid7

from cxops.common.migrations import upgrade
from cxops.journey.app import SPEC
from cxops.journey.domain import facts
from cxops.journey.domain.facts import FactUpdate
from cxops.journey.projections import stored

TENANT = "bench"
CHANNELS = ("phone", "chat", "email", "web", "app")
STAGES = ("discover", "purchase", "delivery", "support", "renewal", None)
ACTIVITIES = ("order placed", "shipment delayed", "call", "chat", "case opened", "resolved")
YEAR = timedelta(days=365)


# ------------------------------------------------------------------------------ 1. seeding


def customer_id(i: int) -> str:
    return f"cust-{i:07d}"


def phone(i: int) -> str:
    return f"+346{i:08d}"


def interaction_owners(customers: int, interactions: int, rng: random.Random) -> list[int]:
    """Which customer each interaction belongs to: one in a thousand customers is heavy, with
    fifty times the interactions of the others."""
    heavy = set(rng.sample(range(customers), max(1, customers // 1000)))
    weights = [50 if i in heavy else 1 for i in range(customers)]
    return rng.choices(range(customers), weights=weights, k=interactions)


def interaction_rows(
    owners: list[int], now: datetime, rng: random.Random
) -> Iterator[tuple[Any, ...]]:
    for n, i in enumerate(owners):
        at = now - YEAR * rng.random()
        identifiers = json.dumps({"phone": phone(i), "crm_id": f"crm-{i}"})
        yield (
            uuid7(),
            TENANT,
            f"x-{n}",
            at,
            at,
            rng.choice(CHANNELS),
            rng.choice(ACTIVITIES),
            "care",
            rng.choice(STAGES),
            identifiers,
            json.dumps({"order": f"o-{n % 50_000}"}),
            customer_id(i),
        )


def customer_rows(
    customers: int, seen: dict[int, tuple[datetime, datetime, int]], now: datetime
) -> Iterator[tuple[Any, ...]]:
    for i in range(customers):
        first, last, count = seen.get(i, (now, now, 0))
        identifiers = [
            {"type": "phone", "value": phone(i)},
            {"type": "email", "value": f"c{i}@correo.es"},
            {"type": "crm_id", "value": f"crm-{i}"},
        ]
        yield (TENANT, customer_id(i), json.dumps(identifiers), "[]", "[]", count, first, last, now)


def identifier_rows(customers: int) -> Iterator[tuple[Any, ...]]:
    for i in range(customers):
        yield (TENANT, "phone", phone(i), customer_id(i))
        yield (TENANT, "email", f"c{i}@correo.es", customer_id(i))
        yield (TENANT, "crm_id", f"crm-{i}", customer_id(i))


def fact_row(update: FactUpdate) -> tuple[Any, ...]:
    fact = facts.apply(None, update)
    assert fact is not None
    return (
        uuid7(),
        TENANT,
        update.kind,
        update.ref_id,
        fact.customer_ref,
        fact.occurred_at,
        fact.state,
        json.dumps(stored(fact)),
        fact.last_event_at,
    )


def fact_rows(customers: int, now: datetime, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    """About two responses, a fifth of a case and one and a half tasks per customer."""
    for i in range(customers):
        ref = f"crm-{i}"
        for _ in range(rng.randint(0, 4)):
            at = now - YEAR * rng.random()
            yield fact_row(
                FactUpdate(
                    kind=facts.RESPONSE,
                    ref_id=str(uuid.uuid4()),
                    customer_ref=ref,
                    at=at,
                    state="enriched",
                    fields={
                        "survey_kind": "csat",
                        "score": rng.randint(1, 5),
                        "channel": "email",
                        "comment": "It took [DURATION] to hear back",
                        "sentiment": {"label": "negative", "score": -0.4, "confidence": 0.8},
                        "task_id": None,
                        "agent_id": None,
                    },
                    started_at=at,
                )
            )
        if rng.random() < 0.2:
            opened = now - timedelta(days=rng.random() * 10)
            feedback_at = opened - timedelta(hours=1)
            yield fact_row(
                FactUpdate(
                    kind=facts.CASE,
                    ref_id=str(uuid.uuid4()),
                    customer_ref=ref,
                    at=opened,
                    state=rng.choice(("open", "acknowledged", "closed")),
                    fields={
                        "team": "billing",
                        "owner": None,
                        "topic": "refund",
                        "round": 1,
                        "feedback_at": feedback_at.isoformat(),
                        "opened_at": opened.isoformat(),
                        "acknowledge_due_at": (feedback_at + timedelta(hours=24)).isoformat(),
                        "action_due_at": (feedback_at + timedelta(hours=72)).isoformat(),
                        "close_due_at": (feedback_at + timedelta(hours=120)).isoformat(),
                        "acknowledged_after_seconds": None,
                    },
                    started_at=opened,
                )
            )
        for _ in range(rng.choice((1, 1, 2))):
            created = now - YEAR * rng.random()
            done = rng.random() > 0.05
            yield fact_row(
                FactUpdate(
                    kind=facts.TASK,
                    ref_id=str(uuid.uuid4()),
                    customer_ref=ref,
                    at=created + timedelta(minutes=10) if done else created,
                    state="completed" if done else "assigned",
                    fields={
                        "queue": "care",
                        "channel": "chat",
                        "agent_id": str(uuid.uuid4()),
                        "team": "care",
                        "resolved": done,
                        "handle_seconds": 300.0,
                        "wait_seconds": 20.0,
                        "csat": None,
                    },
                    started_at=created,
                )
            )


def action_rows(customers: int, now: datetime, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    """Half as many actions as customers, each about a shipment of its own (a settled dedupe
    key is unique per customer)."""
    for shipment in range(customers // 2):
        i = rng.randrange(customers)
        yield (
            uuid7(),
            TENANT,
            customer_id(i),
            "shipment-delay",
            1,
            rng.choice(("taken", "taken", "capped", "held_out")),
            f"shipment-delay:shipment_id:S{shipment}",
            json.dumps([{"type": "notify"}]),
            None,
            now - timedelta(days=rng.random() * 90),
        )


COLUMNS = {
    "journey_interactions": (
        "id tenant external_id occurred_at received_at channel activity team stage identifiers "
        "attributes customer_id"
    ),
    "journey_customers": (
        "tenant id identifiers merges refusals interactions first_seen last_seen updated_at"
    ),
    "journey_customer_identifiers": "tenant type value customer_id",
    "journey_customer_facts": (
        "id tenant kind ref_id customer_ref occurred_at state payload last_event_at"
    ),
    "journey_proactive_actions": (
        "id tenant customer_id trigger_key trigger_version outcome dedupe_key actions "
        "interaction_id at"
    ),
}


async def seed(url: str, *, customers: int, interactions: int, seed_value: int) -> None:
    rng = random.Random(seed_value)
    now = datetime.now(UTC)
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:

        async def copy(table: str, rows: Iterator[tuple[Any, ...]]) -> None:
            started = time.perf_counter()
            batch: list[tuple[Any, ...]] = []
            count = 0
            for row in rows:
                batch.append(row)
                if len(batch) == 50_000:
                    await connection.copy_records_to_table(
                        table, records=batch, columns=COLUMNS[table].split()
                    )
                    count += len(batch)
                    batch = []
            if batch:
                await connection.copy_records_to_table(
                    table, records=batch, columns=COLUMNS[table].split()
                )
                count += len(batch)
            print(f"  {table:32} {count:>9,} rows in {time.perf_counter() - started:5.1f} s")

        owners = interaction_owners(customers, interactions, rng)
        rows = list(interaction_rows(owners, now, rng))
        seen: dict[int, tuple[datetime, datetime, int]] = {}
        for row, i in zip(rows, owners, strict=True):
            first, last, count = seen.get(i, (row[3], row[3], 0))
            seen[i] = (min(first, row[3]), max(last, row[3]), count + 1)
        await copy("journey_interactions", iter(rows))
        del rows
        await copy("journey_customers", customer_rows(customers, seen, now))
        await copy("journey_customer_identifiers", identifier_rows(customers))
        await copy("journey_customer_facts", fact_rows(customers, now, rng))
        await copy("journey_proactive_actions", action_rows(customers, now, rng))
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


# --------------------------------------------------------------------------- 2. measuring


async def timed_get(session: aiohttp.ClientSession, url: str, expect: int) -> float:
    started = time.perf_counter()
    async with session.get(url) as response:
        await response.read()
        if response.status != expect:
            raise RuntimeError(f"GET {url}: {response.status}, expected {expect}")
    return time.perf_counter() - started


def context_url(base: str, customers: int, rng: random.Random) -> str:
    i = rng.randrange(customers)
    if rng.random() < 0.5:
        # As a desktop would send it: spaces in the number, normalised by the service.
        number = phone(i)
        spaced = f"{number[:3]} {number[3:6]} {number[6:9]} {number[9:]}"
        return f"{base}/v1/journey/customers/context?identifier=phone:{spaced.replace('+', '%2B')}"
    return f"{base}/v1/journey/customers/context?customer_id={customer_id(i)}"


async def measure(
    base: str,
    key: str,
    *,
    customers: int,
    samples: int,
    concurrency: int,
    rng: random.Random,
) -> dict[str, list[float]]:
    cases = {
        "gateway /healthz": (lambda: f"{base}/healthz", 200),
        "context, unknown customer (404)": (
            lambda: f"{base}/v1/journey/customers/context?customer_id=nobody-{rng.random()}",
            404,
        ),
        "context": (lambda: context_url(base, customers, rng), 200),
    }
    results: dict[str, list[float]] = {}
    headers = {"Authorization": f"Bearer {key}"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
        for name, (url, expect) in cases.items():
            for _ in range(50):  # warm the path and the connection
                await timed_get(session, url(), expect)
            results[name] = [await timed_get(session, url(), expect) for _ in range(samples)]

        async def caller(count: int) -> list[float]:
            return [
                await timed_get(session, context_url(base, customers, rng), 200)
                for _ in range(count)
            ]

        started = time.perf_counter()
        per_caller = await asyncio.gather(
            *(caller(samples // concurrency) for _ in range(concurrency))
        )
        elapsed = time.perf_counter() - started
        concurrent = [value for values in per_caller for value in values]
        results[f"context, {concurrency} callers at once"] = concurrent
        print(f"  {concurrency} callers: {len(concurrent) / elapsed:,.0f} context calls/s")
    return results


def report(results: dict[str, list[float]]) -> None:
    baseline = percentile(results["gateway /healthz"], 0.95)
    lookup = percentile(results["context, unknown customer (404)"], 0.95)
    for name, values in results.items():
        p95 = percentile(values, 0.95)
        print(
            f"{name:34}: p50 {percentile(values, 0.5) * 1000:6.1f} ms   "
            f"p95 {p95 * 1000:6.1f} ms   p99 {percentile(values, 0.99) * 1000:6.1f} ms   "
            f"(n={len(values)})   p95 x{p95 / baseline:4.1f} /healthz, x{p95 / lookup:4.1f} 404"
        )
    print("goal: context p95 <= 50 ms through the gateway")


# ------------------------------------------------------------------------------- the run


@contextlib.asynccontextmanager
async def database(url: str | None) -> AsyncIterator[str]:
    """``url``, or a new database on a throwaway PostgreSQL server (stopped and deleted after)."""
    if url is not None:
        yield url
        return
    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))
    from tests.support.postgres import PostgresServer

    base = Path(tempfile.mkdtemp(prefix="cxops-bench-pg-"))
    server = PostgresServer(base)
    try:
        await asyncio.to_thread(server.start)
        yield await asyncio.to_thread(server.create_database, "bench")
    finally:
        await asyncio.to_thread(server.stop)
        shutil.rmtree(base, ignore_errors=True)


async def run(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    async with database(args.database_url) as url:
        if not args.seeded:
            await upgrade(url, SPEC.migrations)
            print(f"seeding {args.customers:,} customers and {args.interactions:,} interactions")
            started = time.perf_counter()
            await seed(
                url, customers=args.customers, interactions=args.interactions, seed_value=args.seed
            )
            print(f"  seeded in {time.perf_counter() - started:.1f} s", flush=True)
        suite = await asyncio.to_thread(start_suite, None, {"journey": url})
        try:
            key = await asyncio.to_thread(
                suite.create_api_key, tenant=TENANT, role="integration", name="bench"
            )
            results = await measure(
                suite.gateway_url,
                key,
                customers=args.customers,
                samples=args.samples,
                concurrency=args.concurrency,
                rng=rng,
            )
        finally:
            await asyncio.to_thread(suite.stop)
    report(results)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--seeded", action="store_true", help="--database-url is seeded already: measure only"
    )
    args = parser.parse_args()
    if args.seeded and args.database_url is None:
        parser.error("--seeded needs --database-url")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
