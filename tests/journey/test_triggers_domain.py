"""The pure decision core of proactive triggers: conditions, de-duplication, caps, quiet hours,
the holdout hash, gesture budgets and the effect figures, against hand-worked numbers."""

import math
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from statistics import NormalDist
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from cxops.journey.domain.triggers import (
    Budget,
    ContactPolicy,
    Fact,
    Followed,
    InteractionCondition,
    LoggedAction,
    NegativeFeedbackWhileCaseOpen,
    Operator,
    Outcome,
    QuietHours,
    RepeatContacts,
    Trigger,
    customer_zone,
    decide,
    dedupe_key,
    effect,
    in_holdout,
    is_quiet,
    shifted,
)

NOON = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")
POLICY = ContactPolicy(
    max_contacts=2, per_days=7, quiet_hours=QuietHours(time(21), time(8)), timezone="UTC"
)
DELAYED = InteractionCondition("shipment_delayed", (("delay_hours", Operator.GE, 24),))
NOTIFY = Trigger(key="late", version=1, when=DELAYED, actions=({"type": "notify"},))


def test_an_interaction_condition_compares_attributes() -> None:
    assert DELAYED.matches("shipment_delayed", {"delay_hours": 24})
    assert DELAYED.matches("shipment_delayed", {"delay_hours": 30.5})
    assert not DELAYED.matches("shipment_delayed", {"delay_hours": 23})
    assert not DELAYED.matches("shipment_delayed", {})  # missing is no match
    assert not DELAYED.matches("shipment_delayed", {"delay_hours": "48"})  # nor a string
    assert not DELAYED.matches("shipment_delayed", {"delay_hours": True})  # nor a boolean
    assert not DELAYED.matches("order_delivered", {"delay_hours": 48})
    listed = InteractionCondition("x", (("carrier", Operator.IN, ["ups", "dhl"]),))
    assert listed.matches("x", {"carrier": "dhl"}) and not listed.matches("x", {"carrier": "gls"})


def test_repeat_contacts_count_the_window_including_this_one() -> None:
    rule = RepeatContacts(count=3, days=7)
    days_ago = [NOON - timedelta(days=d) for d in (0, 2, 6)]
    assert rule.met(days_ago, NOON)
    assert not rule.met([NOON - timedelta(days=d) for d in (0, 2, 8)], NOON)
    assert not rule.met(days_ago, NOON - timedelta(days=1))  # the future does not count


def test_negative_feedback_counts_only_while_a_case_is_open() -> None:
    rule = NegativeFeedbackWhileCaseOpen()
    case = Fact("case", "case-1", NOON - timedelta(days=2), "acknowledged")
    angry = Fact(
        "response", "r-1", NOON - timedelta(days=1), "received", {"kind": "nps", "score": 3}
    )
    happy = Fact(
        "response", "r-2", NOON - timedelta(days=1), "received", {"kind": "nps", "score": 9}
    )
    sour = Fact("response", "r-3", NOON, "enriched", {"sentiment": {"label": "negative"}})
    earlier = Fact(
        "response", "r-4", NOON - timedelta(days=3), "received", {"kind": "csat", "score": 1}
    )
    assert rule.open_case_with_complaint([case, angry], NOON) == case
    assert rule.open_case_with_complaint([case, sour], NOON) == case
    assert rule.open_case_with_complaint([case, happy], NOON) is None
    assert rule.open_case_with_complaint([case, earlier], NOON) is None  # before the case
    closed = Fact("case", "case-1", case.occurred_at, "closed")
    assert rule.open_case_with_complaint([closed, angry], NOON) is None


def test_dedupe_keys_on_the_order_or_shipment_else_the_day() -> None:
    assert dedupe_key("late", {"shipment_id": "S1", "x": 1}, NOON.date()) == "late:shipment_id:S1"
    assert (
        dedupe_key("late", {"order_id": 7, "shipment_id": "S1"}, NOON.date()) == "late:order_id:7"
    )
    assert dedupe_key("late", {}, NOON.date()) == "late:day:2026-12-07"


def _decide(log: list[LoggedAction], *, at: datetime = NOON, trigger: Trigger = NOTIFY) -> Outcome:
    return decide(
        tenant="acme",
        trigger=trigger,
        customer_id="c1",
        dedupe="late:shipment_id:S1",
        at=at,
        zone=UTC_ZONE,
        policy=POLICY,
        log=log,
    ).outcome


