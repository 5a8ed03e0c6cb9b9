"""Complaint-spike alerts: fire fast on a real incident, stay quiet on noise.

Each (topic, segment) series is tested every period four ways:

* **poisson-tail**: the exact P(X >= observed) under a Poisson whose mean is the series' own
  mean over the previous ``baseline`` periods of the same phase of the season (for daily data
  and ``season=7``, the previous twelve Tuesdays for a Tuesday), so a regular Monday peak is
  expected on Mondays. The p-values of all series tested in the period are corrected together
  (Holm by default), so eleven topics do not mean eleven chances of a false alarm.
* **poisson-cusum**: a Poisson CUSUM, the log-likelihood ratio of "counts run at
  ``cusum_shift`` times the expected" against "counts run as expected", accumulated over the
  periods since the evidence was last nil: S = max(0, S + x ln k - (k - 1) mu0). It catches a
  sustained moderate rise (2.2x for four days) that no single period makes surprising enough
  for the tail test. It has no p-value; its false alarms are held by ``cusum_threshold`` per
  series (the in-control average run length is at least e^h periods), not corrected across
  series.
* **poisson-window**: the sum X of the last ``window`` (2) periods against the sum B of their
  baselines. With steady Poisson counts X and B are independent with means mu and n mu (n
  baseline periods each), so given X + B, X is Binomial(X + B, 1 / (n + 1)) whatever mu is:
  the p-value is that exact tail, and the baseline's own noise does not inflate the false
  alarms. The sum of two periods is the most powerful test of a rise lasting both, so it is
  the quickest to a sustained rise within two periods. It is held per series, like the CUSUM,
  at ``window_alpha`` (0.0006) a period, not corrected across series: the budget of 1 false
  alarm per 1,000 series-periods is shared as about 0.1 (tail), 0.6 (window), 0.3 (CUSUM).
  No test meets "a 2.2x rise caught within 2 periods 99% of the time" at that budget: with 12
  a day and known means the best is about 92% (``bench/alerts.py``).
* **ewma**: when the response totals are known, an exponentially weighted moving average of
  the complaint rate (count / total) against the rate of the trailing season x ``baseline``
  periods, with the exact variance of the weighted average of binomial rates. It catches slow
  ramps that no single period makes surprising; its normal-tail p-values get the same
  correction.

An alert needs a corrected p-value below ``alpha`` (or the window's below ``window_alpha``, or the
CUSUM at its threshold) and at least
``min_count`` complaints (tiny series never alert). After an alert a series is quiet for
``cooldown`` periods unless it escalates (its count reaches ``escalation`` times the count that
alerted). Any alert of a series, even one a cooldown holds back, restarts its CUSUM from zero:
the rise it summed has been reported. Alerts of one period in the same topic across segments,
or in topics of one configured group, form one incident.
"""

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum
from itertools import accumulate
from statistics import NormalDist

from cxops.feedback.domain.poisson import (
    binomial_upper_tail,
    bonferroni,
    holm,
    normal_upper_tail,
    poisson_upper_tail,
)

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class Correction(StrEnum):
    HOLM = "holm"
    BONFERRONI = "bonferroni"


