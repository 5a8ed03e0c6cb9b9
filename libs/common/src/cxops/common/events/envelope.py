"""CloudEvents 1.0 in binary mode over NATS: attributes as ``ce-*`` headers, the JSON payload as
the body, ``Nats-Msg-Id`` equal to ``ce-id`` so JetStream drops a re-published duplicate."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from uuid6 import uuid7

from cxops.common.telemetry import outgoing_trace_headers

SPEC_VERSION = "1.0"
MSG_ID_HEADER = "Nats-Msg-Id"
REQUIRED_HEADERS = ("ce-id", "ce-source", "ce-type", "ce-specversion", "ce-time", "ce-tenant")
TRACE_HEADERS = ("traceparent", "tracestate")


class MalformedEvent(ValueError):
    """A message that is not a cxops CloudEvent; it can never be handled, so it is dead-lettered."""


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    type: str
    source: str
    subject: str
    tenant: str
    time: datetime
    data: dict[str, Any]
    trace: dict[str, str] = field(default_factory=dict)

    @classmethod
    def new(
        cls,
        *,
        subject: str,
        source: str,
        tenant: str,
        data: Mapping[str, Any],
        trace: Mapping[str, str] | None = None,
    ) -> Event:
        """A new event for ``subject`` (``cx.<service>.<entity>.<event>.v1``, also its type),
        carrying ``trace`` (the headers of :func:`outgoing_trace_headers`), by default the
        current trace context: work done away from the request (a worker process) passes the
        request's."""
        trace = dict(trace) if trace is not None else outgoing_trace_headers()
        return cls(
            id=str(uuid7()),
            type=subject,
            source=source,
            subject=subject,
            tenant=tenant,
            time=datetime.now(UTC),
            data=dict(data),
            trace=trace,
        )

    def headers(self) -> dict[str, str]:
        headers = {
            "ce-id": self.id,
            "ce-source": self.source,
            "ce-type": self.type,
            "ce-specversion": SPEC_VERSION,
            "ce-time": self.time.isoformat(),
            "ce-tenant": self.tenant,
            "content-type": "application/json",
            MSG_ID_HEADER: self.id,
        }
        headers.update({k: v for k, v in self.trace.items() if k in TRACE_HEADERS})
        return headers

    def body(self) -> bytes:
        return json.dumps(self.data, separators=(",", ":"), default=str).encode()

    @classmethod
    def from_message(cls, subject: str, headers: Mapping[str, str] | None, body: bytes) -> Event:
        headers = headers or {}
        missing = [h for h in REQUIRED_HEADERS if not headers.get(h)]
        if missing:
            raise MalformedEvent(f"missing CloudEvents headers: {', '.join(missing)}")
        if headers["ce-specversion"] != SPEC_VERSION:
            raise MalformedEvent(f"unsupported specversion {headers['ce-specversion']}")
        try:
            data = json.loads(body) if body else {}
            time = datetime.fromisoformat(headers["ce-time"])
        except ValueError as exc:
            raise MalformedEvent(f"unreadable event: {exc}") from exc
        if not isinstance(data, dict):
            raise MalformedEvent("the event body must be a JSON object")
        if time.tzinfo is None:
            time = time.replace(tzinfo=UTC)
        return cls(
            id=headers["ce-id"],
            type=headers["ce-type"],
            source=headers["ce-source"],
            subject=subject,
            tenant=headers["ce-tenant"],
            time=time,
            data=data,
            trace={k: headers[k] for k in TRACE_HEADERS if headers.get(k)},
        )
