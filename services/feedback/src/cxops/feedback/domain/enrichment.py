"""The enrichment of one verbatim: redaction, language, sentiment, topics with their own sentiment,
and whether a person should look at it.

Personal data is removed first, so nothing downstream (or in the output) sees it. Text that is
not English gets no sentiment and no topics (the lexicon and the phrases are English): a made-up
score would be worse than none. Text longer than :data:`MAX_TEXT_CHARS` is cut there (at a word
boundary) and flagged. A survey score, when given, is read on its survey kind's scale and
compared with the sentiment: a 9 with an angry comment goes to a person.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass

from cxops.feedback.domain.language import UNDETERMINED, LanguageGuess, detect_language
from cxops.feedback.domain.pii import PLACEHOLDERS, redact
from cxops.feedback.domain.sentiment import (
    Sentiment,
    SentimentLabel,
    ServiceSentiment,
    sentiment_toward,
)
from cxops.feedback.domain.topics import TopicTagger
from cxops.stats.scales import (
    DETRACTOR_CEILING,
    PROMOTER_FLOOR,
    SATISFIED_FLOOR,
    SCALES,
    SurveyKind,
)

#: Characters analysed; beyond this a verbatim is cut (and flagged ``truncated``).
MAX_TEXT_CHARS = 5_000
#: A topic below this confidence (a person should confirm or reject the tag), or a sentiment
#: below its own, is worth a person's look.
REVIEW_TOPIC_CONFIDENCE = 0.5
REVIEW_SENTIMENT_CONFIDENCE = 0.45
#: A positive sentiment at least this strong contradicts a low score.
STRONGLY_POSITIVE = 0.5

#: Per survey kind: scores at or above the first are high, at or below the second low (a
#: promoter and a detractor; a satisfied customer and a 1 or 2).
SCORE_BANDS: Mapping[SurveyKind, tuple[int, int]] = {
    SurveyKind.NPS: (PROMOTER_FLOOR, DETRACTOR_CEILING),
    SurveyKind.CSAT: (SATISFIED_FLOOR, 2),
    SurveyKind.CES: (6, 3),
}

# Why a verbatim needs review (the ``review_reasons`` of the output).
NOT_ENGLISH = "not_english"
LANGUAGE_UNDETERMINED = "language_undetermined"
TRUNCATED = "truncated"
NO_TOPIC = "no_topic"
LOW_TOPIC_CONFIDENCE = "low_topic_confidence"
LOW_SENTIMENT_CONFIDENCE = "low_sentiment_confidence"
SCORE_DISAGREES = "score_sentiment_disagree"
SCORE_OUT_OF_RANGE = "score_out_of_range"
SCORE_NOT_A_NUMBER = "score_not_a_number"


@dataclass(frozen=True, slots=True)
class ScoreReading:
    """A survey score as read from a file: ``value`` is None when missing or unusable."""

    value: float | None
    problem: str | None = None


def read_score(raw: str | float | None, kind: SurveyKind) -> ScoreReading:
    """Read a score on ``kind``'s scale; blank means no score, anything else unusable is a
    problem named by one of the ``SCORE_*`` reasons."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return ScoreReading(None)
    try:
        value = float(raw)
    except ValueError:
        return ScoreReading(None, SCORE_NOT_A_NUMBER)
    scale = SCALES[kind]
    if not scale.lowest <= value <= scale.highest:  # NaN fails both and lands here too
        return ScoreReading(None, SCORE_OUT_OF_RANGE)
    return ScoreReading(value)


@dataclass(frozen=True, slots=True)
class TopicSentiment:
    topic: str
    confidence: float
    owner: str | None
    sentiment: Sentiment
    """The sentiment of the clauses where the topic was found."""
    phrases: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Enrichment:
    redacted: str
    """The text as analysed: personal data replaced, cut at :data:`MAX_TEXT_CHARS`."""
    pii: Mapping[str, int]
    language: LanguageGuess
    sentiment: Sentiment | None
    """None for empty text and text that is not English."""
    topics: tuple[TopicSentiment, ...]
    review_reasons: tuple[str, ...]
    empty: bool
    truncated: bool
    original_length: int
    score: ScoreReading

    @property
    def needs_review(self) -> bool:
        return bool(self.review_reasons)


