"""A mining job on a 1M-event log end to end through the journey service, against the command
on the same file.

The log is bench/mining.py's (about 10 events per case, 15 activities, 6 teams, 4 channels,
rows in time order). The service runs as it does in production, one uvicorn process on SQLite
with a real nats-server (JetStream); the bench streams the CSV to ``POST
/v1/journey/event-logs``, asks for a mining job, polls it every 50 ms and reads the result.
The baseline, in the same run, is ``cxops journey mine LOG --json`` as a process of its own
(Python's start and the imports included). Both answers must be the same JSON.

    uv run python bench/mining_job.py                   # 1,000,000 events
    uv run python bench/mining_job.py --events 200000
"""

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from mining import generate, run_child

from cxops.cli.nats_server import NatsServer
from cxops.cli.processes import Process, ProcessSpec, free_port
from cxops.common.auth import INTERNAL_TOKEN_HEADER, CallerContext, Role, mint_internal_token
from cxops.common.migrations import upgrade
from cxops.journey.app import SPEC

SECRET = "bench-signing-secret-of-at-least-32-characters"
CHUNK = 1024 * 1024


async def chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as file:
        while block := file.read(CHUNK):
            yield block


async def through_the_service(
    url: str, path: Path, headers: dict[str, str]
) -> tuple[dict[str, float], str]:
    """Upload, job, result: the seconds of each step, and the result's text."""
    async with httpx.AsyncClient(base_url=url, timeout=600, trust_env=False) as client:
        started = time.perf_counter()
        uploaded = await client.post(
            "/v1/journey/event-logs",
            content=chunks(path),
            headers={**headers, "content-type": "text/csv"},
        )
        uploaded.raise_for_status()
        after_upload = time.perf_counter()
        created = await client.post(
            "/v1/journey/mining-jobs",
            json={"source": {"event_log": uploaded.json()["id"]}},
            headers=headers,
        )
        created.raise_for_status()
        location = created.headers["location"]
        while True:
            job = (await client.get(location, headers=headers)).json()
            if job["state"] in ("succeeded", "failed", "canceled"):
                break
            await asyncio.sleep(0.05)
        finished = time.perf_counter()
        if job["state"] != "succeeded":
            raise SystemExit(f"the job ended {job['state']}: {job['error']}")
        result = await client.get(f"{location}/result", headers=headers)
        result.raise_for_status()
        done = time.perf_counter()
    seconds = {
        "upload": after_upload - started,
        "job": finished - after_upload,
        "result": done - finished,
        "total": done - started,
    }
    return seconds, result.text


def start_journey(workdir: Path, env: dict[str, str]) -> tuple[Process, str]:
    """The journey service as one uvicorn process on a free port."""
    port = free_port()
    process = Process(
        ProcessSpec(
            name="journey",
            command=[
                *(sys.executable, "-m", "uvicorn", "cxops.journey.app:create_app", "--factory"),
                *("--host", "127.0.0.1", "--port", str(port), "--no-access-log"),
            ],
            log_file=workdir / "journey.log",
            env={**os.environ, **env},
            port=port,
        )
    )
    process.start().wait_ready(120)
    return process, f"http://127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="cxops-mining-job-"))
    path = workdir / "log.csv"
    frame = generate(args.events)
    frame.write_csv(path)
    print(
        f"log: {frame.height:,} events, {frame['case_id'].n_unique():,} cases; "
        f"CSV {path.stat().st_size / 1e6:.0f} MB"
    )
    del frame

    nats = NatsServer(workdir / "nats").start()
    database_url = f"sqlite+aiosqlite:///{workdir / 'journey.db'}"
    asyncio.run(upgrade(database_url, SPEC.migrations))
    service, url = start_journey(
        workdir,
        {
            "CXOPS_JOURNEY_ENVIRONMENT": "test",
            "CXOPS_JOURNEY_DATABASE_URL": database_url,
            "CXOPS_JOURNEY_NATS_URL": nats.url,
            "CXOPS_JOURNEY_SIGNING_SECRET": SECRET,
            "CXOPS_JOURNEY_DATA_DIR": str(workdir / "data"),
            "CXOPS_JOURNEY_JOB_HEARTBEAT_SECONDS": "1",
            "CXOPS_JOURNEY_LOG_LEVEL": "WARNING",
        },
    )
    token = mint_internal_token(
        CallerContext(tenant="bench", role=Role.OPS_LEAD, subject="bench"),
        secret=SECRET,
        ttl_seconds=3600,
    )
    try:
        # The first job also starts the fork server jobs run from: run one on a tiny log
        # first, as a service that has been up for a while would have.
        warm = workdir / "warm.csv"
        warm.write_text("case_id,activity,timestamp\nc1,a,2026-01-01T00:00:00Z\n")
        headers = {INTERNAL_TOKEN_HEADER: token}
        asyncio.run(through_the_service(url, warm, headers))
        service_run, text = asyncio.run(through_the_service(url, path, headers))
    finally:
        service.stop()
        nats.stop()
    command = [sys.executable, "-m", "cxops.cli", "journey", "mine", str(path), "--json"]
    output, command_seconds, command_peak = run_child(command)

    if json.loads(output) != json.loads(text):
        raise SystemExit("the job's result differs from the command's output")
    print("through the service (one uvicorn process, SQLite, nats-server):")
    print(f"  {'upload (streamed)':<22}{service_run['upload']:7.2f} s")
    print(f"  {'job, queued to done':<22}{service_run['job']:7.2f} s")
    print(f"  {'read the result':<22}{service_run['result']:7.2f} s")
    print(f"  {'total':<22}{service_run['total']:7.2f} s")
    print(
        f"`cxops journey mine LOG --json`: {command_seconds:.2f} s, peak memory "
        f"{command_peak / 1e6:,.0f} MB (Python's start and the imports included)"
    )
    print(
        f"ratio service / command: {service_run['total'] / command_seconds:.2f}x "
        f"(the job alone: {service_run['job'] / command_seconds:.2f}x); the answers are equal"
    )
    for leftover in workdir.rglob("*"):
        if leftover.is_file():
            leftover.unlink()


if __name__ == "__main__":
    main()
