"""What a verbatim is about: topics from a taxonomy, each with a confidence and where it was found.

The taxonomy is data: each topic has phrases, exclusions (phrases that look like it but are not:
"return my call" is not a return) and the team that owns it. A default CX taxonomy ships with
the service; a tenant extends or replaces it with a JSON file (see the service's README; the
file is read by :func:`cxops.feedback.formats.load_taxonomy`).

Phrases are lower-case words; a word ending in ``*`` matches any word that starts with it
("refund*" matches "refunded"). Matching runs on the text's words through an index keyed by a
phrase's first word, so its cost grows with the text, not with the size of the taxonomy.

A topic's confidence grows with the weight of the distinct phrases found, a phrase of several
words counting more than a single word: one word gives 0.55, two words or a two-word phrase
about 0.7, three about 0.9. People's corrections change those weights and teach new phrases
(:class:`TopicLearner`).
"""

import itertools
import math
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator

_PHRASE_SHAPE = re.compile(r"^[a-z0-9']+\*?(?: [a-z0-9']+\*?)*$")


class TopicDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[a-z0-9_]+$")
    phrases: tuple[str, ...] = ()
    exclusions: tuple[str, ...] = ()
    owner: str | None = None

    @field_validator("phrases", "exclusions")
    @classmethod
    def _phrases_have_shape(cls, phrases: tuple[str, ...]) -> tuple[str, ...]:
        normalised = tuple(" ".join(phrase.lower().replace("-", " ").split()) for phrase in phrases)
        wrong = [phrase for phrase in normalised if not _PHRASE_SHAPE.match(phrase)]
        if wrong:
            raise ValueError(f"phrases must be words, a final * allowed per word: {wrong}")
        return normalised


@dataclass(frozen=True, slots=True)
class Taxonomy:
    topics: tuple[TopicDefinition, ...]

    def topic(self, name: str) -> TopicDefinition | None:
        return next((topic for topic in self.topics if topic.name == name), None)


def _topic(name: str, owner: str, phrases: str, exclusions: str = "") -> TopicDefinition:
    return TopicDefinition(
        name=name,
        owner=owner,
        phrases=tuple(p.strip() for p in phrases.split(",") if p.strip()),
        exclusions=tuple(p.strip() for p in exclusions.split(",") if p.strip()),
    )


DEFAULT_TAXONOMY = Taxonomy(
    topics=(
        _topic(
            "billing",
            "billing-operations",
            "bill, bills, billing, billed, invoice*, charge, charged, charges, overcharg*, "
            "direct debit, payment*, paid, paying, statement*, balance, double charged, "
            "charged twice, fee, fees, debited, account credit, card declined, declined, receipt, "
            "money left, money taken",
            "bill of rights",
        ),
        _topic(
            "refunds_and_returns",
            "returns-and-refunds",
            "refund*, return, returns, returned, returning, money back, reimburs*, credit note, "
            "chargeback, return label, send it back, sent it back, compensation, goodwill, "
            "exchange, replacement",
            "return call, return my call, returned my call, in return, returning customer, "
            "return flight, return trip",
        ),
        _topic(
            "delivery",
            "logistics",
            "deliver*, courier*, parcel*, package*, shipping, shipped, shipment, dispatch*, "
            "tracking, driver, postage, next day, out for delivery, neighbour, wrong item, "
            "wrong size, never arrived, arrived, order arrived, lost in the post, "
            "collection point, luggage, baggage, ordered, turn up, turned up, engineer, "
            "technician, appointment*, installation, install*",
            "service delivery",
        ),
        _topic(
            "product_quality",
            "product",
            "quality, broke, broken, faulty, fault, defect*, damaged, fell apart, stopped working, "
            "poor quality, flimsy, material, fit, product, item, works perfectly, like new, "
            "cheap rubbish, repair, signal, router, broadband drops, dropped calls, internet, "
            "broadband, network, outage, coverage, connection, wifi, setup, set up, instructions, "
            "packaging, sim",
            "broken promise, broken promises, fault of, my fault, your fault",
        ),
        _topic(
            "wait_time",
            "contact-centre-operations",
            "wait, waited, waiting, on hold, hold time, hold music, queue*, took ages, "
            "took forever, delay*, delayed, late, slow, quick, quickly, fast, prompt, promptly, "
            "still waiting, response time, days, weeks, forever, get through, rapid, speedy, "
            "minutes, hours, since, in and out, took, ages",
            "can't wait, cannot wait, couldn't wait, wait to",
        ),
        _topic(
            "agent_knowledge",
            "training-and-quality",
            "knowledgeable, knew, know, didn't know, no idea, explain*, advice, advise*, "
            "understood, understand, script, different answers, different answer, "
            "wrong information, misinform*, clueless, expert*, trained, training, competent, "
            "incompetent, know their stuff, inside out, first call, first time, resolved, "
            "sorted, fixed",
            "let me know, let you know, you know, let us know, don't know why, do you know",
        ),
        _topic(
            "agent_attitude",
            "training-and-quality",
            "rude, polite, friendly, helpful, unhelpful, kind, lovely, patient, impatient, "
            "professional, unprofessional, courteous, attitude, manner*, dismissive, caring, "
            "listened, listen*, apologis*, apologiz*, hung up, arrogant, condescending, "
            "patronising, empathy, staff, agent, advisor, adviser, representative, "
            "went above and beyond, extra mile, reassuring, star, customer service, team, sales "
            "team, support team, supervisor, manager, staff member",
        ),
        _topic(
            "website_and_app",
            "digital",
            "website, web site, site, app, online, portal, page, checkout, chatbot, chat bot, "
            "crash*, error message, browser, self-service, self service, online form, form, "
            "live chat, chat, features, design",
            "chat to, chatted to",
        ),
        _topic(
            "account_access",
            "digital",
            "log in, login, logged out, logging me out, log me out, sign in, password*, "
            "locked out, account locked, pin, verification, verify, two-factor, 2fa, "
            "reset, access my account, can't access, username, security questions, "
            "one-time code, invalid credentials, online banking",
        ),
        _topic(
            "pricing",
            "commercial",
            "price*, pricing, expensive, cheap, cheaper, cost, costs, tariff*, value for money, "
            "overpriced, discount*, deal, offer*, promotion*, price rise, went up, more for less, "
            "hidden fees, cancellation fee, student discount, loyalty, contract*, plan, upgrade, "
            "subscription*, renewal, quote, quoted",
            "priceless, at all costs",
        ),
        _topic(
            "communication",
            "customer-communications",
            "email*, letter*, text message, texts, text, sms, kept informed, kept me informed, "
            "informed, no one told, nobody told, call back, called back, callback, reply, "
            "replied, response, responded, heard nothing, never heard, ignored, ignoring, "
            "follow up, updates, up to date, warning, notice, told us, told me, phone, phoned, "
            "answers the phone, answer*, contacted, contacting, message*, complaint*, escalat*, "
            "ombudsman, letting you know, let you know",
            "update my, app update",
        ),
    )
)