#: Redaction placeholders ("[EMAIL]") are blanked (same length, so offsets hold) before
#: analysis: the customer did not write the word "email".
_PLACEHOLDER = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS.values()))


def _blank(match: re.Match[str]) -> str:
    return " " * len(match.group())


_NO_LANGUAGE = LanguageGuess(UNDETERMINED, 0.0, is_english=False)


class Enricher:
    """Enriches verbatims; build it once (the sentiment model and topic index are not cheap)."""

    def __init__(
        self,
        *,
        tagger: TopicTagger | None = None,
        sentiment: ServiceSentiment | None = None,
        score_kind: SurveyKind = SurveyKind.NPS,
        max_chars: int = MAX_TEXT_CHARS,
    ) -> None:
        self._tagger = tagger if tagger is not None else TopicTagger()
        self._sentiment = sentiment if sentiment is not None else ServiceSentiment()
        self._score_kind = score_kind
        self._max_chars = max_chars

    def enrich(self, text: str, score: str | float | None = None) -> Enrichment:
        reading = read_score(score, self._score_kind)
        score_reasons = (reading.problem,) if reading.problem else ()
        if not text.strip():
            return Enrichment(
                redacted="",
                pii={},
                language=_NO_LANGUAGE,
                sentiment=None,
                topics=(),
                review_reasons=score_reasons,
                empty=True,
                truncated=False,
                original_length=len(text),
                score=reading,
            )
        redaction = redact(text)
        analysed, truncated = _cut(redaction.text.strip(), self._max_chars)
        language = detect_language(analysed)
        reasons = [TRUNCATED] if truncated else []
        sentiment: Sentiment | None = None
        topics: tuple[TopicSentiment, ...] = ()
        if not language.is_english:
            reasons.append(
                LANGUAGE_UNDETERMINED if language.language == UNDETERMINED else NOT_ENGLISH
            )
        else:
            words = _PLACEHOLDER.sub(_blank, analysed) if "[" in analysed else analysed
            sentiment, clauses = self._sentiment.analyze(words)
            topics = tuple(
                TopicSentiment(
                    topic=match.topic,
                    confidence=match.confidence,
                    owner=match.owner,
                    sentiment=sentiment_toward(clauses, match.spans),
                    phrases=match.phrases,
                )
                for match in self._tagger.tag(words)
            )
            reasons += self._doubts(sentiment, topics, reading)
        reasons += score_reasons
        return Enrichment(
            redacted=analysed,
            pii=dict(redaction.counts),
            language=language,
            sentiment=sentiment,
            topics=topics,
            review_reasons=tuple(reasons),
            empty=False,
            truncated=truncated,
            original_length=len(text),
            score=reading,
        )

    def _doubts(
        self, sentiment: Sentiment, topics: tuple[TopicSentiment, ...], reading: ScoreReading
    ) -> list[str]:
        reasons = []
        if not topics:
            reasons.append(NO_TOPIC)
        elif any(topic.confidence < REVIEW_TOPIC_CONFIDENCE for topic in topics):
            reasons.append(LOW_TOPIC_CONFIDENCE)
        if sentiment.confidence < REVIEW_SENTIMENT_CONFIDENCE:
            reasons.append(LOW_SENTIMENT_CONFIDENCE)
        if reading.value is not None:
            high, low = SCORE_BANDS[self._score_kind]
            if (reading.value >= high and sentiment.label is SentimentLabel.NEGATIVE) or (
                reading.value <= low and sentiment.score >= STRONGLY_POSITIVE
            ):
                reasons.append(SCORE_DISAGREES)
        return reasons


def _cut(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut to at most ``limit`` characters, at the last space when there is one in the
    last tenth (a word is not split), and whether it was cut."""
    if len(text) <= limit:
        return text, False
    space = text.rfind(" ", limit - limit // 10, limit + 1)
    return text[: space if space > 0 else limit].rstrip(), True
