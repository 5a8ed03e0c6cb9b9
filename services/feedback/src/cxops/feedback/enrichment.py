"""Enrichment at intake: each tenant's taxonomy turned into an enricher, held in memory.

Building a tagger costs milliseconds and the sentiment model more, so neither is built per
request: the sentiment model once per process, a tagger once per taxonomy version. Each process
re-reads a tenant's version at most every :data:`REFRESH_SECONDS`, so a taxonomy put through
another replica is in force everywhere within that time; the version each response was tagged
with is stored with it, so the lag is visible, never silent.
"""

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cxops.common.db import Database
from cxops.feedback.domain.enrichment import Enricher, Enrichment
from cxops.feedback.domain.sentiment import Sentiment, ServiceSentiment
from cxops.feedback.domain.topics import DEFAULT_TAXONOMY, Taxonomy, TopicTagger
from cxops.feedback.formats import load_taxonomy
from cxops.feedback.repository import TaxonomyRepository, TenantSettingsRepository
from cxops.feedback.schemas import EnrichmentPublic, SentimentPublic, TopicTagPublic
from cxops.stats.scales import SurveyKind

REFRESH_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Reading:
    """A comment read at intake: what is stored and published of it."""

    comment: str | None
    """Redacted; None without a comment."""
    public: EnrichmentPublic

    @property
    def sentiment_label(self) -> str | None:
        return self.public.sentiment.label.value if self.public.sentiment else None


class TenantEnrichment:
    """One taxonomy version's enrichers, one per survey kind (a score is read on its kind's
    scale to tell whether it contradicts the comment)."""

    _shared_sentiment: ServiceSentiment | None = None

    def __init__(self, taxonomy: Taxonomy, version: int) -> None:
        if TenantEnrichment._shared_sentiment is None:
            TenantEnrichment._shared_sentiment = ServiceSentiment()
        tagger = TopicTagger(taxonomy)
        self.taxonomy = taxonomy
        self.version = version
        self._enrichers = {
            kind: Enricher(tagger=tagger, sentiment=self._shared_sentiment, score_kind=kind)
            for kind in SurveyKind
        }

    @classmethod
    def built_in(cls) -> "TenantEnrichment":
        return cls(DEFAULT_TAXONOMY, 0)

    def read(self, comment: str | None, *, kind: SurveyKind | str, score: int) -> Reading:
        enrichment = self._enrichers[SurveyKind(kind)].enrich(comment or "", score)
        return Reading(
            comment=enrichment.redacted or None,
            public=_public(enrichment, self.version),
        )


def _public(enrichment: Enrichment, version: int) -> EnrichmentPublic:
    return EnrichmentPublic(
        language=enrichment.language.language,
        sentiment=_sentiment(enrichment.sentiment),
        topics=[
            TopicTagPublic(
                topic=topic.topic,
                confidence=round(topic.confidence, 4),
                owner=topic.owner,
                sentiment=_sentiment(topic.sentiment),
            )
            for topic in enrichment.topics
        ],
        needs_review=enrichment.needs_review,
        review_reasons=list(enrichment.review_reasons),
        redactions=dict(enrichment.pii),
        taxonomy_version=version,
    )


def _sentiment(sentiment: Sentiment | None) -> SentimentPublic | None:
    if sentiment is None:
        return None
    return SentimentPublic(
        label=sentiment.label,
        score=round(sentiment.score, 4),
        confidence=round(sentiment.confidence, 4),
    )


def taxonomy_of(document: Mapping[str, Any] | None) -> Taxonomy:
    """The taxonomy in force for a stored document (None: the built-in one)."""
    return DEFAULT_TAXONOMY if document is None else load_taxonomy(dict(document))


@dataclass(frozen=True, slots=True)
class TenantIntake:
    """What intake needs to know of one tenant, as of ``read_at`` (monotonic seconds)."""

    enrichment: TenantEnrichment
    keep_raw_comments: bool
    read_at: float


class Enrichments:
    """The enrichers of the tenants this process has seen (a service component)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._tenants: dict[str, TenantIntake] = {}
        self._by_version: dict[tuple[str, int], TenantEnrichment] = {}

    async def start(self) -> None:
        """Load the sentiment model now rather than on the first request."""
        TenantEnrichment.built_in()

    async def stop(self) -> None:
        self._tenants.clear()
        self._by_version.clear()

    async def for_tenant(self, tenant: str) -> TenantIntake:
        known = self._tenants.get(tenant)
        if known is not None and time.monotonic() - known.read_at < REFRESH_SECONDS:
            return known
        async with self._db.sessionmaker() as session:
            latest = await TaxonomyRepository(session, tenant=tenant).latest()
            settings = await TenantSettingsRepository(session, tenant=tenant).get()
        version = latest.version if latest is not None else 0
        enrichment = self._by_version.get((tenant, version))
        if enrichment is None:
            enrichment = TenantEnrichment(
                taxonomy_of(latest.document if latest is not None else None), version
            )
            self._by_version = {
                key: value for key, value in self._by_version.items() if key[0] != tenant
            }
            self._by_version[(tenant, version)] = enrichment
        intake = TenantIntake(
            enrichment=enrichment,
            keep_raw_comments=settings is not None and settings.keep_raw_comments,
            read_at=time.monotonic(),
        )
        self._tenants[tenant] = intake
        return intake

    def forget(self, tenant: str) -> None:
        """Re-read ``tenant`` on its next response (its taxonomy or settings just changed)."""
        self._tenants.pop(tenant, None)
