"""The pure side of live complaint alerts: periods, the detector's series from the service's
counts, the period evaluated, and the real-time tier rule."""

import random
from datetime import UTC, datetime, timedelta

from cxops.feedback.domain.complaints import (
    ALL,
    DEFAULT_TEAM,
    Count,
    Granularity,
    RealtimeRule,
    Tag,
    Total,
    alerts_in,
    detector_config,
    history_start,
    last_closed,
    next_close,
    observations,
    period_of,
    realtime_alert,
)

NOW = datetime(2026, 3, 18, 10, 20, 5, tzinfo=UTC)  # a Wednesday


def test_periods_are_utc_hours_and_days() -> None:
    assert period_of(NOW, Granularity.HOUR) == datetime(2026, 3, 18, 10, tzinfo=UTC)
    assert period_of(NOW, Granularity.DAY) == datetime(2026, 3, 18, tzinfo=UTC)
    assert last_closed(NOW, Granularity.HOUR) == datetime(2026, 3, 18, 9, tzinfo=UTC)
    assert last_closed(NOW, Granularity.DAY) == datetime(2026, 3, 17, tzinfo=UTC)
    assert next_close(NOW) == datetime(2026, 3, 18, 11, tzinfo=UTC)
    # At the close itself, the period that just ended is the one evaluated.
    assert last_closed(datetime(2026, 3, 18, tzinfo=UTC), Granularity.DAY) == datetime(
        2026, 3, 17, tzinfo=UTC
    )


def test_history_covers_the_baseline_and_a_run_in() -> None:
    day = datetime(2026, 3, 17, tzinfo=UTC)
    daily = detector_config(Granularity.DAY)
    assert daily.season == 7
    assert history_start(day, Granularity.DAY, daily) == day - timedelta(days=7 * 14)
    hourly = detector_config(Granularity.HOUR, alpha=0.01, min_count=3)
    assert (hourly.season, hourly.alpha, hourly.min_count) == (24, 0.01, 3)
    assert history_start(day, Granularity.HOUR, hourly) == day - timedelta(hours=24 * 14)


def test_each_topic_counts_in_all_and_in_its_tier() -> None:
    day = datetime(2026, 3, 17, tzinfo=UTC)
    rows = observations(
        [Count(day, "billing", "gold", 2), Count(day, "billing", None, 3)],
        [Total(day, "gold", 10), Total(day, None, 30)],
        start=day,
        granularity=Granularity.DAY,
    )
    found = {(row.segment, row.count, row.total) for row in rows}
    assert found == {(ALL, 5, 40), ("tier:gold", 2, 10)}


def _daily(days: int, rate: float, seed: int) -> tuple[list[Count], list[Total], datetime]:
    rng = random.Random(seed)
    end = datetime(2026, 3, 17, tzinfo=UTC)
    counts, totals = [], []
    for back in range(days, -1, -1):
        day = end - timedelta(days=back)
        n = sum(rng.random() < rate / 200 for _ in range(200))
        counts.append(Count(day, "billing", None, n))
        totals.append(Total(day, None, 200))
    return counts, totals, end


def test_steady_traffic_raises_nothing() -> None:
    counts, totals, end = _daily(97, 10, seed=1)
    config = detector_config(Granularity.DAY)
    assert alerts_in(counts, totals, period=end, granularity=Granularity.DAY, config=config) == []


def test_a_jump_in_the_period_raises_a_tail_alert_for_that_period_only() -> None:
    counts, totals, end = _daily(97, 10, seed=2)
    counts[-1] = Count(end, "billing", None, 45)
    config = detector_config(Granularity.DAY)
    [alert] = alerts_in(counts, totals, period=end, granularity=Granularity.DAY, config=config)
    assert (alert.topic, alert.segment, alert.observed) == ("billing", ALL, 45)
    assert alert.test == "poisson-tail" and alert.p_value is not None and alert.p_value < 0.001
    assert (alert.period_start, alert.period_end) == (end, end + timedelta(days=1))
    assert "for a Tuesday" in alert.reason
    # The day before is evaluated on its own history and raises nothing.
    earlier = end - timedelta(days=1)
    assert (
        alerts_in(
            counts[:-1], totals[:-1], period=earlier, granularity=Granularity.DAY, config=config
        )
        == []
    )


def test_hours_are_evaluated_on_hour_of_day_seasons() -> None:
    rng = random.Random(3)
    period = datetime(2026, 3, 17, 14, tzinfo=UTC)
    config = detector_config(Granularity.HOUR)
    start = history_start(period, Granularity.HOUR, config)
    counts = []
    moment = start
    while moment < period:
        counts.append(Count(moment, "delivery", "gold", sum(rng.random() < 0.2 for _ in range(10))))
        moment += timedelta(hours=1)
    counts.append(Count(period, "delivery", "gold", 14))
    found = alerts_in(counts, [], period=period, granularity=Granularity.HOUR, config=config)
    assert {(a.segment, a.period_start, a.period_end) for a in found} == {
        (segment, period, period + timedelta(hours=1)) for segment in (ALL, "tier:gold")
    }


RULE = RealtimeRule(enabled=True, tiers=frozenset({"gold"}), min_confidence=0.5)
TAGS = [
    Tag("agent", "contact-centre", negative=False),
    Tag("billing", "billing-operations", negative=True),
]


def test_the_tier_rule_alerts_the_owner_of_the_first_negative_topic() -> None:
    alert = realtime_alert(RULE, tier="gold", negative=True, confidence=0.8, tags=TAGS)
    assert alert is not None
    assert (alert.topic, alert.team) == ("billing", "billing-operations")
    assert alert.segment == "tier:gold"
    bare = realtime_alert(RULE, tier="gold", negative=True, confidence=0.8, tags=[])
    assert bare is not None and (bare.topic, bare.team) == (None, DEFAULT_TEAM)


def test_the_tier_rule_stays_quiet_otherwise() -> None:
    quiet = [
        realtime_alert(RULE, tier="silver", negative=True, confidence=0.9, tags=TAGS),
        realtime_alert(RULE, tier=None, negative=True, confidence=0.9, tags=TAGS),
        realtime_alert(RULE, tier="gold", negative=False, confidence=0.9, tags=TAGS),
        realtime_alert(RULE, tier="gold", negative=True, confidence=0.4, tags=TAGS),
        realtime_alert(RULE, tier="gold", negative=True, confidence=None, tags=TAGS),
        realtime_alert(
            RealtimeRule(enabled=False, tiers=RULE.tiers, min_confidence=0.5),
            tier="gold",
            negative=True,
            confidence=0.9,
            tags=TAGS,
        ),
    ]
    assert quiet == [None] * len(quiet)
