"""What an attempt's outcome means for a delivery: done, failed for good, or tried again when.

The schedule is Standard Webhooks': after the first attempt, retries 5 s, 5 min, 30 min, 2 h,
5 h, 10 h, 14 h, 20 h and 24 h later, then the delivery has failed. Only a 2xx is a success. A
``Retry-After`` on the answer is honoured: the next attempt is no sooner than it says (capped at
a day, the schedule's longest step, so a receiver cannot park a delivery forever). ``410 Gone``
means the receiver is gone for good: the delivery fails and the endpoint is disabled.

Pure: the caller supplies the time.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum

MAX_RETRY_AFTER = timedelta(hours=24)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """How one attempt ended: the answer's status (None: no answer at all), its Retry-After in
    seconds, and for a failure what went wrong, in words for the endpoint's owner."""

    status_code: int | None
    retry_after: float | None = None
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True, slots=True)
class Decision:
    status: DeliveryStatus
    next_attempt_at: datetime | None
    disable_endpoint: bool = False


def decide(
    *, attempts: int, result: AttemptResult, now: datetime, schedule: tuple[float, ...]
) -> Decision:
    """After the ``attempts``-th attempt ended with ``result`` at ``now``."""
    if result.succeeded:
        return Decision(DeliveryStatus.SUCCEEDED, None)
    if result.status_code == 410:
        return Decision(DeliveryStatus.FAILED, None, disable_endpoint=True)
    if attempts > len(schedule):
        return Decision(DeliveryStatus.FAILED, None)
    delay = timedelta(seconds=schedule[attempts - 1])
    if result.retry_after is not None:
        delay = max(delay, min(timedelta(seconds=result.retry_after), MAX_RETRY_AFTER))
    return Decision(DeliveryStatus.PENDING, now + delay)


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds from ``now``: ``Retry-After`` is delay-seconds or an HTTP date (RFC 9110
    §10.2.3); anything else is ignored."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max((when - now).total_seconds(), 0.0)