@dataclass(frozen=True, slots=True)
class TopicMatch:
    topic: str
    confidence: float
    owner: str | None
    phrases: tuple[str, ...]
    """The phrases found, as written in the taxonomy (or learnt)."""
    spans: tuple[tuple[int, int], ...]
    """Where in the text they were found (character offsets)."""


@dataclass(frozen=True, slots=True)
class _Entry:
    topic: str
    phrase: str
    words: tuple[str, ...]
    weight: float
    excludes: bool


_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
#: One phrase word of this weight gives 0.55, so a bare mention passes the review threshold.
_STRENGTH_SCALE = 0.8
_EXTRA_WORD_WEIGHT = 0.5


def _tokens(text: str) -> list[re.Match[str]]:
    return list(_TOKEN.finditer(text.lower().replace("\u2019", "'")))


def _word_matches(pattern: str, token: str) -> bool:
    return token.startswith(pattern[:-1]) if pattern.endswith("*") else token == pattern


class TopicTagger:
    """Finds a taxonomy's topics in texts; build it once per taxonomy and reuse it.

    ``weights`` scales a phrase's say (``(topic, phrase) -> factor``); ``learnt`` adds phrases
    per topic with their weight. Both come from :class:`TopicLearner`."""

    def __init__(
        self,
        taxonomy: Taxonomy = DEFAULT_TAXONOMY,
        *,
        weights: Mapping[tuple[str, str], float] | None = None,
        learnt: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        self.taxonomy = taxonomy
        self._owners = {topic.name: topic.owner for topic in taxonomy.topics}
        self._exact: dict[str, list[_Entry]] = defaultdict(list)
        self._prefixed: dict[str, list[_Entry]] = defaultdict(list)
        factors = weights or {}
        for topic in taxonomy.topics:
            for phrase in topic.phrases:
                self._index(topic.name, phrase, factors.get((topic.name, phrase), 1.0), False)
            for phrase in topic.exclusions:
                self._index(topic.name, phrase, 0.0, True)
            for phrase, weight in (learnt or {}).get(topic.name, {}).items():
                self._index(topic.name, phrase, weight, False)
        self._prefix_lengths = sorted({len(prefix) for prefix in self._prefixed})

    def _index(self, topic: str, phrase: str, weight: float, excludes: bool) -> None:
        words = tuple(phrase.split())
        entry = _Entry(topic, phrase, words, weight, excludes)
        first = words[0]
        if first.endswith("*"):
            self._prefixed[first[:-1]].append(entry)
        else:
            self._exact[first].append(entry)

    def _candidates(self, token: str) -> list[_Entry]:
        found = self._exact.get(token, [])
        for length in self._prefix_lengths:
            if length > len(token):
                break
            prefixed = self._prefixed.get(token[:length])
            if prefixed:
                found = found + prefixed
        return found

    def _found(self, tokens: Sequence[re.Match[str]]) -> list[tuple[_Entry, int, int]]:
        """Every phrase found, with its first and last token index, exclusions applied."""
        words = [token.group() for token in tokens]
        hits: list[tuple[_Entry, int, int]] = []
        for position, word in enumerate(words):
            for entry in self._candidates(word):
                last = position + len(entry.words) - 1
                if last < len(words) and all(
                    _word_matches(pattern, words[position + offset])
                    for offset, pattern in enumerate(entry.words[1:], start=1)
                ):
                    hits.append((entry, position, last))
        excluded = [(e.topic, first, last) for e, first, last in hits if e.excludes]
        if not excluded:
            return hits
        return [
            (entry, first, last)
            for entry, first, last in hits
            if not entry.excludes
            and not any(
                topic == entry.topic and first <= x_last and x_first <= last
                for topic, x_first, x_last in excluded
            )
        ]

    def tag(self, text: str) -> tuple[TopicMatch, ...]:
        """The topics found in ``text``, most confident first."""
        tokens = _tokens(text)
        by_topic: dict[str, dict[str, tuple[_Entry, int, int]]] = defaultdict(dict)
        for entry, first, last in self._found(tokens):
            by_topic[entry.topic].setdefault(entry.phrase, (entry, first, last))
        matches = []
        for topic, phrases in by_topic.items():
            strength = sum(
                entry.weight * (1 + _EXTRA_WORD_WEIGHT * (len(entry.words) - 1))
                for entry, _, _ in phrases.values()
            )
            if strength <= 0:
                continue
            matches.append(
                TopicMatch(
                    topic=topic,
                    confidence=round(1 - math.exp(-_STRENGTH_SCALE * strength), 3),
                    owner=self._owners[topic],
                    phrases=tuple(phrases),
                    spans=tuple(
                        (tokens[first].start(), tokens[last].end())
                        for _, first, last in phrases.values()
                    ),
                )
            )
        return tuple(sorted(matches, key=lambda match: (-match.confidence, match.topic)))


@dataclass(frozen=True, slots=True)
class Correction:
    """A person's verdict: ``topic`` does (``correct``) or does not apply to ``text``."""

    text: str
    topic: str
    correct: bool


_STOPWORDS = frozenset(
    "a an and are as at be been but by for from had has have i i'm i've in is it it's me my "
    "no not of on or our so that the their them they this to was we were what when which who "
    "with you your".split()
)


class TopicLearner:
    """Learns from corrections, deterministically and within bounds.

    Each wrong tag halves the weight of the phrases that produced it, each confirmed one raises
    it by a quarter, and the product is kept between 0.1 and 3. A word or two-word phrase seen
    in at least ``min_support`` more confirmed texts of a topic than rejected ones becomes a
    learnt phrase of that topic, weighted 0.35 per net text up to 1; each topic keeps its 20
    best. The result does not depend on the order of the corrections."""

    MIN_WEIGHT = 0.1
    MAX_WEIGHT = 3.0
    MAX_LEARNT_PER_TOPIC = 20

    def __init__(self, taxonomy: Taxonomy = DEFAULT_TAXONOMY, *, min_support: int = 2) -> None:
        self._taxonomy = taxonomy
        self._base = TopicTagger(taxonomy)
        self._min_support = min_support
        self._verdicts: dict[tuple[str, str], Counter[bool]] = defaultdict(Counter)
        self._support: dict[str, Counter[str]] = defaultdict(Counter)
        self._known = {topic.name: set(topic.phrases) for topic in taxonomy.topics}

    def add(self, correction: Correction) -> None:
        if correction.topic not in self._known:
            raise ValueError(f"unknown topic {correction.topic!r}")
        phrases = {
            e.phrase
            for e, _, _ in self._base._found(_tokens(correction.text))
            if e.topic == correction.topic
        }
        for phrase in phrases:
            self._verdicts[(correction.topic, phrase)][correction.correct] += 1
        step = 1 if correction.correct else -1
        for candidate in _candidate_phrases(correction.text):
            self._support[correction.topic][candidate] += step

    def tagger(self) -> TopicTagger:
        learnt: dict[str, dict[str, float]] = {}
        for topic, support in sorted(self._support.items()):
            eligible = sorted(
                (
                    (-net, phrase)
                    for phrase, net in support.items()
                    if net >= self._min_support and phrase not in self._known[topic]
                ),
            )[: self.MAX_LEARNT_PER_TOPIC]
            if eligible:
                learnt[topic] = {phrase: min(1.0, 0.35 * -net) for net, phrase in eligible}
        weights = {
            key: min(
                self.MAX_WEIGHT, max(self.MIN_WEIGHT, 1.25 ** votes[True] * 0.5 ** votes[False])
            )
            for key, votes in self._verdicts.items()
        }
        return TopicTagger(self._taxonomy, weights=weights, learnt=learnt)


def _candidate_phrases(text: str) -> set[str]:
    """The words and two-word phrases of a text that could name a topic."""
    words = [token.group() for token in _tokens(text)]
    singles = {w for w in words if w not in _STOPWORDS and len(w) > 3 and not w.isdigit()}
    pairs = {
        f"{a} {b}"
        for a, b in itertools.pairwise(words)
        if a not in _STOPWORDS and b not in _STOPWORDS and not (a.isdigit() or b.isdigit())
    }
    return singles | pairs
