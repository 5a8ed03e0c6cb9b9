"""Live complaint alerts: the service's counts turned into the spike detector's series, the
period to evaluate, and the real-time rule. Pure: plain values in, plain values out.

A **complaint** is a topic tag whose own sentiment is negative (a ``feedback_response_topics``
row with ``sentiment_label = 'negative'``): a response that complains about billing and praises
the agent is one billing complaint, not an agent one. Each topic is counted in segment
:data:`ALL` (the whole tenant) and in ``tier:<tier>`` for the response's ``customer_tier`` when
it has one, so a rise among gold customers is not drowned by everyone else's traffic.

Periods are UTC hours and UTC days. Daily series use weekday seasonality (a Tuesday is held
against previous Tuesdays); hourly series use hour-of-day seasonality (10:00 against previous
days' 10:00), the detector's defaults otherwise. The detector
(:mod:`cxops.feedback.domain.alerts`) works on dates, so hours are numbered onto a run of
stand-in dates for it and numbered back here.
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from cxops.feedback.domain.alerts import Alert, AlertConfig, Observation, detect

ALL = "all"
#: The team a real-time alert goes to when no negative topic names an owner.
DEFAULT_TEAM = "cases"


class Granularity(StrEnum):
    HOUR = "hour"
    DAY = "day"


_LENGTH = {Granularity.HOUR: timedelta(hours=1), Granularity.DAY: timedelta(days=1)}
#: Periods per season: hour of the day, day of the week.
_SEASON = {Granularity.HOUR: 24, Granularity.DAY: 7}
#: Extra seasons of history beyond the baseline, so the CUSUM has run in before the period.
_RUN_IN_SEASONS = 2


def tier_segment(tier: str) -> str:
    return f"tier:{tier}"


def period_length(granularity: Granularity) -> timedelta:
    return _LENGTH[granularity]


def period_of(moment: datetime, granularity: Granularity) -> datetime:
    """The start of the period ``moment`` falls in."""
    moment = moment.astimezone(UTC)
    hour = moment.replace(minute=0, second=0, microsecond=0)
    return hour if granularity is Granularity.HOUR else hour.replace(hour=0)


def last_closed(now: datetime, granularity: Granularity) -> datetime:
    """The start of the latest period that has ended by ``now``."""
    return period_of(now, granularity) - _LENGTH[granularity]


def next_close(now: datetime) -> datetime:
    """When the next hour (and so possibly a day) closes after ``now``."""
    return period_of(now, Granularity.HOUR) + _LENGTH[Granularity.HOUR]


def detector_config(
    granularity: Granularity, *, alpha: float | None = None, min_count: int | None = None
) -> AlertConfig:
    """The detector's settings for one granularity, with a tenant's overrides."""
    base = AlertConfig(season=_SEASON[granularity])
    return AlertConfig(
        season=base.season,
        alpha=base.alpha if alpha is None else alpha,
        min_count=base.min_count if min_count is None else min_count,
    )


def history_start(period: datetime, granularity: Granularity, config: AlertConfig) -> datetime:
    """The first period of the history the detector needs to evaluate ``period``: the baseline's
    same-phase periods and a few more seasons for the CUSUM to run in."""
    periods = config.season * (config.baseline + _RUN_IN_SEASONS)
    return period - periods * _LENGTH[granularity]


@dataclass(frozen=True, slots=True)
class Count:
    """Rows of a GROUP BY: complaints about ``topic`` by customers of ``tier`` (None: no tier)
    in the period starting at ``period``."""

    period: datetime
    topic: str
    tier: str | None
    count: int


@dataclass(frozen=True, slots=True)
class Total:
    """Responses (complaining or not) by customers of ``tier`` in the period at ``period``."""

    period: datetime
    tier: str | None
    count: int


@dataclass(frozen=True, slots=True)
class PeriodAlert:
    """One series alerting in the evaluated period, in the service's terms."""

    topic: str
    segment: str
    period_start: datetime
    period_end: datetime
    test: str
    p_value: float | None
    observed: int
    expected: float
    statistic: float | None
    threshold: float | None
    reason: str


