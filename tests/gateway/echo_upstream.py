"""A tiny upstream for the gateway tests, run by uvicorn as a real HTTP server.

It answers under any ``/v1/<service>/`` prefix:

- ``.../echo``: what it received (method, raw path, query, headers, body length and SHA-256),
  with hop-by-hop headers in its own response, which the gateway must strip;
- ``.../upload?token=T``: reads the body chunk by chunk, ``.../progress?token=T`` tells how much
  arrived so far (to prove the gateway streams requests instead of buffering them);
- ``.../stream?size=N&token=T``: sends a first chunk, waits for ``.../release?token=T``, then the
  rest (to prove the gateway streams responses);
- ``.../slow?seconds=S``: answers late;
- ``/openapi.json``: a small document with one path per service and a shared component name.
"""

import asyncio
import hashlib
import json
from typing import Any
from urllib.parse import parse_qs

from starlette.types import Receive, Scope, Send

CHUNK = 64 * 1024
_progress: dict[str, int] = {}
_releases: dict[str, asyncio.Event] = {}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "echo", "version": "1"},
    "paths": {
        f"/v1/{service}/echo": {
            "get": {
                "tags": ["echo"],
                "operationId": "echo",
                "responses": {
                    "200": {
                        "description": "what arrived",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Echo"}}
                        },
                    }
                },
            }
        }
        for service in ("feedback", "journey")
    }
    | {"/internal/only": {"get": {"responses": {"200": {"description": "not for the suite"}}}}},
    "components": {
        "schemas": {"Echo": {"type": "object", "properties": {"method": {"type": "string"}}}}
    },
    "tags": [{"name": "echo", "description": "Echoes"}],
}


async def _json(
    send: Send, body: Any, *, status: int = 200, extra: list[Any] | None = None
) -> None:
    payload = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _read_body(receive: Receive, token: str | None = None) -> bytes:
    digest = hashlib.sha256()
    total = 0
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("client went away")
        body = message.get("body", b"")
        total += len(body)
        digest.update(body)
        chunks.append(body)
        if token:
            _progress[token] = total
        if not message.get("more_body", False):
            return b"".join(chunks)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    path: str = scope["path"]
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    action = path.rsplit("/", 1)[-1]

    if path == "/openapi.json":
        await _json(send, OPENAPI)
    elif action == "echo":
        body = await _read_body(receive)
        await _json(
            send,
            {
                "method": scope["method"],
                "path": path,
                "raw_path": scope["raw_path"].decode("latin-1"),
                "query": scope["query_string"].decode("latin-1"),
                "headers": [
                    [k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]
                ],
                "body_length": len(body),
                "body_sha256": hashlib.sha256(body).hexdigest(),
            },
            status=int(query.get("status", "200")),
            extra=[
                (b"connection", b"x-upstream-hop"),
                (b"x-upstream-hop", b"1"),
                (b"keep-alive", b"timeout=5"),
                (b"proxy-authenticate", b"Basic"),
                (b"upgrade", b"foo/1"),
                (b"trailer", b"x-checksum"),
                (b"x-upstream-kept", b"1"),
            ],
        )
    elif action in ("upload", "import", "event-logs"):
        body = await _read_body(receive, query.get("token"))
        await asyncio.sleep(float(query.get("seconds", "0")))
        await _json(
            send, {"body_length": len(body), "body_sha256": hashlib.sha256(body).hexdigest()}
        )
    elif action == "progress":
        await _json(send, {"received": _progress.get(query["token"], 0)})
    elif action == "release":
        _releases.setdefault(query["token"], asyncio.Event()).set()
        await _json(send, {"released": True})
    elif action == "stream":
        size = int(query["size"])
        token = query.get("token")
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/octet-stream")],
            }
        )
        sent = min(CHUNK, size)
        await send({"type": "http.response.body", "body": b"a" * sent, "more_body": True})
        if token:
            await asyncio.wait_for(_releases.setdefault(token, asyncio.Event()).wait(), 15)
        while sent < size:
            n = min(CHUNK, size - sent)
            await send({"type": "http.response.body", "body": b"b" * n, "more_body": True})
            sent += n
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    elif action == "slow":
        await asyncio.sleep(float(query.get("seconds", "1")))
        await _json(send, {"slow": True})
    else:
        await _json(send, {"detail": "not here"}, status=404)