def test_the_checks_in_order_duplicate_capped_quiet() -> None:
    assert _decide([]) is Outcome.TAKEN
    done = LoggedAction("late", "late:shipment_id:S1", Outcome.TAKEN, NOON - timedelta(days=30))
    assert _decide([done]) is Outcome.DUPLICATE
    held = LoggedAction("late", "late:shipment_id:S1", Outcome.HELD_OUT, NOON - timedelta(days=30))
    assert _decide([held]) is Outcome.DUPLICATE
    # A capped or quiet match does not settle the shipment: a later report may act.
    quiet = LoggedAction("late", "late:shipment_id:S1", Outcome.QUIET, NOON - timedelta(hours=1))
    assert _decide([quiet]) is Outcome.TAKEN
    # Two contacts by any trigger in the last 7 days cap the third; older ones do not count.
    recent = [
        LoggedAction("other", f"other:{n}", Outcome.TAKEN, NOON - timedelta(days=n)) for n in (1, 6)
    ]
    assert _decide(recent) is Outcome.CAPPED
    assert (
        _decide([recent[0], LoggedAction("o", "o:8", Outcome.TAKEN, NOON - timedelta(days=8))])
        is Outcome.TAKEN
    )
    assert _decide([*recent, done]) is Outcome.DUPLICATE
    assert _decide([], at=NOON.replace(hour=22)) is Outcome.QUIET
    assert _decide(recent, at=NOON.replace(hour=22)) is Outcome.CAPPED


def test_quiet_hours_read_the_customers_zone() -> None:
    nights = QuietHours(time(21), time(8))
    madrid = customer_zone({"timezone": "Europe/Madrid"}, "UTC")
    # 20:30 UTC is 21:30 in Madrid (CET in December): quiet there, not in UTC.
    at = NOON.replace(hour=20, minute=30)
    assert is_quiet(at, madrid, nights) and not is_quiet(at, UTC_ZONE, nights)
    assert customer_zone({"timezone": "Not/AZone"}, "Asia/Tokyo") == ZoneInfo("Asia/Tokyo")
    assert customer_zone({}, "Asia/Tokyo") == ZoneInfo("Asia/Tokyo")
    day = QuietHours(time(12), time(14))
    assert day.contains(time(13)) and not day.contains(time(14)) and not day.contains(time(11))
    assert not QuietHours(time(0), time(0)).contains(time(3))


def test_the_holdout_is_a_stable_share() -> None:
    customers = [f"c{n}" for n in range(10_000)]
    held = [c for c in customers if in_holdout("acme", "late", c, 10)]
    assert 900 < len(held) < 1100
    # Stable: the same answer again, and a hand-checked customer.
    assert held == [c for c in customers if in_holdout("acme", "late", c, 10)]
    assert not any(in_holdout("acme", "late", c, 0) for c in customers[:100])
    # Another trigger or tenant draws another holdout.
    assert held != [c for c in customers if in_holdout("acme", "early", c, 10)]
    assert held != [c for c in customers if in_holdout("beta", "late", c, 10)]


@given(st.text(min_size=1, max_size=20), st.floats(min_value=0, max_value=50))
def test_a_bigger_holdout_contains_the_smaller(customer: str, percent: float) -> None:
    if in_holdout("acme", "late", customer, percent):
        assert in_holdout("acme", "late", customer, min(50.0, percent + 5))


def test_held_out_customers_get_nothing_and_caps_come_first() -> None:
    held = next(f"c{n}" for n in range(1000) if in_holdout("acme", "late", f"c{n}", 10))
    trigger = Trigger(
        key="late", version=1, when=DELAYED, actions=({"type": "notify"},), holdout_percent=10
    )
    decision = decide(
        tenant="acme",
        trigger=trigger,
        customer_id=held,
        dedupe="d",
        at=NOON,
        zone=UTC_ZONE,
        policy=POLICY,
        log=[],
    )
    assert decision.outcome is Outcome.HELD_OUT and decision.actions == ()
    capped = decide(
        tenant="acme",
        trigger=trigger,
        customer_id=held,
        dedupe="d",
        at=NOON,
        zone=UTC_ZONE,
        policy=POLICY,
        log=[LoggedAction("o", f"o{n}", Outcome.TAKEN, NOON - timedelta(hours=n)) for n in (1, 2)],
    )
    assert capped.outcome is Outcome.CAPPED


