"""The rules of survey invitations, as plain values: which exit points a survey listens to and
whether an event's payload meets their conditions, deterministic sampling, the recontact window,
the quota's day, and the order in which an invitation is refused.

An exit point names the event that may trigger a survey (routing's ``task.completed``, or a
journey interaction, optionally of one ``activity``) and conditions on that event's payload
fields, all of which must hold. The service applies :func:`precheck`, then (with the customer's
last invitation and the survey's count for the day locked) :func:`admit`, and stores what they
answer, invited or not, so that every exit point leaves a row saying what happened and why.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

TASK_COMPLETED = "cx.routing.task.completed.v1"
INTERACTION_RECORDED = "cx.journey.interaction.recorded.v1"

#: The payload fields a condition may name, per exit event: feedback's reading models of them
#: (``cxops.feedback.events``; a test holds the two equal). A journey interaction's
#: ``attributes`` are the platform's own, so ``attributes.<name>`` is any of them.
EXIT_EVENT_FIELDS: dict[str, frozenset[str]] = {
    TASK_COMPLETED: frozenset(
        {
            "task_id",
            "agent_id",
            "team",
            "queue",
            "channel",
            "tier",
            "customer_ref",
            "case_id",
            "wait_seconds",
            "handle_seconds",
            "resolved",
            "csat",
            "completed_at",
        }
    ),
    INTERACTION_RECORDED: frozenset(
        {"external_id", "occurred_at", "channel", "activity", "team", "stage"}
    ),
}
ATTRIBUTES = "attributes"

#: How long a customer is left alone after an invitation, across all surveys, unless a survey
#: says otherwise.
DEFAULT_RECONTACT_DAYS = 7

#: Sampling resolution: a survey's percentage has at most two decimals (0.01% steps).
SAMPLE_BUCKETS = 10_000


class Op(StrEnum):
    EQ = "eq"
    NE = "ne"
    IN = "in"
    GTE = "gte"
    LTE = "lte"


class Status(StrEnum):
    """An invitation's state. The first three are invitations; the last four are exit points
    that did not become one, kept with the reason."""

    SCHEDULED = "scheduled"
    SENT = "sent"
    RESPONDED = "responded"
    THROTTLED = "throttled"
    SAMPLED_OUT = "sampled_out"
    QUOTA_FULL = "quota_full"
    NO_CONTACT_CHANNEL = "no_contact_channel"


#: Statuses of a real invitation: ones that carry a token a response may quote.
INVITED = (Status.SCHEDULED, Status.SENT, Status.RESPONDED)


class InvalidCondition(ValueError):
    """A condition that could never be evaluated as written (unknown field, wrong value type)."""


Scalar = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Condition:
    """``payload[field] <op> value``. ``field`` is a payload field, or ``attributes.<name>`` on
    a journey interaction. ``eq``/``ne`` compare a scalar, ``in`` a list of scalars, ``gte`` and
    ``lte`` a number (or, for a time, an ISO 8601 string compared as text in UTC)."""

    field: str
    op: Op
    value: Any

    def holds(self, payload: Mapping[str, Any]) -> bool:
        """Whether the payload meets the condition; a field it lacks (or null) meets only
        ``ne`` of a non-null value."""
        found = field_value(payload, self.field)
        if self.op is Op.EQ:
            return bool(found == self.value and _same_kind(found, self.value))
        if self.op is Op.NE:
            return not (found == self.value and _same_kind(found, self.value))
        if self.op is Op.IN:
            return any(found == item and _same_kind(found, item) for item in self.value)
        if not _is_number(found):
            return False
        return bool(found >= self.value) if self.op is Op.GTE else bool(found <= self.value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same_kind(found: Any, wanted: Any) -> bool:
    """``True == 1`` in Python; in a condition, a boolean equals only a boolean."""
    return isinstance(found, bool) == isinstance(wanted, bool)


def field_value(payload: Mapping[str, Any], field: str) -> Any:
    """The value at a dotted path (``attributes.order_value``), or None."""
    value: Any = payload
    for part in field.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def check_condition(event: str, condition: Condition) -> None:
    """Raise :class:`InvalidCondition` unless ``condition`` can be evaluated on ``event``."""
    known = EXIT_EVENT_FIELDS[event]
    head, _, rest = condition.field.partition(".")
    if not (
        condition.field in known
        or (event == INTERACTION_RECORDED and head == ATTRIBUTES and rest and "." not in rest)
    ):
        extra = ", or attributes.<name>" if event == INTERACTION_RECORDED else ""
        raise InvalidCondition(
            f"{condition.field!r} is not a field of {event}; one of "
            f"{', '.join(sorted(known))}{extra}"
        )
    if condition.op is Op.IN:
        if not isinstance(condition.value, list) or not condition.value:
            raise InvalidCondition("'in' takes a non-empty list of values")
        if any(isinstance(item, dict | list) for item in condition.value):
            raise InvalidCondition("'in' takes a list of plain values")
    elif condition.op in (Op.GTE, Op.LTE):
        if not _is_number(condition.value) or not math.isfinite(condition.value):
            raise InvalidCondition(f"'{condition.op.value}' takes a number")
    elif isinstance(condition.value, dict | list):
        raise InvalidCondition(f"'{condition.op.value}' takes one plain value")


@dataclass(frozen=True, slots=True)
class ExitPoint:
    """An event that may trigger the survey: ``event`` (one of :data:`EXIT_EVENT_FIELDS`), for a
    journey interaction only those of ``activity`` when given, and only when every condition
    holds."""

    event: str
    activity: str | None = None
    conditions: tuple[Condition, ...] = ()

    def matches(self, event: str, payload: Mapping[str, Any]) -> bool:
        if event != self.event:
            return False
        if self.activity is not None and payload.get("activity") != self.activity:
            return False
        return all(condition.holds(payload) for condition in self.conditions)


def triggered(exit_points: Sequence[ExitPoint], event: str, payload: Mapping[str, Any]) -> bool:
    """Whether any of a survey's exit points is met by this event."""
    return any(point.matches(event, payload) for point in exit_points)


