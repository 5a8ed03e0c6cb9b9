"""How far the model agrees with the people who review its work: what a monthly calibration
session works from.

A reviewer's label says what a response's sentiment is and which topics it is about. Each label
is held against what the model said when the response was enriched:

- **Sentiment** is one three-way judgement per response: accuracy, Cohen's kappa (agreement
  beyond what the two label mixes would reach by chance) with its large-sample interval, and the
  confusion (model's label by reviewer's label). A response the model gave no sentiment (text
  that is not English) is counted apart, not as a disagreement.
- **Each topic** is a yes/no judgement per labelled response: the model tagged it or not, the
  reviewer kept it or not. Accuracy and kappa as above, and the two ways to disagree: the
  rules tagged it and the reviewer removed it (``model_only``), or the rules missed it
  (``reviewer_only``).
  The topics whose rules most often disagree come first in :attr:`Calibration.disagreeing`.

Kappa's interval uses the asymptotic variance of Fleiss, Cohen and Everitt (1969), which holds
for any number of categories; it is cut to [-1, 1]. Kappa is undefined (None) when chance alone
would agree on every response (both raters always used the same single category).
"""

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from cxops.feedback.domain.sentiment import SentimentLabel
from cxops.stats.inference import Interval, normal_quantile

#: Sentiment labels in the order the confusion lists them.
SENTIMENT_LABELS: tuple[SentimentLabel, ...] = (
    SentimentLabel.NEGATIVE,
    SentimentLabel.NEUTRAL,
    SentimentLabel.POSITIVE,
)


@dataclass(frozen=True, slots=True)
class LabelPair:
    """One reviewed response: the model's reading when enriched, and the reviewer's."""

    model_sentiment: SentimentLabel | None
    reviewer_sentiment: SentimentLabel | None
    model_topics: frozenset[str]
    reviewer_topics: frozenset[str]


@dataclass(frozen=True, slots=True)
class Agreement:
    n: int
    accuracy: float | None
    kappa: float | None
    kappa_interval: Interval | None


@dataclass(frozen=True, slots=True)
class TopicAgreement:
    topic: str
    agreement: Agreement
    both: int
    model_only: int
    """Tagged by the rules, removed by the reviewer: a false positive of the rules."""
    reviewer_only: int
    """Added by the reviewer: the rules missed it."""
    neither: int

    @property
    def disagreements(self) -> int:
        return self.model_only + self.reviewer_only


@dataclass(frozen=True, slots=True)
class Calibration:
    labelled: int
    sentiment: Agreement
    #: ``confusion[model][reviewer]``, every label of :data:`SENTIMENT_LABELS` on both sides.
    sentiment_confusion: Mapping[SentimentLabel, Mapping[SentimentLabel, int]]
    #: Labelled responses the model gave no sentiment, or the reviewer gave none.
    sentiment_unpaired: int
    topics: tuple[TopicAgreement, ...]
    """Every topic either side used, by name."""
    disagreeing: tuple[TopicAgreement, ...]
    """Topics with at least one disagreement, most disagreements first."""


def agreement(
    pairs: Iterable[tuple[str, str]], categories: Sequence[str], level: float = 0.95
) -> Agreement:
    """Accuracy and Cohen's kappa, with its ``level`` interval, of paired judgements
    ``(first rater, second rater)`` over ``categories``."""
    cells = Counter(pairs)
    n = sum(cells.values())
    if n == 0:
        return Agreement(n=0, accuracy=None, kappa=None, kappa_interval=None)
    p = {(a, b): cells[(a, b)] / n for a in categories for b in categories}
    rows = {a: sum(p[(a, b)] for b in categories) for a in categories}
    cols = {b: sum(p[(a, b)] for a in categories) for b in categories}
    observed = sum(p[(c, c)] for c in categories)
    chance = sum(rows[c] * cols[c] for c in categories)
    if math.isclose(chance, 1.0):
        return Agreement(n=n, accuracy=observed, kappa=None, kappa_interval=None)
    kappa = (observed - chance) / (1 - chance)
    on_diagonal = sum(p[(c, c)] * (1 - (rows[c] + cols[c]) * (1 - kappa)) ** 2 for c in categories)
    off_diagonal = (1 - kappa) ** 2 * sum(
        p[(a, b)] * (cols[a] + rows[b]) ** 2 for a in categories for b in categories if a != b
    )
    correction = (kappa - chance * (1 - kappa)) ** 2
    variance = max(on_diagonal + off_diagonal - correction, 0.0) / (n * (1 - chance) ** 2)
    half = normal_quantile(0.5 + level / 2) * math.sqrt(variance)
    return Agreement(
        n=n,
        accuracy=observed,
        kappa=kappa,
        kappa_interval=Interval(max(-1.0, kappa - half), min(1.0, kappa + half), level),
    )


def calibrate(pairs: Sequence[LabelPair], level: float = 0.95) -> Calibration:
    """The calibration figures of ``pairs``, one per reviewed response."""
    sentiment_pairs = [
        (pair.model_sentiment.value, pair.reviewer_sentiment.value)
        for pair in pairs
        if pair.model_sentiment is not None and pair.reviewer_sentiment is not None
    ]
    labels = [label.value for label in SENTIMENT_LABELS]
    counted = Counter(sentiment_pairs)
    confusion = {
        model: {reviewer: counted[(model.value, reviewer.value)] for reviewer in SENTIMENT_LABELS}
        for model in SENTIMENT_LABELS
    }
    names = sorted({topic for pair in pairs for topic in pair.model_topics | pair.reviewer_topics})
    topics = tuple(_topic_agreement(name, pairs, level) for name in names)
    disagreeing = sorted(
        (topic for topic in topics if topic.disagreements),
        key=lambda topic: (-topic.disagreements, topic.topic),
    )
    return Calibration(
        labelled=len(pairs),
        sentiment=agreement(sentiment_pairs, labels, level),
        sentiment_confusion=confusion,
        sentiment_unpaired=len(pairs) - len(sentiment_pairs),
        topics=topics,
        disagreeing=tuple(disagreeing),
    )


def _topic_agreement(name: str, pairs: Sequence[LabelPair], level: float) -> TopicAgreement:
    judged = [
        (_yes(name in pair.model_topics), _yes(name in pair.reviewer_topics)) for pair in pairs
    ]
    cells = Counter(judged)
    return TopicAgreement(
        topic=name,
        agreement=agreement(judged, ("yes", "no"), level),
        both=cells[("yes", "yes")],
        model_only=cells[("yes", "no")],
        reviewer_only=cells[("no", "yes")],
        neither=cells[("no", "no")],
    )


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
