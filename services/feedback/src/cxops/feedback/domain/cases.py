"""Closed-loop cases: when a response opens one, the states it walks through, and its SLA clocks.

**Rules.** A :class:`CaseRule` is conditions that must all hold for one response; a
:class:`CaseRules` set opens a case when any rule matches (the first match is recorded in the
case's history). The owning team is that of the first response topic with an owner in
``topic_teams``, else ``default_team``. Until a tenant sets its own, :data:`DEFAULT_RULES` open a
case for NPS <= 6, CSAT <= 2 and CES >= 5.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cxops.feedback.domain.sentiment import SentimentLabel
from cxops.stats.scales import SCALES, SurveyKind

#: The team of a case whose topics have no owner: routing's fallback queue has the same name.
DEFAULT_TEAM = "cases"


@dataclass(frozen=True, slots=True)
class ResponseFacts:
    """What the rules look at in one feedback response. A free-text response has no ``kind``
    and no ``score``; one not analysed yet has no sentiment."""

    kind: SurveyKind | None = None
    score: int | None = None
    sentiment: SentimentLabel | None = None
    sentiment_confidence: float | None = None
    topics: Sequence[str] = ()
    tier: str | None = None


@dataclass(frozen=True, slots=True)
class CaseRule:
    """Every condition given must hold. A response has one kind, so a rule takes at most one
    score condition (one with two could never match); a rule with no condition would open a case
    for every response, so it is refused."""

    name: str
    nps_at_most: int | None = None
    csat_at_most: int | None = None
    ces_at_least: int | None = None
    #: Negative sentiment with a confidence strictly above this.
    negative_sentiment_above: float | None = None
    #: Any of the response's topics is one of these.
    topics: frozenset[str] | None = None
    tiers: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("a case rule needs a name")
        scores = {
            SurveyKind.NPS: self.nps_at_most,
            SurveyKind.CSAT: self.csat_at_most,
            SurveyKind.CES: self.ces_at_least,
        }
        given = {kind: limit for kind, limit in scores.items() if limit is not None}
        if len(given) > 1:
            raise ValueError(f"rule {self.name}: more than one score condition ({len(given)})")
        for kind, limit in given.items():
            if not SCALES[kind].contains(limit):
                raise ValueError(f"rule {self.name}: {kind} {limit} is off its scale")
        confidence = self.negative_sentiment_above
        if confidence is not None and not 0 <= confidence < 1:
            raise ValueError(f"rule {self.name}: sentiment confidence {confidence} not in [0, 1)")
        if self.topics is not None and not self.topics:
            raise ValueError(f"rule {self.name}: an empty topic set never matches")
        if self.tiers is not None and not self.tiers:
            raise ValueError(f"rule {self.name}: an empty tier set never matches")
        if not given and confidence is None and self.topics is None and self.tiers is None:
            raise ValueError(f"rule {self.name} has no condition")

    def matches(self, facts: ResponseFacts) -> bool:
        if self.nps_at_most is not None and not _scored(facts, SurveyKind.NPS, self.nps_at_most):
            return False
        if self.csat_at_most is not None and not _scored(facts, SurveyKind.CSAT, self.csat_at_most):
            return False
        if self.ces_at_least is not None and not (
            facts.kind is SurveyKind.CES
            and facts.score is not None
            and facts.score >= self.ces_at_least
        ):
            return False
        if self.negative_sentiment_above is not None and not (
            facts.sentiment is SentimentLabel.NEGATIVE
            and facts.sentiment_confidence is not None
            and facts.sentiment_confidence > self.negative_sentiment_above
        ):
            return False
        if self.topics is not None and self.topics.isdisjoint(facts.topics):
            return False
        return self.tiers is None or facts.tier in self.tiers


def _scored(facts: ResponseFacts, kind: SurveyKind, at_most: int) -> bool:
    return facts.kind is kind and facts.score is not None and facts.score <= at_most


DEFAULT_RULES: tuple[CaseRule, ...] = (
    CaseRule("nps-detractor", nps_at_most=6),
    CaseRule("csat-dissatisfied", csat_at_most=2),
    CaseRule("ces-high-effort", ces_at_least=5),
)


@dataclass(frozen=True, slots=True)
class CaseRules:
    """A tenant's setting. Rules are tried in order; the first that matches is the one
    recorded."""

    rules: tuple[CaseRule, ...] = DEFAULT_RULES
    #: Topic -> owning team (the taxonomy's ``owner`` fields).
    topic_teams: Mapping[str, str] = field(default_factory=dict)
    default_team: str = DEFAULT_TEAM

    def __post_init__(self) -> None:
        names = [rule.name for rule in self.rules]
        if len(set(names)) != len(names):
            raise ValueError("case rule names repeat: the history could not tell them apart")
        if not self.default_team.strip():
            raise ValueError("the default team is blank")


@dataclass(frozen=True, slots=True)
class CaseDecision:
    """Whether a case opens and, if it does, the rule that matched, the owning team and the
    topic that named it (``None``: no topic has an owner, the default team takes the case)."""

    opens: bool
    rule: str | None = None
    team: str | None = None
    topic: str | None = None


def evaluate(facts: ResponseFacts, rules: CaseRules) -> CaseDecision:
    matched = next((rule for rule in rules.rules if rule.matches(facts)), None)
    if matched is None:
        return CaseDecision(opens=False)
    owned = next((topic for topic in facts.topics if topic in rules.topic_teams), None)
    if owned is None:
        return CaseDecision(opens=True, rule=matched.name, team=rules.default_team)
    return CaseDecision(opens=True, rule=matched.name, team=rules.topic_teams[owned], topic=owned)
