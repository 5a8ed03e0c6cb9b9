"""What the benchmarks share: the suite on free ports, a load generator, and percentiles."""

import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from cxops.cli.processes import Process, ProcessSpec, free_port
from cxops.cli.supervisor import Ports, Suite, SuiteConfig

ROOT = Path(__file__).resolve().parent.parent
#: Benchmarks must not be throttled by the gateway's per-key limit.
BENCH_ENV = {
    "CXOPS_GATEWAY_RATE_LIMIT_PER_SECOND": "1000000",
    "CXOPS_GATEWAY_RATE_LIMIT_BURST": "1000000",
}


def start_suite(
    env: dict[str, str] | None = None, database_urls: dict[str, str] | None = None
) -> Suite:
    """The embedded suite on free ports with :data:`BENCH_ENV`, and ``env`` over it (a bench's
    own settings, e.g. a larger upstream pool); ``database_urls`` as in :class:`SuiteConfig`."""
    var_dir = Path(tempfile.mkdtemp(prefix="cxops-bench-"))
    config = SuiteConfig(
        var_dir=var_dir,
        ports=Ports.free(),
        env={**BENCH_ENV, **(env or {})},
        database_urls=database_urls or {},
    )
    return Suite(config).start()


def start_app(name: str, app: str, *, env: dict[str, str] | None = None) -> tuple[Process, str]:
    """A uvicorn app of ``bench/`` (``module:attribute``) on a free port, one process, as a
    baseline; ``stop()`` it after. ``env`` is added to this process's environment."""
    port = free_port()
    process = Process(
        ProcessSpec(
            name=name,
            command=[
                sys.executable,
                "-m",
                "uvicorn",
                app,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            log_file=Path(tempfile.mkdtemp(prefix=f"cxops-bench-{name}-")) / f"{name}.log",
            env={**os.environ, **(env or {})},
            port=port,
            cwd=Path(__file__).parent,
        )
    )
    process.start().wait_ready(30)
    return process, f"http://127.0.0.1:{port}"


def start_echo() -> tuple[Process, str]:
    """The bare uvicorn echo app: what uvicorn and the load generator alone cost."""
    return start_app("echo", "echo_app:app")


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
