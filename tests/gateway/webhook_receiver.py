"""A webhook receiver for the tests: a real HTTP server (uvicorn, in the test's event loop) that
records every request and answers what the test scripted.

Each request gets the next scripted answer (status and headers), then ``default`` once the script
is used up. ``hold()`` makes requests wait, unanswered, until ``release()``, to catch deliveries
in flight.
"""

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from starlette.types import Receive, Scope, Send

from tests.gateway.conftest import serving


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Receiver:
    url: str = ""
    received: list[Received] = field(default_factory=list)
    script: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)
    default: tuple[int, dict[str, str]] = (204, {})
    _open: asyncio.Event = field(default_factory=asyncio.Event)
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def __post_init__(self) -> None:
        self._open.set()

    def answer(self, status: int, headers: dict[str, str] | None = None, *, times: int = 1) -> None:
        self.script.extend([(status, headers or {})] * times)

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def ids(self) -> set[str]:
        return {request.webhook_id for request in self.received}

    async def wait_for(self, count: int, *, within: float = 15.0) -> list[Received]:
        """Once ``count`` requests have arrived (answered or held)."""
        async with asyncio.timeout(within), self._arrived:
            await self._arrived.wait_for(lambda: len(self.received) >= count)
        return list(self.received)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                kind = (await receive())["type"].removeprefix("lifespan.")
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        async with self._arrived:
            self.received.append(Received(path=scope["path"], headers=headers, body=body))
            self._arrived.notify_all()
        await self._open.wait()
        status, extra = self.script.popleft() if self.script else self.default
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in extra.items()],
            }
        )
        await send({"type": "http.response.body", "body": b""})


@asynccontextmanager
async def receiving(path: str = "/hooks") -> AsyncIterator[Receiver]:
    """A receiver on 127.0.0.1; its ``url`` ends with ``path``."""
    receiver = Receiver()
    async with serving(receiver) as base:
        receiver.url = base + path
        yield receiver
