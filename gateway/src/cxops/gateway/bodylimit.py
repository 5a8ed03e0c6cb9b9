"""The request body limit, as pure ASGI middleware.

A declared ``Content-Length`` over the limit is answered with 413 before a byte of the body is
read, with ``Connection: close`` so that the server does not read a body it already refused
(clients that send ``Expect: 100-continue``, as curl does for large bodies, never send it).

A body without a length (chunked) is counted as it streams through ``receive``; the moment it
passes the limit, reading fails with :class:`BodyTooLarge`, the upstream call (if one had
started) is aborted mid-body, and the caller gets 413 as well. That connection is kept open:
the server discards the rest of the body as it arrives, so the client, still sending, reads the
413 instead of a connection reset. Nothing is ever buffered here, so the limit also bounds the
memory one request can make the gateway hold.
"""

from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cxops.common.errors import problem_response


class BodyTooLarge(HTTPException):
    """An ``HTTPException`` so that FastAPI's body parsing re-raises it untouched and the
    problem handlers render it as problem+json."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, detail=f"The request body is larger than the limit of {limit} bytes.")


class BodyLimitMiddleware:
    """``max_body_bytes`` for every path but those of ``larger_limits`` (exact paths: a bulk
    import, say), which have their own."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        larger_limits: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.limit = max_body_bytes
        self.larger_limits = dict(larger_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger_limits.get(scope["path"], self.limit)
        declared = _content_length(scope)
        if declared == -1 or (declared is not None and declared > limit):
            await self._refuse(
                scope, receive, send, invalid=declared == -1, close=True, limit=limit
            )
            return

        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except Exception:
            # The app let the overflow escape (or failed because of it): answer 413 if we still can.
            if not exceeded or started:
                raise
            await self._refuse(scope, receive, send, invalid=False, close=False, limit=limit)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, *, invalid: bool, close: bool, limit: int
    ) -> None:
        headers = {"Connection": "close"} if close else None
        if invalid:
            response = problem_response(
                400,
                "The Content-Length header is not a valid length.",
                instance=scope["path"],
                headers=headers,
            )
        else:
            detail = BodyTooLarge(limit).detail
            response = problem_response(413, detail, instance=scope["path"], headers=headers)
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    """The declared length, None when absent, -1 when it is not a number."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return -1
            return length if length >= 0 else -1
    return None
