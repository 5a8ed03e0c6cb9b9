"""NPS, CSAT and CES with honest error bars, per segment and period, and whether they moved.

Definitions agree with the scorecard's metrics: NPS (0-10) is the percentage of promoters (9-10)
minus that of detractors (0-6), from -100 to 100; CSAT (1-5) the percentage of satisfied answers
(4-5), from 0 to 100; CES (1-7) the mean score. Values, intervals and changes are in those units
(NPS and CSAT in percentage points); :mod:`cxops.stats.inference` works in proportions from 0 to
1, so CSAT is converted here.

Intervals: NPS the adjusted Wald interval with the trinomial variance, CSAT the Wilson interval,
CES the t interval clipped to the scale (one answer gives the whole scale). Changes: the NPS
trinomial z test, the two-proportion z test and Welch's t test.
"""

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from itertools import pairwise

from cxops.stats.inference import (
    Change,
    Interval,
    mean_change,
    mean_interval,
    nps_change,
    nps_interval,
    proportion_change,
    sample_size_means,
    sample_size_nps,
    sample_size_proportions,
    wilson_interval,
)
from cxops.stats.scales import (
    SCALES,
    ScoreCounts,
    SurveyKind,
    count_answers,
    count_satisfied,
    nps_groups,
)


@dataclass(frozen=True, slots=True)
class Score:
    """One kind's score over ``n`` answers, with its confidence interval in the same unit."""

    kind: SurveyKind
    value: float
    n: int
    interval: Interval


@dataclass(frozen=True, slots=True)
class PeriodScore:
    period: str | None
    score: Score | None
    """``None`` when every score cell of the period was empty."""
    skipped: int
    """Rows of this period whose score cell was empty: counted, never silently dropped."""


@dataclass(frozen=True, slots=True)
class PeriodChange:
    before_period: str
    after_period: str
    change: Change


@dataclass(frozen=True, slots=True)
class Series:
    """One segment's scores, period by period, and the change between consecutive periods."""

    segment: str | None
    periods: list[PeriodScore]
    changes: list[PeriodChange]


@dataclass(frozen=True, slots=True)
class Answer:
    """One survey row: its score (``None`` when the cell was empty), segment and period."""

    score: int | None
    segment: str | None = None
    period: str | None = None


def score(kind: SurveyKind, counts: ScoreCounts, *, level: float = 0.95) -> Score:
    """``kind``'s score and interval over the answers counted in ``counts``."""
    n = count_answers(kind, counts)
    if n == 0:
        raise ValueError(f"no {kind.value} answers to score")
    if kind is SurveyKind.NPS:
        promoters, passives, detractors = nps_groups(counts)
        return Score(
            kind,
            100 * (promoters - detractors) / n,
            n,
            nps_interval(promoters, passives, detractors, level),
        )
    if kind is SurveyKind.CSAT:
        satisfied = count_satisfied(counts)
        wilson = wilson_interval(satisfied, n, level)
        return Score(
            kind, 100 * satisfied / n, n, Interval(100 * wilson.low, 100 * wilson.high, level)
        )
    mean, sd = _mean_sd(counts)
    scale = SCALES[kind]
    if n < 2:
        return Score(kind, mean, n, Interval(float(scale.lowest), float(scale.highest), level))
    t = mean_interval(mean, sd, n, level)
    return Score(
        kind,
        mean,
        n,
        Interval(max(float(scale.lowest), t.low), min(float(scale.highest), t.high), level),
    )


def change(
    kind: SurveyKind,
    before: ScoreCounts,
    after: ScoreCounts,
    *,
    alpha: float = 0.05,
    min_n: int = 30,
) -> Change:
    """Whether ``kind``'s score really moved from ``before`` to ``after`` (or from a control
    arm to a treatment arm), by the test that fits it. Both need answers; a CES side with a
    single answer is reported as too small."""
    count_answers(kind, before)
    count_answers(kind, after)
    if kind is SurveyKind.NPS:
        return nps_change(*nps_groups(before), *nps_groups(after), alpha=alpha, min_n=min_n)
    if kind is SurveyKind.CSAT:
        moved = proportion_change(
            count_satisfied(before),
            sum(before.values()),
            count_satisfied(after),
            sum(after.values()),
            alpha=alpha,
            min_n=min_n,
        )
        return _in_percent(moved)
    mean_a, sd_a = _mean_sd(before)
    mean_b, sd_b = _mean_sd(after)
    if min(sum(before.values()), sum(after.values())) < 2:
        return _untestable_mean(kind, mean_a, mean_b, alpha)
    return mean_change(
        mean_a,
        sd_a,
        sum(before.values()),
        mean_b,
        sd_b,
        sum(after.values()),
        alpha=alpha,
        min_n=min_n,
    )


