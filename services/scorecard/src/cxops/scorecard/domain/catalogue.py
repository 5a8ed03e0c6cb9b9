"""The metric catalogue: what each scorecard metric is, how it is computed and judged.

A metric is a formula over the facts of a period, a target with a tolerance band on the side of
the target that is worse, a direction, an owner, whether it leads or lags, its perspective of the
balanced scorecard, and the statistical test that fits it (which facts hold the sample behind
the value), so that a move can be told apart from noise.
"""

from dataclasses import dataclass
from enum import StrEnum

from cxops.scorecard.domain.formula import Formula


class Direction(StrEnum):
    HIGHER_IS_BETTER = "higher_is_better"
    LOWER_IS_BETTER = "lower_is_better"


class Indicator(StrEnum):
    LEADING = "leading"
    LAGGING = "lagging"


class Perspective(StrEnum):
    CUSTOMER = "customer"
    OPERATIONAL = "operational"
    FINANCIAL = "financial"
    PEOPLE = "people"


@dataclass(frozen=True, slots=True)
class Tolerance:
    """How far short of target a metric may fall and still be tolerated: an amount in the
    metric's unit, or a percentage of the target."""

    amount: float
    percent: bool = False

    def band(self, target: float) -> float:
        return abs(target) * self.amount / 100 if self.percent else self.amount


@dataclass(frozen=True, slots=True)
class ProportionTest:
    """The value comes from ``successes`` out of ``trials`` (first-contact resolution, CSAT)."""

    successes: str
    trials: str


@dataclass(frozen=True, slots=True)
class MeanTest:
    """The value is a mean (handle time, CES): its mean, standard deviation and sample size."""

    mean: str
    sd: str
    n: str


@dataclass(frozen=True, slots=True)
class NpsTest:
    """The value is a Net Promoter Score from these three counts."""

    promoters: str
    passives: str
    detractors: str


@dataclass(frozen=True, slots=True)
class NoTest:
    """No sample behind the value (revenue, attrition): judged on tolerance alone."""


ChangeTest = ProportionTest | MeanTest | NpsTest | NoTest


def kind_of(test: ChangeTest) -> str:
    match test:
        case ProportionTest():
            return "proportion"
        case MeanTest():
            return "mean"
        case NpsTest():
            return "nps"
    return "none"


def facts_of(test: ChangeTest) -> tuple[str, ...]:
    match test:
        case ProportionTest(successes=successes, trials=trials):
            return (successes, trials)
        case MeanTest(mean=mean, sd=sd, n=n):
            return (mean, sd, n)
        case NpsTest(promoters=promoters, passives=passives, detractors=detractors):
            return (promoters, passives, detractors)
    return ()


@dataclass(frozen=True, slots=True)
class MetricDefinition:
    id: str
    name: str
    formula: Formula
    unit: str
    direction: Direction
    target: float
    tolerance: Tolerance
    owner: str
    indicator: Indicator
    perspective: Perspective
    test: ChangeTest = NoTest()

    def shortfall(self, value: float) -> float:
        """How far ``value`` falls short of target in the worse direction (negative: beyond)."""
        if self.direction is Direction.HIGHER_IS_BETTER:
            return self.target - value
        return value - self.target

    @property
    def band(self) -> float:
        return self.tolerance.band(self.target)
