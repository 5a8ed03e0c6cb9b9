"""A Server-Sent Events client for the tests, on httpx's streaming responses: events (id,
event, data as JSON) and comment lines (heartbeats), read with a deadline."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class SseEvent:
    id: str
    event: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Comment:
    text: str


class SseStream:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def _next_item(self) -> SseEvent | Comment | None:
        fields: dict[str, str] = {}
        async for line in self._lines:
            if line.startswith(":"):
                return Comment(line[1:].strip())
            if line == "":
                if fields:
                    return SseEvent(
                        id=fields.get("id", ""),
                        event=fields.get("event", "message"),
                        data=json.loads(fields.get("data", "null")),
                    )
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        return None

    async def item(self, *, within: float = 15.0) -> SseEvent | Comment | None:
        """The next event or comment; None once the server ended the stream."""
        async with asyncio.timeout(within):
            return await self._next_item()

    async def events(self, count: int, *, within: float = 15.0) -> list[SseEvent]:
        """The next ``count`` events, comments skipped."""
        found: list[SseEvent] = []
        async with asyncio.timeout(within):
            while len(found) < count:
                item = await self._next_item()
                assert item is not None, f"the stream ended after {len(found)} of {count} events"
                if isinstance(item, SseEvent):
                    found.append(item)
        return found


@asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    *,
    types: str | None = None,
    last_event_id: str | None = None,
    path: str = "/v1/events/stream",
) -> AsyncIterator[SseStream]:
    """An open stream (the gateway's ``GET /v1/events/stream`` unless ``path`` says another),
    asserted 200."""
    params = {"types": types} if types is not None else {}
    if last_event_id is not None:
        headers = {**headers, "Last-Event-ID": last_event_id}
    async with client.stream("GET", path, headers=headers, params=params, timeout=30) as response:
        if response.status_code != 200:
            await response.aread()
            raise AssertionError(f"stream refused: {response.status_code} {response.text}")
        assert response.headers["content-type"].startswith("text/event-stream")
        yield SseStream(response)