def series(
    kind: SurveyKind,
    answers: Iterable[Answer],
    *,
    alpha: float = 0.05,
    min_n: int = 30,
) -> list[Series]:
    """Scores per segment and period, segments and periods in text order (so periods should
    sort as text: ``2026-01``, ``2026-Q1``), with each consecutive pair's change.

    Intervals are at level ``1 - alpha``. A period whose every score cell was empty has no
    score (``None``), only its ``skipped`` count, and no change to or from it. A CES change with
    one answer on a side is marked too small rather than guessed.
    """
    counts: dict[str | None, dict[str | None, Counter[int]]] = {}
    skipped: Counter[tuple[str | None, str | None]] = Counter()
    for answer in answers:
        group = counts.setdefault(answer.segment, {}).setdefault(answer.period, Counter())
        if answer.score is None:
            skipped[answer.segment, answer.period] += 1
        else:
            group[answer.score] += 1
    result = []
    for segment in sorted(counts, key=_text_order):
        periods = counts[segment]
        order = sorted(periods, key=_text_order)
        result.append(
            Series(
                segment=segment,
                periods=[
                    PeriodScore(
                        period,
                        score(kind, periods[period], level=1 - alpha) if periods[period] else None,
                        skipped[segment, period],
                    )
                    for period in order
                ],
                changes=[
                    PeriodChange(
                        str(before),
                        str(after),
                        change(kind, periods[before], periods[after], alpha=alpha, min_n=min_n),
                    )
                    for before, after in pairwise(order)
                    if periods[before] and periods[after]
                ],
            )
        )
    return result


def _untestable_mean(kind: SurveyKind, before: float, after: float, alpha: float) -> Change:
    """A CES change with one answer on a side: no spread to test against, so too small, with
    nothing narrower than the whole scale detectable."""
    span = float(SCALES[kind].highest - SCALES[kind].lowest)
    return Change(
        before=before,
        after=after,
        difference=after - before,
        interval=Interval(-span, span, 1 - alpha),
        p_value=1.0,
        significant=False,
        minimum_detectable=span,
        too_small=True,
        test="Welch t",
    )


def _text_order(label: str | None) -> str:
    return "" if label is None else label


def _in_percent(moved: Change) -> Change:
    return replace(
        moved,
        before=100 * moved.before,
        after=100 * moved.after,
        difference=100 * moved.difference,
        interval=Interval(
            100 * moved.interval.low, 100 * moved.interval.high, moved.interval.level
        ),
        minimum_detectable=100 * moved.minimum_detectable,
    )


def _mean_sd(counts: ScoreCounts) -> tuple[float, float]:
    """The mean and sample standard deviation (0 for a single answer)."""
    n = sum(counts.values())
    mean = sum(s * k for s, k in counts.items()) / n
    if n < 2:
        return mean, 0.0
    squares = sum(k * (s - mean) ** 2 for s, k in counts.items())
    return mean, math.sqrt(squares / (n - 1))


def needed_per_arm(
    kind: SurveyKind,
    control: ScoreCounts,
    treatment: ScoreCounts,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
) -> int | None:
    """Answers each arm needs for ``kind``'s test to detect the difference the two arms show,
    with probability ``power``: how long an inconclusive experiment must run. ``None`` when the
    arms do not differ (nothing to detect) or CES answers do not vary."""
    n_a, n_b = count_answers(kind, control), count_answers(kind, treatment)
    if n_a == 0 or n_b == 0:
        raise ValueError("both arms need answers")
    if kind is SurveyKind.NPS:
        (pa, _, da), (pb, _, db) = nps_groups(control), nps_groups(treatment)
        if (pa - da) * n_b == (pb - db) * n_a:
            return None
        return sample_size_nps(pa / n_a, da / n_a, pb / n_b, db / n_b, alpha=alpha, power=power)
    if kind is SurveyKind.CSAT:
        p_a, p_b = count_satisfied(control) / n_a, count_satisfied(treatment) / n_b
        if p_a == p_b:
            return None
        return sample_size_proportions(p_a, p_b, alpha=alpha, power=power)
    (mean_a, sd_a), (mean_b, sd_b) = _mean_sd(control), _mean_sd(treatment)
    sd = math.sqrt((sd_a**2 + sd_b**2) / 2)
    if mean_a == mean_b or sd == 0:
        return None
    return sample_size_means(mean_b - mean_a, sd, alpha=alpha, power=power)
