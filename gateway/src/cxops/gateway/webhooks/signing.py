"""Standard Webhooks 1.0: secrets, the body, and the three headers that sign it.

``webhook-id`` is the event's id, the same on every retry, so a receiver can drop a duplicate;
``webhook-timestamp`` is the time of this attempt in Unix seconds, so a receiver can refuse a
replay; ``webhook-signature`` is ``v1,`` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")),
where the key is the base64 part of the ``whsec_`` secret, decoded. During a secret rotation the
header carries one signature per valid secret, separated by spaces: a receiver holding either one
verifies the message.

Pure apart from drawing random secrets.
"""

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key a ``whsec_`` secret stands for."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)


def payload(*, event_type: str, occurred_at: datetime, data: Mapping[str, Any]) -> str:
    """The body every attempt sends: ``{"type", "timestamp", "data"}``; the tenant is not in it
    (the endpoint belongs to one tenant)."""
    timestamp = occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return json.dumps(
        {"type": event_type, "timestamp": timestamp, "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )


def signature(*, secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def headers(
    *, secrets: Sequence[str], message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The Standard Webhooks headers for one attempt, signed with every secret given."""
    if not secrets:
        raise ValueError("at least one secret signs a webhook")
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(secret=secret, message_id=message_id, timestamp=timestamp, body=body)
            for secret in secrets
        ),
        "content-type": "application/json",
    }
