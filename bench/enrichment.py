"""Verbatim enrichment: speed on one core and sentiment quality against plain VADER.

Speed: the whole enrichment of one verbatim (redaction, language, sentiment, topics with their
own sentiment, review flags) against plain VADER's ``polarity_scores`` alone, on the same texts
in the same run (the labelled set, cycled). Goal: at least 5,000 verbatims a second.

Quality: the hand-written labelled set ``bench/data/verbatims.csv`` (text, label, split). Its
``split`` column says how each row was used: ``tune`` rows were read while writing the rules,
``check`` rows were looked at once, after the first round of rules, ``fresh`` rows were written
afterwards and never used to tune. ``bench/data/verbatims_holdout.csv`` (text, label) was
written by someone else who never saw the rules, the labelled set or its tests, and is never
used to tune: the honest estimate for unseen text. For each: accuracy on positive against
negative (rows labelled positive or negative, decided by the sign of the score; a score of
exactly 0 counts as wrong), accuracy and macro-F1 on three classes, and F1 per class; plain
VADER uses its standard thresholds (compound >= 0.05 positive, <= -0.05 negative). Goals: at
least 85% positive against negative, macro-F1 at least 0.75.

    uv run python bench/enrichment.py
    uv run python bench/enrichment.py --verbatims 50000
"""

import argparse
import csv
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from cxops.feedback.domain.enrichment import Enricher

LABELLED = Path(__file__).resolve().parent / "data" / "verbatims.csv"
HOLDOUT = Path(__file__).resolve().parent / "data" / "verbatims_holdout.csv"
LABELS = ("positive", "neutral", "negative")


@dataclass(frozen=True)
class Verbatim:
    text: str
    label: str
    split: str


@dataclass(frozen=True)
class Quality:
    polar_accuracy: float
    accuracy: float
    macro_f1: float
    f1: dict[str, float]


def load() -> list[Verbatim]:
    with LABELLED.open(newline="", encoding="utf-8") as handle:
        labelled = [Verbatim(r["text"], r["label"], r["split"]) for r in csv.DictReader(handle)]
    with HOLDOUT.open(newline="", encoding="utf-8") as handle:
        holdout = [Verbatim(r["text"], r["label"], "holdout") for r in csv.DictReader(handle)]
    return labelled + holdout


def vader_label(compound: float) -> str:
    if compound >= 0.05:
        return "positive"
    if compound <= -0.05:
        return "negative"
    return "neutral"


def quality(gold: Sequence[str], predicted: Sequence[str], scores: Sequence[float]) -> Quality:
    polar = [(g, s) for g, s in zip(gold, scores, strict=True) if g != "neutral"]
    polar_right = sum((s > 0 and g == "positive") or (s < 0 and g == "negative") for g, s in polar)
    f1 = {}
    for label in LABELS:
        hits = sum(g == p == label for g, p in zip(gold, predicted, strict=True))
        said = sum(p == label for p in predicted)
        true = sum(g == label for g in gold)
        precision = hits / said if said else 0.0
        recall = hits / true if true else 0.0
        f1[label] = 2 * precision * recall / (precision + recall) if hits else 0.0
    return Quality(
        polar_accuracy=polar_right / len(polar),
        accuracy=sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(gold),
        macro_f1=sum(f1.values()) / len(f1),
        f1=f1,
    )


def rate(work: Callable[[str], object], texts: Sequence[str], count: int) -> float:
    """Verbatims a second for ``work`` over ``count`` texts cycled from ``texts``."""
    batch = list(itertools.islice(itertools.cycle(texts), count))
    started = time.perf_counter()
    for text in batch:
        work(text)
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbatims", type=int, default=20_000, help="texts timed per side")
    args = parser.parse_args()
    verbatims = load()
    texts = [v.text for v in verbatims]
    enricher = Enricher()
    vader = SentimentIntensityAnalyzer()

    rate(enricher.enrich, texts, 1_000)  # warm both up before timing
    rate(vader.polarity_scores, texts, 1_000)
    ours_rate = rate(enricher.enrich, texts, args.verbatims)
    vader_rate = rate(vader.polarity_scores, texts, args.verbatims)
    print(f"speed, {args.verbatims:,} verbatims on one core (goal: >= 5,000/s):")
    print(f"  ours (redact + language + sentiment + topics): {ours_rate:>9,.0f} verbatims/s")
    print(f"  plain VADER (polarity_scores only):            {vader_rate:>9,.0f} verbatims/s")
    print(f"  ratio ours / VADER:                            {ours_rate / vader_rate:>9.2f}")

    ours_results = [enricher.enrich(v.text).sentiment for v in verbatims]
    vader_scores = [vader.polarity_scores(v.text)["compound"] for v in verbatims]
    print("\nsentiment quality (goals: pos-vs-neg accuracy >= 0.85, macro-F1 >= 0.75):")
    print(
        f"  {'rows':<14}{'n':>5}  {'model':<6}{'pos/neg acc':>12}{'3-class acc':>12}"
        f"{'macro-F1':>10}{'F1 pos':>8}{'F1 neu':>8}{'F1 neg':>8}"
    )
    splits = [("labelled set", lambda v: v.split != "holdout")] + [
        (name, lambda v, name=name: v.split == name)
        for name in ("tune", "check", "fresh", "holdout")
    ]
    for name, chosen in splits:
        rows = [i for i, v in enumerate(verbatims) if chosen(v)]
        gold = [verbatims[i].label for i in rows]
        ours_scores = [ours_results[i].score if ours_results[i] else 0.0 for i in rows]
        ours_labels = [ours_results[i].label.value if ours_results[i] else "neutral" for i in rows]
        theirs = [vader_scores[i] for i in rows]
        for model, labels, scores in (
            ("ours", ours_labels, ours_scores),
            ("VADER", [vader_label(s) for s in theirs], theirs),
        ):
            q = quality(gold, labels, scores)
            print(
                f"  {name:<14}{len(rows):>5}  {model:<6}{q.polar_accuracy:>12.3f}"
                f"{q.accuracy:>12.3f}{q.macro_f1:>10.3f}{q.f1['positive']:>8.3f}"
                f"{q.f1['neutral']:>8.3f}{q.f1['negative']:>8.3f}"
            )


if __name__ == "__main__":
    main()