def sample_bucket(tenant: str, survey_key: str, source_id: str) -> int:
    """A stable number from 0 to 9,999 for one exit point of one survey: the first 8 bytes of
    SHA-256 over tenant, survey and the source event id (unit-separated), modulo 10,000.

    Stored with the invitation, so anyone can recompute why an exit point was sampled in or out;
    a redelivered event draws the same number.
    """
    digest = hashlib.sha256("\x1f".join((tenant, survey_key, source_id)).encode()).digest()
    return int.from_bytes(digest[:8], "big") % SAMPLE_BUCKETS


def sampled_in(bucket: int, percentage: float) -> bool:
    """Bucket below the percentage in hundredths: 100% takes every bucket, 0% none."""
    return bucket < round(percentage * SAMPLE_BUCKETS / 100)


def recontact_threshold(now: datetime, recontact_days: int) -> datetime:
    """A customer last invited at or before this moment may be invited again."""
    return now - timedelta(days=recontact_days)


def quota_day(now: datetime) -> date:
    """The day a quota counts in: the UTC calendar day of the decision."""
    return now.astimezone(UTC).date()


def precheck(*, has_contact: bool, bucket: int, percentage: float, forced: bool) -> Status | None:
    """The refusals that depend on the exit point alone, first no way to reach the customer,
    then sampling (skipped when ``forced``); None means go on to :func:`admit`."""
    if not has_contact:
        return Status.NO_CONTACT_CHANNEL
    if not forced and not sampled_in(bucket, percentage):
        return Status.SAMPLED_OUT
    return None


def admit(
    *,
    last_invited_at: datetime | None,
    recontact_days: int,
    now: datetime,
    used_today: int,
    quota_per_day: int | None,
) -> Status:
    """After :func:`precheck`: throttled when any survey invited the customer within
    ``recontact_days``, else quota full when ``quota_per_day`` invitations were already made
    today (UTC), else scheduled. Only a scheduled invitation counts against the quota and
    restarts the customer's recontact window."""
    if last_invited_at is not None and last_invited_at > recontact_threshold(now, recontact_days):
        return Status.THROTTLED
    if quota_per_day is not None and used_today >= quota_per_day:
        return Status.QUOTA_FULL
    return Status.SCHEDULED