def test_gestures_stay_within_the_budget() -> None:
    gesture = {"type": "offer_gesture", "kind": "voucher", "value": "10.00"}
    trigger = Trigger(
        key="late",
        version=1,
        when=DELAYED,
        actions=({"type": "notify"}, gesture),
        budget=Budget(Decimal("25"), 30),
    )

    def actions(spent: str) -> tuple[object, ...]:
        return decide(
            tenant="acme",
            trigger=trigger,
            customer_id="c1",
            dedupe="d",
            at=NOON,
            zone=UTC_ZONE,
            policy=POLICY,
            log=[],
            spent_in_budget_period=Decimal(spent),
        ).actions

    assert actions("15") == ({"type": "notify"}, {**gesture, "offered": True})
    assert actions("15.01") == (
        {"type": "notify"},
        {**gesture, "offered": False, "reason": "over_budget"},
    )


def _two_proportion(x_a: int, n_a: int, x_b: int, n_b: int) -> tuple[float, float, float, float]:
    """Difference, Wald interval and pooled z p-value worked out by hand."""
    p_a, p_b = x_a / n_a, x_b / n_b
    pooled = (x_a + x_b) / (n_a + n_b)
    z = (p_b - p_a) / math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    se = math.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)
    return (
        p_b - p_a,
        p_b - p_a - 1.959964 * se,
        p_b - p_a + 1.959964 * se,
        2 * (1 - NormalDist().cdf(abs(z))),
    )


def test_effect_against_hand_worked_numbers() -> None:
    # Treated: 4 customers, 1 complained; contacts after 0, 1, 1, 2; NPS 10, 9, 7; gestures 5+5.
    # Held out: 4 customers, 3 complained; contacts after 2, 3, 3, 4; NPS 3, 9.
    followed = [
        Followed("t1", True, False, 0, 10, Decimal("5")),
        Followed("t2", True, False, 1, 9, Decimal("5")),
        Followed("t3", True, True, 1, 7),
        Followed("t4", True, False, 2, None),
        Followed("h1", False, True, 2, 3),
        Followed("h2", False, True, 3, 9),
        Followed("h3", False, True, 3, None),
        Followed("h4", False, False, 4, None),
    ]
    found = effect(followed)
    assert (found.treated, found.held_out) == (4, 4)

    complaints = found.complaints
    assert complaints is not None
    difference, low, high, p = _two_proportion(3, 4, 1, 4)
    assert complaints.difference == -0.5 == difference
    assert math.isclose(complaints.interval.low, max(-1.0, low), abs_tol=1e-5)
    assert math.isclose(complaints.interval.high, high, abs_tol=1e-5)
    # pooled 0.5: se 0.353553, z = -1.414214, p = 0.157299
    assert math.isclose(complaints.p_value, 0.157299, abs_tol=1e-5) and math.isclose(
        p, 0.157299, abs_tol=1e-5
    )

    repeat = found.repeat_contacts
    assert repeat is not None
    # Means 1.0 and 3.0, both sample sd sqrt(2/3): se = sqrt(2/3 / 4 * 2) = 0.57735, t = -3.4641,
    # Welch df = 6.
    assert repeat.difference == -2.0
    assert math.isclose(repeat.p_value, 0.013385, abs_tol=1e-4)
    assert math.isclose(
        repeat.interval.high - repeat.interval.low, 2 * 2.446912 * 0.57735, rel_tol=1e-4
    )

    nps = found.nps
    assert nps is not None
    # Treated 2 promoters, 1 passive, 0 detractors: NPS 66.67; held out 1 promoter, 1 detractor: 0.
    assert math.isclose(nps.after, 200 / 3) and nps.before == 0.0
    assert math.isclose(nps.difference, 200 / 3)

    # Held-out rate 3/4 applied to 4 treated is 3 complaints; they had 1: 2 avoided, 10 spent.
    assert found.complaints_avoided == 2.0
    assert found.gesture_cost == Decimal("10")
    assert found.cost_per_complaint_avoided == Decimal("5.00")


def test_effect_needs_both_sides() -> None:
    found = effect([Followed("t1", True, False, 0, None)])
    assert found.complaints is None and found.repeat_contacts is None and found.nps is None
    assert found.cost_per_complaint_avoided is None


def test_windows_stop_at_the_ends_of_time() -> None:
    last = datetime.max.replace(tzinfo=UTC)
    first = datetime.min.replace(tzinfo=UTC)
    assert shifted(last - timedelta(days=1), timedelta(days=30)) == last
    assert shifted(first + timedelta(days=1), -timedelta(days=30)) == first
    assert shifted(NOON, timedelta(days=1)) == NOON + timedelta(days=1)
    assert RepeatContacts(count=1, days=7).met(
        [first + timedelta(hours=1)], first + timedelta(days=1)
    )
    assert not is_quiet(last, ZoneInfo("Pacific/Kiritimati"), QuietHours(time(0), time(8)))