def observations(
    counts: Iterable[Count],
    totals: Iterable[Total],
    *,
    start: datetime,
    granularity: Granularity,
) -> list[Observation]:
    """The detector's rows: each topic in :data:`ALL` and in its tier's segment, with the
    responses of that segment in the period as its total. Periods are numbered from ``start``
    (see :func:`_stand_in`)."""
    series: dict[tuple[datetime, str, str], int] = {}
    for row in counts:
        segments = [ALL] + ([tier_segment(row.tier)] if row.tier else [])
        for segment in segments:
            key = (row.period, row.topic, segment)
            series[key] = series.get(key, 0) + row.count
    responses: dict[tuple[datetime, str], int] = {}
    for row_total in totals:
        segments = [ALL] + ([tier_segment(row_total.tier)] if row_total.tier else [])
        for segment in segments:
            key_total = (row_total.period, segment)
            responses[key_total] = responses.get(key_total, 0) + row_total.count
    return [
        Observation(
            period=_stand_in(period, start, granularity),
            topic=topic,
            segment=segment,
            count=count,
            # A complaint counted without its response in the totals (a race with intake) would
            # make count > total; the detector would refuse the row, so the total is dropped.
            total=total if (total := responses.get((period, segment))) and total >= count else None,
        )
        for (period, topic, segment), count in sorted(series.items())
    ]


def alerts_in(
    counts: Sequence[Count],
    totals: Sequence[Total],
    *,
    period: datetime,
    granularity: Granularity,
    config: AlertConfig,
) -> list[PeriodAlert]:
    """Run the detector over ``counts`` and ``totals`` (the history from :func:`history_start`
    to the end of ``period``) and return the series alerting in ``period``: each series of an
    incident is its own alert. A series starts at its first complaint, as in the detector."""
    start = history_start(period, granularity, config)
    target = _stand_in(period, start, granularity)
    found = detect(observations(counts, totals, start=start, granularity=granularity), config)
    return [
        _period_alert(member, start=start, granularity=granularity)
        for incident in found.incidents
        if incident.period == target
        for member in incident.members
    ]


def _period_alert(alert: Alert, *, start: datetime, granularity: Granularity) -> PeriodAlert:
    period = _from_stand_in(alert.period, start, granularity)
    return PeriodAlert(
        topic=alert.topic,
        segment=alert.segment,
        period_start=period,
        period_end=period + _LENGTH[granularity],
        test=alert.test,
        p_value=alert.p_value,
        observed=alert.observed,
        expected=alert.expected,
        statistic=alert.statistic,
        threshold=alert.limit,
        reason=_real_dates(alert.reason, start, granularity),
    )


_EPOCH = date(2000, 1, 1)
_ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


def _stand_in(period: datetime, start: datetime, granularity: Granularity) -> date:
    """The date the detector knows ``period`` by: days are themselves; hours are numbered from
    ``start`` onto consecutive dates from 2000-01-01 (the detector's arithmetic is on dates)."""
    if granularity is Granularity.DAY:
        return period.date()
    return _EPOCH + timedelta(days=(period - start) // _LENGTH[granularity])


def _from_stand_in(day: date, start: datetime, granularity: Granularity) -> datetime:
    if granularity is Granularity.DAY:
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start + (day - _EPOCH).days * _LENGTH[granularity]


def _real_dates(reason: str, start: datetime, granularity: Granularity) -> str:
    """The detector's reason with any stand-in date (an earlier alert's, in an escalation)
    written as the hour it stands for."""
    if granularity is Granularity.DAY:
        return reason
    return _ISO_DATE.sub(
        lambda found: _from_stand_in(
            date.fromisoformat(found.group()), start, granularity
        ).strftime("%Y-%m-%d %H:00 UTC"),
        reason,
    )


# --- the real-time rule -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tag:
    """A topic a response was tagged with, as the rule needs it."""

    topic: str
    owner: str | None
    negative: bool


@dataclass(frozen=True, slots=True)
class RealtimeRule:
    enabled: bool
    tiers: frozenset[str]
    min_confidence: float


@dataclass(frozen=True, slots=True)
class RealtimeAlert:
    topic: str | None
    team: str
    segment: str
    reason: str


def realtime_alert(
    rule: RealtimeRule,
    *,
    tier: str | None,
    negative: bool,
    confidence: float | None,
    tags: Sequence[Tag],
) -> RealtimeAlert | None:
    """A response's own negative sentiment, read with at least ``min_confidence``, from a
    customer of a named tier: an alert for the owner of its first negative topic (the first
    negative topic without an owner, or none, sends it to :data:`DEFAULT_TEAM`)."""
    if not rule.enabled or tier is None or tier not in rule.tiers:
        return None
    if not negative or confidence is None or confidence < rule.min_confidence:
        return None
    first = next((tag for tag in tags if tag.negative), None)
    team = (first.owner if first is not None else None) or DEFAULT_TEAM
    about = f" about {first.topic}" if first is not None else ""
    return RealtimeAlert(
        topic=first.topic if first is not None else None,
        team=team,
        segment=tier_segment(tier),
        reason=f"a {tier} customer answered negatively{about} "
        f"(sentiment confidence {confidence:.2f} >= {rule.min_confidence:g})",
    )
