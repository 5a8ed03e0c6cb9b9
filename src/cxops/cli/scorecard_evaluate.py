"""``cxops scorecard evaluate``: a balanced scorecard's composite, statuses, real variances and
the action plans they require."""

import json
import math
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any

import typer

from cxops.cli.json_input import read_json
from cxops.scorecard.domain.action_plans import PlanCheck, PlanState
from cxops.scorecard.domain.composite import Composite
from cxops.scorecard.domain.scorecard import (
    Comparison,
    Evaluation,
    LeadLagResult,
    MetricResult,
    Scorecard,
    evaluate_scorecard,
)
from cxops.scorecard.formats import ScorecardFileError, load_scorecard


def evaluate_command(
    scorecard_file: Annotated[
        str,
        typer.Argument(
            metavar="SCORECARD.json",
            help="Scorecard (see services/scorecard/README.md), or - for stdin.",
        ),
    ],
    period: Annotated[
        str | None,
        typer.Option(help="Period to evaluate (file: evaluate_period, else the last)."),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", metavar="DATE", help="Day plans are due against (default: today, UTC)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Evaluate a balanced scorecard for one period.

    The composite and each metric's value, status, score and weight (those in force then);
    the change from the previous period and whether it is statistically real; the variances
    and the action plans they require; how well leading metrics predicted lagging ones."""
    scorecard, evaluated = _read_scorecard(scorecard_file)
    try:
        today = date.fromisoformat(as_of) if as_of else datetime.now(UTC).date()
    except ValueError:
        raise typer.BadParameter(
            f"{as_of!r} is not a date (YYYY-MM-DD)", param_hint="--as-of"
        ) from None
    try:
        evaluation = evaluate_scorecard(scorecard, period=period or evaluated, as_of=today)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--period") from exc
    result = _result(scorecard, evaluation)
    if as_json:
        typer.echo(json.dumps(result))
    else:
        _print_summary(result, typer.echo)


def _read_scorecard(scorecard_file: str) -> tuple[Scorecard, str]:
    data = read_json(scorecard_file)
    try:
        return load_scorecard(data)
    except ScorecardFileError as exc:
        places = "\n".join(f"  {place}: {message}" for place, message in exc.problems)
        raise typer.BadParameter(f"{scorecard_file} is not a valid scorecard:\n{places}") from exc


def _result(scorecard: Scorecard, evaluation: Evaluation) -> dict[str, Any]:
    metrics = [_metric(result) for result in evaluation.metrics]
    return {
        "scorecard": scorecard.name,
        "period": evaluation.period.id,
        "period_start": evaluation.period.start.isoformat(),
        "as_of": evaluation.as_of.isoformat(),
        "weights_effective_from": evaluation.weights.effective_from.isoformat(),
        **_composite(evaluation.composite),
        "perspectives": {
            str(perspective): _composite(composite)
            for perspective, composite in evaluation.perspectives.items()
        },
        "metrics": metrics,
        "variances": [
            {
                "metric": row["id"],
                "owner": row["owner"],
                "value": row["value"],
                "target": row["target"],
                "note": row["variance_note"],
                "action_plan": row["action_plan"],
            }
            for row in metrics
            if row["variance"]
        ],
        "history": [
            {
                "period": point.period,
                "weights_effective_from": None
                if point.weights_from is None
                else point.weights_from.isoformat(),
                **_composite(point.composite),
            }
            for point in evaluation.history
        ],
        "leading_lagging": [_lead_lag(result) for result in evaluation.lead_lag],
        "calibration": list(evaluation.calibration),
    }


def _composite(composite: Composite) -> dict[str, Any]:
    return {"composite": _number(composite.value), "coverage": _number(composite.coverage)}


def _metric(result: MetricResult) -> dict[str, Any]:
    metric = result.metric
    return {
        "id": metric.id,
        "name": metric.name,
        "perspective": str(metric.perspective),
        "indicator": str(metric.indicator),
        "owner": metric.owner,
        "unit": metric.unit,
        "direction": str(metric.direction),
        "value": _number(result.outcome.value),
        "no_value_reason": result.outcome.reason,
        "target": metric.target,
        "tolerance": _number(metric.band),
        "status": str(result.status),
        "score": _number(result.score),
        "weight": result.weight,
        "change": _comparison(result.change),
        "variance": result.verdict.variance,
        "variance_note": result.verdict.note,
        "variance_reference": _comparison(result.reference),
        "action_plan": _plan(result.plan),
    }


def _comparison(comparison: Comparison | None) -> dict[str, Any] | None:
    if comparison is None:
        return None
    row: dict[str, Any] = {"period": comparison.period, "value": _number(comparison.value)}
    change = comparison.check.change
    if change is None:
        return row | {"test": None, "reason": comparison.check.reason}
    return row | {
        "test": change.test,
        "before": _number(change.before),
        "after": _number(change.after),
        "difference": _number(change.difference),
        "interval": {
            "low": _number(change.interval.low),
            "high": _number(change.interval.high),
            "level": change.interval.level,
        },
        "p_value": _p_value(change.p_value),
        "significant": change.significant,
        "too_small": change.too_small,
        "minimum_detectable": _number(change.minimum_detectable),
        "reason": None,
    }


def _plan(check: PlanCheck | None) -> dict[str, Any] | None:
    if check is None:
        return None
    plan = check.plan
    return {
        "state": str(check.state),
        "owner": None if plan is None else plan.owner,
        "due": None if plan is None else plan.due.isoformat(),
        "overdue": check.state is PlanState.OVERDUE,
        "description": None if plan is None else plan.description,
        "note": check.note,
    }


def _lead_lag(result: LeadLagResult) -> dict[str, Any]:
    best = result.correlation.best
    return {
        "leading": result.leading,
        "lagging": result.lagging,
        "lags": [
            {"lag": c.lag, "n": c.n, "r": _number(c.r), "p_value": _p_value(c.p_value)}
            for c in result.correlation.lags
        ],
        "best_lag": None if best is None else best.lag,
        "best_r": None if best is None else _number(best.r),
        "too_few_periods": result.correlation.too_few_periods,
        "predictive": result.predictive,
        "note": result.note,
    }


def _number(value: float | None) -> float | None:
    """Rounded to 6 places; ``None`` for no value."""
    if value is None or not math.isfinite(value):
        return None
    return round(value, 6)


def _p_value(value: float | None) -> float | None:
    """To 3 significant digits: a p-value of 2e-09 is not 0."""
    return None if value is None else float(f"{value:.3g}")


def _print_summary(result: dict[str, Any], echo: Callable[[str], None]) -> None:
    composite = result["composite"]
    echo(
        f"{result['scorecard']}, {result['period']}: composite "
        f"{'-' if composite is None else f'{composite:.1f}'} / 100"
        f" (coverage {result['coverage']:.0%}, weights from {result['weights_effective_from']})"
    )
    echo(
        f"{'metric':<24}{'value':>10}{'target':>10}{'score':>7}{'weight':>8}"
        f"  {'status':<18}variance"
    )
    for row in result["metrics"]:
        value = "-" if row["value"] is None else f"{row['value']:.2f}"
        score = "-" if row["score"] is None else f"{row['score']:.0f}"
        verdict = "VARIANCE" if row["variance"] else (row["variance_note"] or "")
        echo(
            f"{row['id']:<24}{value:>10}{row['target']:>10g}{score:>7}{row['weight']:>8.2f}"
            f"  {row['status']:<18}{verdict}"
        )
        if row["no_value_reason"]:
            echo(f"{'':<24}no value: {row['no_value_reason']}")
    for variance in result["variances"]:
        echo(f"variance {variance['metric']}: {variance['note']}")
        echo(f"  action plan: {variance['action_plan']['note']}")
    for note in result["calibration"]:
        echo(f"calibration: {note}")
