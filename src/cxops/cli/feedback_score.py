"""``cxops feedback score`` and ``cxops feedback experiment``: survey scores with honest error
bars from a CSV file, whether they moved between periods, and whether an intervention worked.

Rows are numbered from 1 over the data rows (the header not counted). A row with an empty score
cell is counted as skipped and reported, never dropped silently; any other bad cell (a score
that is not a whole number or is off the scale, an empty period, segment or arm) stops the run
with exit code 2, the row and column named on stderr and nothing on stdout.
"""

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from cxops.feedback.domain.scores import (
    Answer,
    Score,
    Series,
    change,
    needed_per_arm,
    score,
    series,
)
from cxops.feedback.formats import AnswerColumns, InputError, read_answers
from cxops.stats.inference import Change, Interval
from cxops.stats.scales import SurveyKind

UNITS = {
    SurveyKind.NPS: "NPS points, -100 to 100",
    SurveyKind.CSAT: "percent satisfied (4-5), 0 to 100",
    SurveyKind.CES: "mean score, 1 to 7",
}

Echo = Callable[[str], None]

FileArgument = Annotated[
    Path,
    typer.Argument(
        metavar="FILE.csv",
        help="Survey answers, one row each, with a header row.",
        exists=True,
        dir_okay=False,
    ),
]
KindOption = Annotated[
    SurveyKind, typer.Option("--kind", case_sensitive=False, help="The survey's kind.")
]
ScoreColumn = Annotated[str, typer.Option(help="Column of the score.")]
AlphaOption = Annotated[
    float,
    typer.Option(min=0.001, max=0.5, help="Significance level; intervals are at 1 - alpha (0.95)."),
]
MinNOption = Annotated[
    int,
    typer.Option(
        "--min-n", min=2, help="Answers a side needs before a change can count as significant."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def score_command(
    file: FileArgument,
    kind: KindOption,
    score_column: ScoreColumn = "score",
    period_column: Annotated[
        str | None,
        typer.Option(
            help="Column of the period (e.g. 2026-01): periods are compared in text order."
        ),
    ] = None,
    segment_column: Annotated[
        str | None, typer.Option(help="Column of the segment: one series of periods for each.")
    ] = None,
    alpha: AlphaOption = 0.05,
    min_n: MinNOption = 30,
    as_json: JsonOption = False,
) -> None:
    """Score a survey: value, answers and confidence interval per segment and period, and for
    consecutive periods the change, its p-value and whether it is significant.

    Segments or periods with fewer than --min-n answers are reported as too small to judge."""
    answers = _read_answers(
        file,
        kind=kind,
        columns=AnswerColumns(score=score_column, segment=segment_column, group=period_column),
    )
    try:
        result = series(kind, answers, alpha=alpha, min_n=min_n)
    except ValueError as exc:
        raise typer.BadParameter(f"{file.name}: {exc}") from exc
    report = {
        "kind": kind.value,
        "unit": UNITS[kind],
        "alpha": alpha,
        "min_n": min_n,
        "rows": len(answers),
        "skipped": sum(1 for answer in answers if answer.score is None),
        "series": [_series_json(one) for one in result],
    }
    if as_json:
        typer.echo(json.dumps(report))
    else:
        _print_scores(report, typer.echo)


def experiment_command(
    file: FileArgument,
    kind: KindOption,
    arm_column: Annotated[str, typer.Option(help="Column naming each answer's arm.")] = "arm",
    control: Annotated[
        str | None,
        typer.Option(help="The control arm's name; by default the first arm in text order."),
    ] = None,
    score_column: ScoreColumn = "score",
    alpha: AlphaOption = 0.05,
    min_n: MinNOption = 30,
    power: Annotated[
        float, typer.Option(min=0.5, max=0.99, help="Power for the answers-needed estimate.")
    ] = 0.8,
    as_json: JsonOption = False,
) -> None:
    """Compare the two arms of an experiment (a new script, a new routing rule): each arm's
    score, the difference treatment minus control with its interval and p-value, and the
    answers per arm needed to detect that difference with --power."""
    answers = _read_answers(
        file, kind=kind, columns=AnswerColumns(score=score_column, group=arm_column)
    )
    arms = sorted({answer.period for answer in answers if answer.period is not None})
    if len(arms) != 2:
        raise typer.BadParameter(
            f"{file.name}: column {arm_column!r} must name exactly two arms, not {len(arms)}: "
            + ", ".join(map(repr, arms))
        )
    if control is not None and control not in arms:
        raise typer.BadParameter(f"{file.name}: no arm {control!r} in column {arm_column!r}")
    control_arm = control if control is not None else arms[0]
    treatment_arm = arms[1] if control_arm == arms[0] else arms[0]
    counts = {arm: Counter[int]() for arm in arms}
    skipped = Counter[str]()
    for answer in answers:
        assert answer.period is not None
        if answer.score is None:
            skipped[answer.period] += 1
        else:
            counts[answer.period][answer.score] += 1
    empty = [arm for arm in arms if not counts[arm]]
    if empty:
        raise typer.BadParameter(f"{file.name}: arm {empty[0]!r} has no scores")
    a, b = counts[control_arm], counts[treatment_arm]
    report = {
        "kind": kind.value,
        "unit": UNITS[kind],
        "alpha": alpha,
        "min_n": min_n,
        "power": power,
        "control": control_arm,
        "treatment": treatment_arm,
        "rows": len(answers),
        "skipped": sum(skipped.values()),
        "arms": [
            {
                "arm": arm,
                **_score_json(score(kind, counts[arm], level=1 - alpha)),
                "skipped": skipped[arm],
            }
            for arm in (control_arm, treatment_arm)
        ],
        "difference": _change_json(change(kind, a, b, alpha=alpha, min_n=min_n)),
        "needed_per_arm": needed_per_arm(kind, a, b, alpha=alpha, power=power),
    }
    if as_json:
        typer.echo(json.dumps(report))
    else:
        _print_experiment(report, typer.echo)


def _read_answers(file: Path, *, kind: SurveyKind, columns: AnswerColumns) -> list[Answer]:
    try:
        return read_answers(file, kind=kind, columns=columns)
    except InputError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _interval_json(interval: Interval) -> dict[str, float]:
    return {"low": interval.low, "high": interval.high, "level": interval.level}


def _score_json(result: Score | None) -> dict[str, Any]:
    if result is None:
        return {"value": None, "n": 0, "interval": None}
    return {"value": result.value, "n": result.n, "interval": _interval_json(result.interval)}


def _change_json(moved: Change) -> dict[str, Any]:
    return {
        "before": moved.before,
        "after": moved.after,
        "difference": moved.difference,
        "interval": _interval_json(moved.interval),
        "p_value": moved.p_value,
        "significant": moved.significant,
        "minimum_detectable": moved.minimum_detectable,
        "too_small": moved.too_small,
        "test": moved.test,
    }


def _series_json(one: Series) -> dict[str, Any]:
    return {
        "segment": one.segment,
        "periods": [
            {"period": point.period, **_score_json(point.score), "skipped": point.skipped}
            for point in one.periods
        ],
        "changes": [
            {"from": step.before_period, "to": step.after_period, **_change_json(step.change)}
            for step in one.changes
        ],
    }


def _print_scores(report: dict[str, Any], echo: Echo) -> None:
    level = 1 - report["alpha"]
    echo(
        f"{report['kind'].upper()} ({report['unit']}), {report['rows']:,} rows, "
        f"{report['skipped']:,} skipped (empty score); {level:.0%} intervals"
    )
    for one in report["series"]:
        if one["segment"] is not None:
            echo(f"\nsegment {one['segment']}")
        echo(f"  {'period':<16}{'value':>9}  {'interval':<20}{'n':>8}{'skipped':>9}")
        for point in one["periods"]:
            echo(
                f"  {point['period'] or 'all':<16}{_number(point['value']):>9}  "
                f"{_span(point['interval']):<20}{point['n']:>8,}{point['skipped']:>9,}"
            )
        for step in one["changes"]:
            echo(f"  {step['from']} -> {step['to']}: {_verdict(step, report['min_n'])}")


def _print_experiment(report: dict[str, Any], echo: Echo) -> None:
    echo(
        f"{report['kind'].upper()} ({report['unit']}): {report['treatment']} against control "
        f"{report['control']}, {report['rows']:,} rows, {report['skipped']:,} skipped"
    )
    for arm in report["arms"]:
        echo(
            f"  {arm['arm']:<16}{_number(arm['value']):>9}  {_span(arm['interval']):<20}"
            f"{arm['n']:>8,} answers"
        )
    echo(f"  difference: {_verdict(report['difference'], report['min_n'])}")
    needed = report["needed_per_arm"]
    if needed is not None:
        echo(
            f"  {needed:,} answers per arm would detect this difference with power "
            f"{report['power']:.0%}"
        )


def _verdict(step: dict[str, Any], min_n: int) -> str:
    figures = (
        f"{step['difference']:+.2f} {_span(step['interval'])}, p = {step['p_value']:.3g}, "
        f"detectable {step['minimum_detectable']:.2f} ({step['test']})"
    )
    if step["too_small"]:
        return f"too small to judge (under {min_n} answers a side): {figures}"
    return f"{'significant' if step['significant'] else 'not significant'}: {figures}"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _span(interval: dict[str, float] | None) -> str:
    return "-" if interval is None else f"[{interval['low']:.2f}, {interval['high']:.2f}]"
