"""What the benchmarks share: the suite on free ports, a load generator, and percentiles."""

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from cxops.cli.supervisor import Ports, Suite, SuiteConfig
from cxops.common.embedded import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
#: Benchmarks must not be throttled by the gateway's per-key limit.
BENCH_ENV = {
    "CXOPS_GATEWAY_RATE_LIMIT_PER_SECOND": "1000000",
    "CXOPS_GATEWAY_RATE_LIMIT_BURST": "1000000",
}


def start_suite() -> Suite:
    var_dir = Path(tempfile.mkdtemp(prefix="cxops-bench-"))
    config = SuiteConfig(var_dir=var_dir, ports=Ports.free(), env=dict(BENCH_ENV))
    return Suite(config).start()


def start_echo() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "echo_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=Path(__file__).parent,
        env={**os.environ},
    )
    wait_for_port("127.0.0.1", port)
    return process, f"http://127.0.0.1:{port}"


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


async def post_load(
    url: str,
    *,
    body: Callable[[int], dict[str, object]],
    headers: dict[str, str],
    seconds: float,
    concurrency: int,
) -> LoadResult:
    """POST as fast as ``concurrency`` keep-alive connections allow for ``seconds``."""
    done = errors = 0
    counter = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal done, errors, counter
            while time.perf_counter() < deadline:
                counter += 1
                payload = json.dumps(body(counter)).encode()
                async with session.post(
                    url, data=payload, headers={**headers, "content-type": "application/json"}
                ) as response:
                    await response.read()
                    if response.status in (200, 201):
                        done += 1
                    else:
                        errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return LoadResult(done, errors, elapsed)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]