@dataclass(frozen=True, slots=True)
class AlertConfig:
    """Thresholds. With the defaults, eleven steady daily topics raise about two false alarms
    per thousand days between them, and a doubling is caught in a day or two when totals are
    given (``bench/alerts.py``).
    The baseline is long (twelve weeks) because its own noise is what inflates false alarms: the
    test takes the estimated mean as known."""

    alpha: float = 0.001
    min_count: int = 5
    #: Periods per season: 7 for weekday seasonality of daily data, 1 for none.
    season: int = 7
    #: Days per period: 1 for daily counts, 7 for weekly ones (dated by any day of the week).
    period_days: int = 1
    #: Same-phase periods averaged into the expected count.
    baseline: int = 12
    #: Fewer same-phase periods of history than this: the series is not tested yet.
    min_baseline: int = 6
    correction: Correction = Correction.HOLM
    #: Weight of the newest rate in the EWMA (0.15: about the last twelve periods count).
    ewma_weight: float = 0.15
    cooldown: int = 7
    escalation: float = 1.5
    #: The rise the CUSUM is tuned to, as a multiple of the expected count: it is quickest on a
    #: rise of about this size and still accumulates smaller ones more slowly.
    cusum_shift: float = 2.0
    #: Log-likelihood ratio h at which the CUSUM alerts; None turns it off. With a known mean a
    #: steady series runs at least e^h periods between false alarms on average (Lorden's bound:
    #: 665 for 6.5). The bound is loose but the mean is estimated, so h comes from simulation
    #: (``bench/alerts.py``): 6.5 keeps steady daily series of 6 to 40 a day at or below about
    #: 0.3 CUSUM false alarms per 1,000 periods, within the budget of 1 for all tests together,
    #: and 6 would already reach 0.55 on the smallest.
    cusum_threshold: float | None = 6.5
    #: Periods summed by the window test: 2 catches a rise on its second period.
    window: int = 2
    #: False-alarm rate of the window test per series and period (exact: the test conditions on
    #: the baseline, so its noise does not inflate it); None turns the test off.
    window_alpha: float | None = 0.0006
    #: Group name -> related topics whose simultaneous alerts are one incident.
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = [
            name
            for name, ok in (
                ("alpha", 0 < self.alpha < 1),
                ("min_count", self.min_count >= 1),
                ("season", self.season >= 1),
                ("period_days", self.period_days >= 1),
                ("baseline", self.baseline >= 1),
                ("min_baseline", 1 <= self.min_baseline <= self.baseline),
                ("ewma_weight", 0 < self.ewma_weight <= 1),
                ("cooldown", self.cooldown >= 0),
                ("escalation", self.escalation >= 1),
                ("cusum_shift", self.cusum_shift > 1),
                ("cusum_threshold", self.cusum_threshold is None or self.cusum_threshold > 0),
                ("window", self.window >= 2),
                ("window_alpha", self.window_alpha is None or 0 < self.window_alpha < 1),
            )
            if not ok
        ]
        if problems:
            raise ValueError(f"out of range: {', '.join(problems)}")


@dataclass(frozen=True, slots=True)
class Observation:
    """One row of counts: complaints about ``topic`` in ``segment`` during ``period``, out of
    ``total`` responses when known."""

    period: date
    topic: str
    count: int
    segment: str = ""
    total: int | None = None


@dataclass(frozen=True, slots=True)
class Alert:
    """One series alerting in one period. ``p_value`` is corrected, and None for
    ``poisson-cusum`` (a likelihood ratio over a run of periods has no exact tail to report);
    ``statistic`` and ``limit`` are the EWMA rate and its control limit (``ewma``) or the CUSUM
    and its threshold (``poisson-cusum``), None for ``poisson-tail``."""

    period: date
    topic: str
    segment: str
    observed: int
    expected: float
    test: str
    p_value: float | None
    statistic: float | None
    limit: float | None
    escalated: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Incident:
    """The alerts of one period that belong together; ``topic`` is the group's name when they
    span related topics. ``test`` and ``p_value`` are the strongest member's: the one with the
    smallest p-value, or a CUSUM (p-value None) when all members are."""

    period: date
    topic: str
    topics: tuple[str, ...]
    segments: tuple[str, ...]
    observed: int
    expected: float
    test: str
    p_value: float | None
    reason: str
    members: tuple[Alert, ...]


@dataclass(frozen=True, slots=True)
class Detection:
    """The incidents, and what was looked at: ``untested`` counts (series, period) pairs with
    too little history, ``suppressed`` the alerts a cooldown held back."""

    incidents: tuple[Incident, ...]
    periods: int
    series: int
    tests: int
    untested: int
    suppressed: int


Key = tuple[str, str]


@dataclass(slots=True)
class _Cusum:
    """The CUSUM and the run it sums: the periods since it was last zero, and their observed
    and expected complaints (what an alert's reason reports)."""

    statistic: float = 0.0
    periods: int = 0
    observed: int = 0
    expected: float = 0.0

    def add(self, observed: int, expected: float, shift: float) -> None:
        step = observed * math.log(shift) - (shift - 1) * expected
        if self.statistic + step <= 0:
            self.restart()
            return
        self.statistic += step
        self.periods += 1
        self.observed += observed
        self.expected += expected

    def restart(self) -> None:
        self.statistic, self.periods, self.observed, self.expected = 0.0, 0, 0, 0.0


