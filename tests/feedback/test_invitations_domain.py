"""The pure rules of survey invitations: conditions on exit events, deterministic sampling at the
stated rate, the recontact window and the quota, and the order of the refusals."""

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cxops.feedback.domain.invitations import (
    EXIT_EVENT_FIELDS,
    INTERACTION_RECORDED,
    TASK_COMPLETED,
    Condition,
    ExitPoint,
    InvalidCondition,
    Op,
    Status,
    admit,
    check_condition,
    precheck,
    quota_day,
    sample_bucket,
    sampled_in,
    triggered,
)
from cxops.feedback.events import CONSUMED

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
TASK = {"channel": "chat", "queue": "billing", "resolved": True, "handle_seconds": 300.0}


def test_the_fields_conditions_may_name_are_those_feedback_reads() -> None:
    assert EXIT_EVENT_FIELDS[TASK_COMPLETED] == set(CONSUMED[TASK_COMPLETED].model_fields)
    interaction = set(CONSUMED[INTERACTION_RECORDED].model_fields) - {"identifiers", "attributes"}
    assert EXIT_EVENT_FIELDS[INTERACTION_RECORDED] == interaction


@pytest.mark.parametrize(
    ("condition", "holds"),
    [
        (Condition("channel", Op.EQ, "chat"), True),
        (Condition("channel", Op.EQ, "voice"), False),
        (Condition("channel", Op.NE, "voice"), True),
        (Condition("channel", Op.IN, ["voice", "chat"]), True),
        (Condition("channel", Op.IN, ["voice"]), False),
        (Condition("handle_seconds", Op.GTE, 300), True),
        (Condition("handle_seconds", Op.LTE, 299.5), False),
        (Condition("resolved", Op.EQ, True), True),
        (Condition("resolved", Op.EQ, 1), False),  # a boolean equals only a boolean
        (Condition("channel", Op.GTE, 1), False),  # not a number: never in range
        (Condition("team", Op.EQ, "billing"), False),  # absent
        (Condition("team", Op.NE, "billing"), True),
        (Condition("team", Op.EQ, None), True),
    ],
)
def test_a_condition_on_a_payload(condition: Condition, holds: bool) -> None:
    assert condition.holds(TASK) is holds


def test_an_exit_point_needs_its_event_its_activity_and_every_condition() -> None:
    delivered = ExitPoint(
        INTERACTION_RECORDED,
        activity="order_delivered",
        conditions=(Condition("attributes.order_value", Op.GTE, 50),),
    )
    payload = {"activity": "order_delivered", "attributes": {"order_value": 80}}
    assert delivered.matches(INTERACTION_RECORDED, payload)
    assert not delivered.matches(TASK_COMPLETED, payload)
    assert not delivered.matches(INTERACTION_RECORDED, {**payload, "activity": "case_opened"})
    assert not delivered.matches(
        INTERACTION_RECORDED, {**payload, "attributes": {"order_value": 20}}
    )
    assert triggered([ExitPoint(TASK_COMPLETED), delivered], TASK_COMPLETED, TASK)
    assert not triggered([], TASK_COMPLETED, TASK)


@pytest.mark.parametrize(
    ("event", "condition", "reason"),
    [
        (TASK_COMPLETED, Condition("colour", Op.EQ, "red"), "not a field"),
        (TASK_COMPLETED, Condition("attributes.x", Op.EQ, 1), "not a field"),
        (INTERACTION_RECORDED, Condition("attributes.a.b", Op.EQ, 1), "not a field"),
        (TASK_COMPLETED, Condition("channel", Op.IN, "chat"), "non-empty list"),
        (TASK_COMPLETED, Condition("channel", Op.IN, []), "non-empty list"),
        (TASK_COMPLETED, Condition("channel", Op.IN, [["chat"]]), "plain values"),
        (TASK_COMPLETED, Condition("handle_seconds", Op.GTE, "300"), "takes a number"),
        (TASK_COMPLETED, Condition("handle_seconds", Op.GTE, True), "takes a number"),
        (TASK_COMPLETED, Condition("channel", Op.EQ, ["chat"]), "one plain value"),
    ],
)
def test_conditions_that_could_never_be_evaluated_are_refused(
    event: str, condition: Condition, reason: str
) -> None:
    with pytest.raises(InvalidCondition, match=reason):
        check_condition(event, condition)
    check_condition(INTERACTION_RECORDED, Condition("attributes.order_value", Op.LTE, 10))


def test_sampling_is_a_stable_hash_of_tenant_survey_and_source() -> None:
    bucket = sample_bucket("acme", "csat-after-chat", "evt-1")
    assert bucket == sample_bucket("acme", "csat-after-chat", "evt-1")
    assert 0 <= bucket < 10_000
    # Known value: SHA-256("acme\x1fcsat-after-chat\x1fevt-1"), first 8 bytes, mod 10,000.
    digest = hashlib.sha256(b"acme\x1fcsat-after-chat\x1fevt-1").digest()
    assert bucket == int.from_bytes(digest[:8], "big") % 10_000
    others = {sample_bucket(t, s, "evt-1") for t in ("acme", "globex") for s in ("a", "b")}
    assert len(others) == 4  # another tenant or survey draws another number


@pytest.mark.parametrize("percentage", [0, 5, 30, 62.5, 100])
def test_the_sampled_share_is_close_to_the_percentage(percentage: float) -> None:
    n = 20_000
    chosen = sum(
        sampled_in(sample_bucket("acme", "nps", str(uuid.UUID(int=i))), percentage)
        for i in range(n)
    )
    # Within 4 standard deviations of a binomial draw.
    p = percentage / 100
    assert abs(chosen - n * p) <= 4 * (n * p * (1 - p)) ** 0.5 + 1


@given(st.integers(0, 9_999), st.integers(0, 10_000))
def test_a_bucket_is_sampled_in_exactly_below_the_percentage(bucket: int, hundredths: int) -> None:
    assert sampled_in(bucket, hundredths / 100) is (bucket < hundredths)


def test_refusals_come_in_order_and_force_skips_sampling_only() -> None:
    out = sample_bucket("acme", "nps", "e")  # any bucket is out at 0%
    assert precheck(has_contact=False, bucket=out, percentage=0, forced=True) is (
        Status.NO_CONTACT_CHANNEL
    )
    assert precheck(has_contact=True, bucket=out, percentage=0, forced=False) is Status.SAMPLED_OUT
    assert precheck(has_contact=True, bucket=out, percentage=0, forced=True) is None
    recent = NOW - timedelta(days=6, hours=23)
    common = {"now": NOW, "recontact_days": 7}
    assert admit(last_invited_at=recent, used_today=5, quota_per_day=5, **common) is (
        Status.THROTTLED
    )
    assert admit(last_invited_at=None, used_today=5, quota_per_day=5, **common) is (
        Status.QUOTA_FULL
    )
    assert admit(
        last_invited_at=NOW - timedelta(days=7), used_today=4, quota_per_day=5, **common
    ) is (Status.SCHEDULED)
    assert admit(
        last_invited_at=NOW, used_today=0, quota_per_day=None, now=NOW, recontact_days=0
    ) is (Status.SCHEDULED)


def test_a_quota_counts_by_the_utc_day() -> None:
    late_in_utc = datetime(2026, 12, 7, 23, 30, tzinfo=UTC)
    assert quota_day(late_in_utc) == late_in_utc.date()
    just_after_midnight_in_madrid = datetime(2026, 12, 8, 0, 30, tzinfo=ZoneInfo("Europe/Madrid"))
    assert quota_day(just_after_midnight_in_madrid).isoformat() == "2026-12-07"
