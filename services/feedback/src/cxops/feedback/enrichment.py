"""Enrichment at intake: each tenant's taxonomy turned into an enricher, held in memory.

Building a tagger costs milliseconds and the sentiment model more, so neither is built per
request: the sentiment model once per process, a tagger once per taxonomy version. Each process
re-reads a tenant's version at most every ``tenant_settings_cache_seconds``, so a taxonomy put
through another replica is in force everywhere within that time; the version each response was
tagged with is stored with it, so the lag is visible, never silent.
"""

import asyncio
import json
import multiprocessing
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cxops.common.service import ServiceState
from cxops.feedback.domain.enrichment import Enricher, Enrichment
from cxops.feedback.domain.sentiment import Sentiment, ServiceSentiment
from cxops.feedback.domain.topics import DEFAULT_TAXONOMY, Taxonomy, TopicTagger
from cxops.feedback.formats import load_taxonomy
from cxops.feedback.repository import TaxonomyRepository, TenantSettingsRepository
from cxops.feedback.settings import FeedbackSettings
from cxops.feedback.tenant_cache import TenantCache
from cxops.stats.scales import SurveyKind


class TenantEnrichment:
    """One taxonomy version's enrichers, one per survey kind (a score is read on its kind's
    scale to tell whether it contradicts the comment)."""

    _shared_sentiment: ServiceSentiment | None = None

    def __init__(self, document: Mapping[str, Any] | None, version: int) -> None:
        if TenantEnrichment._shared_sentiment is None:
            TenantEnrichment._shared_sentiment = ServiceSentiment()
        taxonomy = taxonomy_of(document)
        tagger = TopicTagger(taxonomy)
        self.document = document
        self.taxonomy = taxonomy
        self.version = version
        self._enrichers = {
            kind: Enricher(tagger=tagger, sentiment=self._shared_sentiment, score_kind=kind)
            for kind in SurveyKind
        }

    @classmethod
    def built_in(cls) -> "TenantEnrichment":
        return cls(None, 0)

    def read_as_json(
        self, comment: str | None, *, kind: SurveyKind | str, score: int
    ) -> tuple[str | None, dict[str, Any]]:
        """The redacted comment (None without one) and the reading in the JSON shape of
        :class:`~cxops.feedback.schemas.EnrichmentPublic`, as stored and published: no model is
        built (a bulk import reads a hundred thousand of them)."""
        enrichment = self._enrichers[SurveyKind(kind)].enrich(comment or "", score)
        return enrichment.redacted or None, _as_json(enrichment, self.version)


def _as_json(enrichment: Enrichment, version: int) -> dict[str, Any]:
    return {
        "language": enrichment.language.language,
        "sentiment": _sentiment(enrichment.sentiment),
        "topics": [
            {
                "topic": topic.topic,
                "confidence": round(topic.confidence, 4),
                "owner": topic.owner,
                "sentiment": _sentiment(topic.sentiment),
            }
            for topic in enrichment.topics
        ],
        "needs_review": enrichment.needs_review,
        "review_reasons": list(enrichment.review_reasons),
        "redactions": dict(enrichment.pii),
        "taxonomy_version": version,
    }


def _sentiment(sentiment: Sentiment | None) -> dict[str, Any] | None:
    if sentiment is None:
        return None
    return {
        "label": sentiment.label.value,
        "score": round(sentiment.score, 4),
        "confidence": round(sentiment.confidence, 4),
    }


def taxonomy_of(document: Mapping[str, Any] | None) -> Taxonomy:
    """The taxonomy in force for a stored document (None: the built-in one)."""
    return DEFAULT_TAXONOMY if document is None else load_taxonomy(dict(document))


@dataclass(frozen=True, slots=True)
class TenantIntake:
    """What intake needs to know of one tenant."""

    enrichment: TenantEnrichment
    keep_raw_comments: bool


class Enrichments(TenantCache[TenantIntake]):
    """The enrichers of the tenants this process has seen (a service component). A tagger is
    built once per taxonomy version, not each time the tenant is re-read."""

    def __init__(self, state: ServiceState) -> None:
        settings = state.settings
        assert isinstance(settings, FeedbackSettings)
        super().__init__(state.db, self._read, ttl_seconds=settings.tenant_settings_cache_seconds)
        self._by_version: dict[str, TenantEnrichment] = {}

    async def start(self) -> None:
        """Load the sentiment model now rather than on the first request."""
        TenantEnrichment.built_in()

    async def stop(self) -> None:
        await super().stop()
        self._by_version.clear()

    async def _read(self, session: AsyncSession, tenant: str) -> TenantIntake:
        latest = await TaxonomyRepository(session, tenant=tenant).latest()
        settings = await TenantSettingsRepository(session, tenant=tenant).get()
        version = latest.version if latest is not None else 0
        enrichment = self._by_version.get(tenant)
        if enrichment is None or enrichment.version != version:
            enrichment = TenantEnrichment(latest.document if latest is not None else None, version)
            self._by_version[tenant] = enrichment
        return TenantIntake(
            enrichment=enrichment,
            keep_raw_comments=settings is not None and settings.keep_raw_comments,
        )


# --- many comments at once, on every core ---------------------------------------------------

#: Comments per task sent to a worker process: enough to pay for the hand-over many times.
POOL_CHUNK = 500

_worker_enrichments: dict[tuple[int, str], TenantEnrichment] = {}


def _warm_worker() -> None:
    TenantEnrichment.built_in()


def _read_in_worker(
    version: int,
    document: Mapping[str, Any] | None,
    items: list[tuple[str, str, int]],
) -> list[tuple[str | None, dict[str, Any]]]:
    key = (version, json.dumps(document, sort_keys=True))
    enrichment = _worker_enrichments.get(key)
    if enrichment is None:
        _worker_enrichments.clear()
        enrichment = _worker_enrichments[key] = TenantEnrichment(document, version)
    return [
        enrichment.read_as_json(comment, kind=kind, score=score) for comment, kind, score in items
    ]


class EnrichmentPool:
    """Worker processes that read comments in parallel, for bulk imports: the reading is pure
    Python, so threads would take turns on one core. Started on first use (each worker loads the
    sentiment model once), stopped with the service."""

    def __init__(self, workers: int) -> None:
        self._workers = workers
        self._executor: ProcessPoolExecutor | None = None

    async def start(self) -> None:
        """Workers start on first use: most processes never import in bulk."""

    async def stop(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def read_chunks(
        self, enrichment: TenantEnrichment, items: list[tuple[str, str, int]]
    ) -> list["asyncio.Future[list[tuple[str | None, dict[str, Any]]]]"]:
        """Hand ``items`` (comment, kind, score) to the workers in chunks of
        :data:`POOL_CHUNK`; one future per chunk, in order."""
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self._workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_warm_worker,
            )
        loop = asyncio.get_running_loop()
        return [
            loop.run_in_executor(
                self._executor,
                _read_in_worker,
                enrichment.version,
                enrichment.document,
                items[start : start + POOL_CHUNK],
            )
            for start in range(0, len(items), POOL_CHUNK)
        ]