@dataclass(slots=True)
class _Series:
    start: int
    counts: list[int]
    totals: list[int | None]
    ewma: float | None = None
    #: Sum of squared EWMA weights over the totals: Var(EWMA) = p (1 - p) * spread.
    spread: float = 0.0
    cum_counts: list[int] = field(default_factory=list)
    cum_totals: list[int] = field(default_factory=list)
    cusum: _Cusum = field(default_factory=_Cusum)
    #: Period -> the complaints of its baseline and how many periods they span, for the periods
    #: tested (the window test sums the last few).
    baselines: dict[int, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Window:
    """The last ``periods`` periods summed: observed and expected complaints, the baseline's
    complaints over those periods, and the uncorrected conditional p-value."""

    periods: int
    observed: int
    expected: float
    baseline: int
    p_value: float


@dataclass(frozen=True, slots=True)
class _Rate:
    """The EWMA of the rate this period, its standard deviation, the trailing rate it is held
    against, the period's total, and the uncorrected normal-tail p-value."""

    ewma: float
    sd: float
    baseline: float
    total: int
    p_value: float


@dataclass(frozen=True, slots=True)
class _Test:
    key: Key
    observed: int
    expected: float
    p_poisson: float
    rate: _Rate | None
    cusum: _Cusum
    window: _Window | None


def detect(observations: Iterable[Observation], config: AlertConfig) -> Detection:
    """Run every period in order and return the incidents. A series without a row in a period
    had no complaints then; a period missing from the data counts as zero for every series."""
    origin, series = _tabulate(observations, config)
    periods = max((len(s.counts) for s in series.values()), default=0)
    for s in series.values():
        s.counts.extend([0] * (periods - len(s.counts)))
        s.totals.extend([None] * (periods - len(s.totals)))
        known = [(c, n) if n else (0, 0) for c, n in zip(s.counts, s.totals, strict=True)]
        s.cum_counts = [0, *accumulate(c for c, _ in known)]
        s.cum_totals = [0, *accumulate(n for _, n in known)]
    incidents: list[Incident] = []
    last_alert: dict[Key, tuple[int, int, date]] = {}
    tests = untested = suppressed = 0
    for t in range(periods):
        day = date.fromordinal(origin + t * config.period_days)
        tested = []
        for key, s in series.items():
            if t < s.start:
                continue
            test = _test(key, s, t, config)
            if test is None:
                untested += 1
            else:
                tested.append(test)
        tests += len(tested)
        alerts = []
        for alert in _alerts(tested, day, config):
            series[(alert.topic, alert.segment)].cusum.restart()
            previous = last_alert.get((alert.topic, alert.segment))
            if previous is not None and t - previous[0] <= config.cooldown:
                if alert.observed < config.escalation * previous[1]:
                    suppressed += 1
                    continue
                alert = _escalated(alert, previous[1], previous[2])
            last_alert[(alert.topic, alert.segment)] = (t, alert.observed, day)
            alerts.append(alert)
        incidents.extend(_group(alerts, config.groups))
    return Detection(
        incidents=tuple(incidents),
        periods=periods,
        series=len(series),
        tests=tests,
        untested=untested,
        suppressed=suppressed,
    )


def _tabulate(
    observations: Iterable[Observation], config: AlertConfig
) -> tuple[int, dict[Key, _Series]]:
    rows = sorted(observations, key=lambda o: (o.period, o.topic, o.segment))
    origin = rows[0].period.toordinal() if rows else 0
    series: dict[Key, _Series] = {}
    for row in rows:
        offset, off_grid = divmod(row.period.toordinal() - origin, config.period_days)
        if off_grid:
            raise ValueError(f"{row.period} is not {config.period_days} days after the previous")
        if row.count < 0 or (row.total is not None and not 0 <= row.count <= row.total):
            raise ValueError(f"{row.period} {row.topic}: count {row.count} of {row.total}")
        s = series.setdefault((row.topic, row.segment), _Series(offset, [], []))
        index = offset - s.start
        if index < len(s.counts):
            raise ValueError(f"{row.period} {row.topic} {row.segment}: two counts")
        s.counts.extend([0] * (index - len(s.counts)))
        s.totals.extend([None] * (index - len(s.totals)))
        s.counts.append(row.count)
        s.totals.append(row.total)
    for s in series.values():
        # Index the series by absolute period from here on: pad the periods before its start.
        s.counts[:0] = [0] * s.start
        s.totals[:0] = [None] * s.start
    return origin, series


def _test(key: Key, s: _Series, t: int, config: AlertConfig) -> _Test | None:
    history = [
        s.counts[t - config.season * back]
        for back in range(1, config.baseline + 1)
        if t - config.season * back >= s.start
    ]
    if len(history) < config.min_baseline:
        return None
    # Half a complaint spread over the baseline: an all-zero history must not give p = 0.
    expected = max(sum(history), 0.5) / len(history)
    observed = s.counts[t]
    s.cusum.add(observed, expected, config.cusum_shift)
    s.baselines[t] = (sum(history), len(history))
    return _Test(
        key,
        observed,
        expected,
        poisson_upper_tail(observed, expected),
        _rate(s, t, config),
        replace(s.cusum),
        _window(s, t, config),
    )


def _window(s: _Series, t: int, config: AlertConfig) -> _Window | None:
    """The window test at period ``t``: None when it is off or a period of the window was not
    tested. Under steady Poisson counts the window's sum X and its baselines' sum B are
    independent with means mu and n mu (n baseline periods each), so given X + B, X is
    Binomial(X + B, 1 / (n + 1)) whatever mu is: the p-value is that exact tail."""
    if config.window_alpha is None:
        return None
    periods = range(t - config.window + 1, t + 1)
    if any(u not in s.baselines for u in periods):
        return None
    observed = sum(s.counts[u] for u in periods)
    baseline = sum(s.baselines[u][0] for u in periods)
    # Each period's expected count as the tail test takes it; with equal baseline lengths n the
    # share of the window is exactly 1 / (n + 1), and with unequal ones it is weighted by them.
    means = [max(total, 0.5) / n for total, n in (s.baselines[u] for u in periods)]
    spans = [s.baselines[u][1] for u in periods]
    expected = sum(means)
    share = expected / (expected + sum(m * n for m, n in zip(means, spans, strict=True)))
    p_value = binomial_upper_tail(observed, observed + baseline, share)
    return _Window(config.window, observed, expected, baseline, p_value)


def _rate(s: _Series, t: int, config: AlertConfig) -> _Rate | None:
    """Advance the series' EWMA of the rate to period ``t``; None without a total this period
    or complaints in the trailing window."""
    total = s.totals[t]
    since = max(s.start, t - config.season * config.baseline)
    responses = s.cum_totals[t] - s.cum_totals[since]
    complaints = s.cum_counts[t] - s.cum_counts[since]
    if not total or not responses or not complaints:
        return None
    baseline = complaints / responses
    weight = config.ewma_weight
    previous = baseline if s.ewma is None else s.ewma
    s.ewma = weight * s.counts[t] / total + (1 - weight) * previous
    s.spread = (1 - weight) ** 2 * s.spread + weight**2 / total
    sd = math.sqrt(baseline * (1 - baseline) * s.spread)
    if sd == 0:
        return None
    return _Rate(s.ewma, sd, baseline, total, normal_upper_tail((s.ewma - baseline) / sd))


def _alerts(tested: list[_Test], day: date, config: AlertConfig) -> list[Alert]:
    correct = holm if config.correction is Correction.HOLM else bonferroni
    method = "Holm" if config.correction is Correction.HOLM else "Bonferroni"
    poisson = correct([test.p_poisson for test in tested])
    rates = {test.key: test.rate for test in tested if test.rate is not None}
    rate_p = dict(zip(rates, correct([rate.p_value for rate in rates.values()]), strict=True))
    critical = NormalDist().inv_cdf(1 - config.alpha / max(1, len(rates)))
    alerts = []
    for test, p in zip(tested, poisson, strict=True):
        topic, segment = test.key
        label = f"{topic} [{segment}]" if segment else topic
        if test.observed < config.min_count:
            continue
        if p < config.alpha:
            alerts.append(
                Alert(
                    period=day,
                    topic=topic,
                    segment=segment,
                    observed=test.observed,
                    expected=test.expected,
                    test="poisson-tail",
                    p_value=p,
                    statistic=None,
                    limit=None,
                    escalated=False,
                    reason=f"{label}: {test.observed} complaints vs {test.expected:.1f} expected"
                    f"{_phase(day, config)} (p={p:.2g} after {method} over {len(tested)} series)",
                )
            )
        elif (
            test.window is not None
            and config.window_alpha is not None
            and test.window.p_value < config.window_alpha
        ):
            alerts.append(_window_alert(test, test.window, label, day, config))
        elif config.cusum_threshold is not None and test.cusum.statistic >= config.cusum_threshold:
            alerts.append(_cusum_alert(test, label, day, config))
        elif test.rate is not None and rate_p[test.key] < config.alpha:
            rate = test.rate
            limit = rate.baseline + critical * rate.sd
            corrected = rate_p[test.key]
            alerts.append(
                Alert(
                    period=day,
                    topic=topic,
                    segment=segment,
                    observed=test.observed,
                    expected=rate.baseline * rate.total,
                    test="ewma",
                    p_value=corrected,
                    statistic=rate.ewma,
                    limit=limit,
                    escalated=False,
                    reason=f"{label}: complaint rate drifting up, EWMA {rate.ewma:.2%} over "
                    f"the limit {limit:.2%} (trailing rate {rate.baseline:.2%}; p={corrected:.2g} "
                    f"after {method} over {len(rates)} series)",
                )
            )
    return alerts


def _window_alert(
    test: _Test, window: _Window, label: str, day: date, config: AlertConfig
) -> Alert:
    topic, segment = test.key
    return Alert(
        period=day,
        topic=topic,
        segment=segment,
        observed=test.observed,
        expected=test.expected,
        test="poisson-window",
        p_value=window.p_value,
        statistic=None,
        limit=None,
        escalated=False,
        reason=f"{label}: {window.observed} complaints vs {window.expected:.1f} expected over "
        f"the last {window.periods} periods ({test.observed} vs {test.expected:.1f}"
        f"{_phase(day, config)}; p={window.p_value:.2g} given the baseline's "
        f"{window.baseline}, per series)",
    )


def _cusum_alert(test: _Test, label: str, day: date, config: AlertConfig) -> Alert:
    run, threshold = test.cusum, config.cusum_threshold
    topic, segment = test.key
    return Alert(
        period=day,
        topic=topic,
        segment=segment,
        observed=test.observed,
        expected=test.expected,
        test="poisson-cusum",
        p_value=None,
        statistic=run.statistic,
        limit=threshold,
        escalated=False,
        reason=f"{label}: sustained rise, {run.observed} complaints vs {run.expected:.1f} "
        f"expected over the last {run.periods} periods ({test.observed} vs "
        f"{test.expected:.1f}{_phase(day, config)}; CUSUM for a {config.cusum_shift:g}x rise "
        f"{run.statistic:.1f} reached its threshold {threshold:g})",
    )


def _phase(day: date, config: AlertConfig) -> str:
    if config.season == 7 and config.period_days == 1:
        return f" for a {WEEKDAYS[day.weekday()]}"
    if config.season == 1:
        return ""
    return " for this point of the season"


def _escalated(alert: Alert, count: int, when: date) -> Alert:
    note = f"; escalated within the cooldown of the alert on {when} ({count} complaints)"
    return replace(alert, escalated=True, reason=alert.reason + note)


def _group(alerts: list[Alert], groups: Mapping[str, tuple[str, ...]]) -> list[Incident]:
    """Union the alerts that share a topic or a group; one incident per connected set."""
    parent = list(range(len(alerts)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for i, alert in enumerate(alerts):
        labels = [f"topic:{alert.topic}"]
        labels += [f"group:{name}" for name, topics in groups.items() if alert.topic in topics]
        for label in labels:
            parent[root(i)] = root(first.setdefault(label, i))
    members: dict[int, list[Alert]] = {}
    for i, alert in enumerate(alerts):
        members.setdefault(root(i), []).append(alert)
    return [_incident(together, groups) for together in members.values()]


def _strength(alert: Alert) -> tuple[float, float]:
    """Sort key, strongest first: the smallest p-value, then the largest CUSUM."""
    if alert.p_value is not None:
        return (0.0, alert.p_value)
    return (1.0, -(alert.statistic or 0.0))


def _incident(alerts: list[Alert], groups: Mapping[str, tuple[str, ...]]) -> Incident:
    topics = tuple(sorted({a.topic for a in alerts}))
    segments = tuple(sorted({a.segment for a in alerts}))
    strongest = min(alerts, key=_strength)
    if len(topics) == 1:
        name = topics[0]
    else:
        covering = [g for g, members in groups.items() if set(topics) <= set(members)]
        name = covering[0] if covering else "+".join(topics)
    reason = strongest.reason
    if len(alerts) > 1:
        reason = f"{name}: {len(alerts)} series at once: " + "; ".join(a.reason for a in alerts)
    return Incident(
        period=alerts[0].period,
        topic=name,
        topics=topics,
        segments=segments,
        observed=sum(a.observed for a in alerts),
        expected=sum(a.expected for a in alerts),
        test=strongest.test,
        p_value=strongest.p_value,
        reason=reason,
        members=tuple(alerts),
    )
