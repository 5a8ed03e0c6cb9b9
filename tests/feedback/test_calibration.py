"""Calibration figures against numbers worked by hand."""

import math

import pytest

from cxops.feedback.domain.calibration import LabelPair, agreement, calibrate
from cxops.feedback.domain.sentiment import SentimentLabel

NEG, NEU, POS = SentimentLabel.NEGATIVE, SentimentLabel.NEUTRAL, SentimentLabel.POSITIVE


def table(cells: dict[tuple[str, str], int]) -> list[tuple[str, str]]:
    return [pair for pair, count in cells.items() for _ in range(count)]


def test_kappa_and_its_interval_on_a_two_by_two_table() -> None:
    # 50 judgements: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no.
    # observed 35/50 = 0.7; rows 0.5/0.5, columns 0.6/0.4, chance 0.5*0.6 + 0.5*0.4 = 0.5;
    # kappa (0.7 - 0.5) / (1 - 0.5) = 0.4.
    # Variance (Fleiss, Cohen, Everitt): diagonal 0.4*(1-1.1*0.6)^2 + 0.3*(1-0.9*0.6)^2
    # = 0.04624 + 0.06348; off the diagonal 0.36*(0.1*1.1^2 + 0.2*0.9^2) = 0.10188;
    # less (0.4 - 0.5*0.6)^2 = 0.01; over 50*0.25: 0.2016/12.5 = 0.016128, se 0.126996.
    result = agreement(
        table({("y", "y"): 20, ("y", "n"): 5, ("n", "y"): 10, ("n", "n"): 15}), ("y", "n")
    )
    assert result.n == 50
    assert result.accuracy == pytest.approx(0.7)
    assert result.kappa == pytest.approx(0.4)
    assert result.kappa_interval is not None
    half = 1.959964 * math.sqrt(0.016128)
    assert result.kappa_interval.low == pytest.approx(0.4 - half, abs=1e-5)
    assert result.kappa_interval.high == pytest.approx(0.4 + half, abs=1e-5)


def test_perfect_agreement_has_kappa_one_and_a_zero_width_interval() -> None:
    result = agreement(table({("a", "a"): 7, ("b", "b"): 3}), ("a", "b"))
    assert result.kappa == pytest.approx(1.0)
    assert result.kappa_interval is not None
    assert result.kappa_interval.width == pytest.approx(0.0, abs=1e-9)


def test_kappa_is_undefined_when_both_always_say_the_same_thing() -> None:
    result = agreement(table({("a", "a"): 5}), ("a", "b"))
    assert result.accuracy == 1.0
    assert result.kappa is None and result.kappa_interval is None


def test_agreement_below_chance_is_negative_and_stays_within_minus_one() -> None:
    result = agreement(table({("a", "b"): 4, ("b", "a"): 4}), ("a", "b"))
    assert result.kappa == pytest.approx(-1.0)
    assert result.kappa_interval is not None and result.kappa_interval.low >= -1.0


def test_no_judgements_give_no_figures() -> None:
    result = agreement([], ("a", "b"))
    assert (result.n, result.accuracy, result.kappa) == (0, None, None)


def test_calibration_of_sentiment_and_topics() -> None:
    pairs = [
        LabelPair(NEG, NEG, frozenset({"billing"}), frozenset({"billing"})),
        LabelPair(NEG, NEU, frozenset({"billing", "delivery"}), frozenset({"billing"})),
        LabelPair(POS, POS, frozenset(), frozenset({"staff"})),
        LabelPair(NEU, NEU, frozenset({"delivery"}), frozenset()),
        LabelPair(None, NEG, frozenset(), frozenset({"billing"})),
    ]
    result = calibrate(pairs)
    assert result.labelled == 5
    # Four paired sentiments, three agree: rows (model) neg 2, neu 1, pos 1; columns
    # (reviewer) neg 1, neu 2, pos 1; chance (2*1 + 1*2 + 1*1)/16 = 5/16;
    # kappa (3/4 - 5/16) / (11/16) = 7/11.
    assert result.sentiment_unpaired == 1
    assert result.sentiment.n == 4
    assert result.sentiment.accuracy == pytest.approx(0.75)
    assert result.sentiment.kappa == pytest.approx(7 / 11)
    assert result.sentiment_confusion[NEG][NEU] == 1
    assert result.sentiment_confusion[NEG][NEG] == 1
    assert result.sentiment_confusion[POS][NEG] == 0

    by_name = {topic.topic: topic for topic in result.topics}
    assert list(by_name) == ["billing", "delivery", "staff"]
    billing = by_name["billing"]
    assert (billing.both, billing.model_only, billing.reviewer_only, billing.neither) == (
        2,
        0,
        1,
        2,
    )
    assert billing.agreement.accuracy == pytest.approx(0.8)
    delivery = by_name["delivery"]
    assert (delivery.model_only, delivery.reviewer_only) == (2, 0)
    # delivery disagrees twice, billing and staff once each; ties by name.
    assert [topic.topic for topic in result.disagreeing] == ["delivery", "billing", "staff"]


def test_a_topic_everyone_agrees_on_is_not_among_the_disagreeing() -> None:
    pairs = [LabelPair(POS, POS, frozenset({"staff"}), frozenset({"staff"}))] * 3
    result = calibrate(pairs)
    assert result.disagreeing == ()
    assert result.topics[0].agreement.accuracy == 1.0
