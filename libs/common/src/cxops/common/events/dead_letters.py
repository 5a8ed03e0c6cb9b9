"""Reading the dead-letter stream, so operators see what could not be handled and why."""

from __future__ import annotations

import contextlib
from typing import Any

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from cxops.common.events.broker import DEAD_LETTER_PREFIX, DEAD_LETTER_STREAM, Broker


async def list_dead_letters(
    broker: Broker, *, service: str, tenant: str | None, limit: int = 100
) -> list[dict[str, Any]]:
    """The newest ``limit`` dead letters of ``service``, only ``tenant``'s when one is given."""
    js = broker.js
    subject = f"{DEAD_LETTER_PREFIX}.{service}.>"
    sub = await js.pull_subscribe(
        subject,
        stream=DEAD_LETTER_STREAM,
        config=ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=30.0,
        ),
    )
    found: list[dict[str, Any]] = []
    try:
        while True:
            try:
                batch = await sub.fetch(256, timeout=0.5)
            except (NatsTimeoutError, TimeoutError):
                break
            for msg in batch:
                headers = dict(msg.headers or {})
                if tenant is not None and headers.get("ce-tenant") != tenant:
                    continue
                found.append(
                    {
                        "sequence": msg.metadata.sequence.stream if msg.metadata else None,
                        "event_id": headers.get("ce-id"),
                        "type": headers.get("ce-type"),
                        "tenant": headers.get("ce-tenant"),
                        "consumer": headers.get("cx-dlq-consumer"),
                        "original_subject": headers.get("cx-dlq-original-subject"),
                        "reason": headers.get("cx-dlq-reason"),
                        "deliveries": int(headers.get("cx-dlq-deliveries", "0")),
                        "dead_lettered_at": headers.get("cx-dlq-time"),
                        "body": msg.data.decode("utf-8", "replace"),
                    }
                )
            if len(batch) < 256:
                break
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
    return found[-limit:]
