"""The formats scorecard reads: the scorecard file (``SCORECARD.json`` of ``cxops scorecard
evaluate``, and later the body of the scorecard API), validated into
:class:`cxops.scorecard.domain.scorecard.Scorecard`. The format is described in the service's
README.

Validation is all-or-nothing and names every problem's place the way a user finds it in the file
(``weights[1].weights.fcr``); nothing is evaluated until the whole file is valid. The models
refuse unknown fields, so one can be an API's request body as it stands.
"""

from collections.abc import Iterator, Mapping
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cxops.scorecard.domain.action_plans import ActionPlan, PlanStatus
from cxops.scorecard.domain.catalogue import (
    ChangeTest,
    Direction,
    Indicator,
    MeanTest,
    MetricDefinition,
    NoTest,
    NpsTest,
    Perspective,
    ProportionTest,
    Tolerance,
)
from cxops.scorecard.domain.formula import Formula, FormulaError, parse_formula
from cxops.scorecard.domain.scorecard import Period, Scorecard
from cxops.scorecard.domain.weights import SUM_TOLERANCE, WeightVersion, effective_on, sums_to_one

Name = Annotated[str, Field(min_length=1)]
Number = Annotated[float, Field(allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]

#: The facts each kind of test reads, in the order its fields are listed.
TEST_FIELDS: Mapping[str, tuple[str, ...]] = {
    "proportion": ("successes", "trials"),
    "mean": ("mean", "sd", "n"),
    "nps": ("promoters", "passives", "detractors"),
    "none": (),
}


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ToleranceSpec(_Spec):
    absolute: NonNegative | None = None
    percent: NonNegative | None = None


class ChangeTestSpec(_Spec):
    """The change test and the facts that hold its sample; only the kind's own fields."""

    kind: Literal["proportion", "mean", "nps", "none"]
    successes: Name | None = None
    trials: Name | None = None
    mean: Name | None = None
    sd: Name | None = None
    n: Name | None = None
    promoters: Name | None = None
    passives: Name | None = None
    detractors: Name | None = None

    def facts(self) -> dict[str, str]:
        return {field: getattr(self, field) for field in TEST_FIELDS[self.kind]}


class MetricSpec(_Spec):
    id: Name
    name: Name | None = None
    formula: Name
    unit: str = ""
    direction: Direction
    target: Number
    tolerance: ToleranceSpec
    owner: Name
    indicator: Indicator
    perspective: Perspective
    test: ChangeTestSpec = ChangeTestSpec(kind="none")


class WeightVersionSpec(_Spec):
    effective_from: date
    weights: dict[Name, NonNegative] = Field(min_length=1)


class PeriodSpec(_Spec):
    id: Name
    start: date
    facts: dict[Name, Number]


class PairSpec(_Spec):
    leading: Name
    lagging: Name


class ActionPlanSpec(_Spec):
    metric: Name
    owner: Name
    due: date
    description: Name
    status: PlanStatus = PlanStatus.OPEN


class ScorecardSpec(_Spec):
    name: Name = "scorecard"
    metrics: list[MetricSpec] = Field(min_length=1)
    weights: list[WeightVersionSpec] = Field(min_length=1)
    periods: list[PeriodSpec] = Field(min_length=1)
    evaluate_period: Name | None = None
    pairs: list[PairSpec] = []
    action_plans: list[ActionPlanSpec] = []
    max_lag: int = Field(3, ge=0, le=24)
    alpha: float = Field(0.05, gt=0, lt=1)
    min_n: int = Field(30, ge=1)

    def problems(self, formulas: Mapping[int, Formula]) -> Iterator[tuple[str, str]]:
        """What the types alone cannot say; ``formulas`` are the metrics' that parsed."""
        yield from self._metric_problems(formulas)
        yield from self._weight_problems()
        yield from self._period_problems()
        yield from self._reference_problems()

    def _metric_problems(self, formulas: Mapping[int, Formula]) -> Iterator[tuple[str, str]]:
        recorded = {fact for period in self.periods for fact in period.facts}
        seen: set[str] = set()
        for index, metric in enumerate(self.metrics):
            place = f"metrics[{index}]"
            if metric.id in seen:
                yield f"{place}.id", f"metric {metric.id!r} is already declared"
            seen.add(metric.id)
            given = [
                key for key in ("absolute", "percent") if getattr(metric.tolerance, key) is not None
            ]
            if len(given) != 1:
                yield f"{place}.tolerance", "give exactly one of absolute or percent"
            elif given == ["percent"] and metric.target == 0:
                yield f"{place}.tolerance", "a percentage of a target of 0 is no band"
            formula = formulas.get(index)
            for fact in sorted(formula.facts - recorded if formula else ()):
                yield f"{place}.formula", f"unknown fact {fact!r}: no period records it"
            for field in _unexpected_test_fields(metric.test):
                yield f"{place}.test.{field}", f"not a field of a {metric.test.kind} test"
            for field, fact in metric.test.facts().items():
                if fact is None:
                    yield f"{place}.test.{field}", f"a {metric.test.kind} test needs this fact"
                elif fact not in recorded:
                    yield f"{place}.test.{field}", f"unknown fact {fact!r}: no period records it"

    def _weight_problems(self) -> Iterator[tuple[str, str]]:
        ids = {metric.id for metric in self.metrics}
        for index, version in enumerate(self.weights):
            place = f"weights[{index}]"
            if index and version.effective_from <= self.weights[index - 1].effective_from:
                yield (
                    f"{place}.effective_from",
                    f"{version.effective_from.isoformat()} does not come after weights"
                    f"[{index - 1}]'s {self.weights[index - 1].effective_from.isoformat()}: "
                    "versions must be in order, one per effective date",
                )
            for metric in version.weights:
                if metric not in ids:
                    yield f"{place}.weights.{metric}", f"no metric is named {metric!r}"
            if not sums_to_one(version.weights):
                total = sum(version.weights.values())
                yield (
                    f"{place}.weights",
                    f"weights sum to {total:g}, not 1 (within {SUM_TOLERANCE:g})",
                )

    def _period_problems(self) -> Iterator[tuple[str, str]]:
        seen: set[str] = set()
        for index, period in enumerate(self.periods):
            if period.id in seen:
                yield f"periods[{index}].id", f"period {period.id!r} is already declared"
            seen.add(period.id)
            if index and period.start <= self.periods[index - 1].start:
                yield (
                    f"periods[{index}].start",
                    f"{period.start.isoformat()} does not come after periods[{index - 1}]'s "
                    f"{self.periods[index - 1].start.isoformat()}: periods must be in order",
                )
        evaluated = self.evaluated()
        if evaluated is None:
            yield "evaluate_period", f"no period is named {self.evaluate_period!r}"
            return
        versions = [WeightVersion(v.effective_from, v.weights) for v in self.weights]
        if effective_on(versions, evaluated.start) is None:
            yield (
                "evaluate_period",
                f"no weights are in force on {evaluated.start.isoformat()}, the start of "
                f"{evaluated.id!r} (the first version starts {versions[0].effective_from})",
            )

    def _reference_problems(self) -> Iterator[tuple[str, str]]:
        indicators = {metric.id: metric.indicator for metric in self.metrics}
        for index, pair in enumerate(self.pairs):
            for role in ("leading", "lagging"):
                metric = getattr(pair, role)
                if metric not in indicators:
                    yield f"pairs[{index}].{role}", f"no metric is named {metric!r}"
                elif indicators[metric] != role:
                    yield f"pairs[{index}].{role}", f"{metric!r} is a {indicators[metric]} metric"
        for index, plan in enumerate(self.action_plans):
            if plan.metric not in indicators:
                yield f"action_plans[{index}].metric", f"no metric is named {plan.metric!r}"

    def evaluated(self) -> PeriodSpec | None:
        if self.evaluate_period is None:
            return self.periods[-1]
        return next((p for p in self.periods if p.id == self.evaluate_period), None)


class ScorecardFileError(ValueError):
    """Every problem of a scorecard file, each as (place, message)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{place}: {message}" for place, message in problems))


def load_scorecard(data: object) -> tuple[Scorecard, str]:
    """Validate decoded JSON into a scorecard and the id of the period to evaluate, or raise
    :class:`ScorecardFileError`."""
    try:
        spec = ScorecardSpec.model_validate(data)
    except ValidationError as exc:
        raise ScorecardFileError([_problem(error) for error in exc.errors()]) from None
    formulas: dict[int, Formula] = {}
    problems = []
    for index, metric in enumerate(spec.metrics):
        try:
            formulas[index] = parse_formula(metric.formula)
        except FormulaError as exc:
            problems.append((f"metrics[{index}].formula", str(exc)))
    problems += spec.problems(formulas)
    evaluated = spec.evaluated()
    if problems or evaluated is None:
        raise ScorecardFileError(problems)
    scorecard = Scorecard(
        name=spec.name,
        metrics=tuple(_metric(m, formulas[i]) for i, m in enumerate(spec.metrics)),
        weights=tuple(WeightVersion(v.effective_from, dict(v.weights)) for v in spec.weights),
        periods=tuple(Period(p.id, p.start, dict(p.facts)) for p in spec.periods),
        action_plans=tuple(
            ActionPlan(p.metric, p.owner, p.due, p.description, p.status) for p in spec.action_plans
        ),
        pairs=tuple((pair.leading, pair.lagging) for pair in spec.pairs),
        max_lag=spec.max_lag,
        alpha=spec.alpha,
        min_n=spec.min_n,
    )
    return scorecard, evaluated.id


def _metric(spec: MetricSpec, formula: Formula) -> MetricDefinition:
    tolerance = (
        Tolerance(spec.tolerance.percent, percent=True)
        if spec.tolerance.percent is not None
        else Tolerance(spec.tolerance.absolute or 0.0)
    )
    return MetricDefinition(
        id=spec.id,
        name=spec.name or spec.id,
        formula=formula,
        unit=spec.unit,
        direction=spec.direction,
        target=spec.target,
        tolerance=tolerance,
        owner=spec.owner,
        indicator=spec.indicator,
        perspective=spec.perspective,
        test=_test(spec.test),
    )


def _test(spec: ChangeTestSpec) -> ChangeTest:
    facts = spec.facts()
    match spec.kind:
        case "proportion":
            return ProportionTest(**facts)
        case "mean":
            return MeanTest(**facts)
        case "nps":
            return NpsTest(**facts)
    return NoTest()


def _unexpected_test_fields(spec: ChangeTestSpec) -> list[str]:
    own = set(TEST_FIELDS[spec.kind]) | {"kind"}
    return [field for field in spec.model_fields_set if field not in own]


def _problem(error: Mapping[str, Any]) -> tuple[str, str]:
    place = ""
    for part in error["loc"]:
        place += f"[{part}]" if isinstance(part, int) else (f".{part}" if place else str(part))
    return place or "scorecard", error["msg"]
