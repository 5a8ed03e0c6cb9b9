"""People checking the model: the review queue, reviewers' labels, and the calibration figures
a monthly session works from (:mod:`cxops.feedback.domain.calibration` does the counting)."""

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from cxops.common.auth import CallerContext
from cxops.feedback.domain.calibration import LabelPair, calibrate
from cxops.feedback.domain.sentiment import SentimentLabel
from cxops.feedback.models import FeedbackLabel, FeedbackResponse
from cxops.feedback.repository import LabelRepository, ResponseRepository, page_of
from cxops.feedback.schemas import (
    AgreementPublic,
    CalibrationPublic,
    EnrichmentPublic,
    LabelCreate,
    LabelPublic,
    TopicAgreementPublic,
)
from cxops.feedback.service import ResponseNotFound


async def review_queue(
    *, session: AsyncSession, caller: CallerContext, cursor: uuid.UUID | None, limit: int
) -> tuple[list[FeedbackResponse], uuid.UUID | None]:
    """A page of the responses waiting for a person, oldest first, and the next cursor."""
    rows = await ResponseRepository(session, tenant=caller.tenant).review_queue(
        after=cursor, limit=limit + 1
    )
    return page_of(rows, limit)


async def label_response(
    *, session: AsyncSession, caller: CallerContext, response_id: uuid.UUID, label: LabelCreate
) -> LabelPublic:
    """Record a reviewer's reading beside the model's; a new label replaces an earlier one, and
    a labelled response leaves the review queue."""
    response = await ResponseRepository(session, tenant=caller.tenant).get(response_id)
    if response is None:
        raise ResponseNotFound(response_id)
    enrichment = EnrichmentPublic.model_validate(response.enrichment)
    row = await LabelRepository(session, tenant=caller.tenant).get(response_id)
    if row is None:
        row = FeedbackLabel(
            response_id=response_id,
            tenant=caller.tenant,
            topics=[],
            model_topics=[],
            taxonomy_version=0,
            labelled_at=datetime.now(UTC),
        )
        session.add(row)
    row.sentiment = label.sentiment.value if label.sentiment else None
    row.topics = sorted(set(label.topics))
    row.model_sentiment = enrichment.sentiment.label.value if enrichment.sentiment else None
    row.model_topics = sorted(topic.topic for topic in enrichment.topics)
    row.taxonomy_version = enrichment.taxonomy_version
    row.labelled_by = caller.subject
    row.labelled_at = datetime.now(UTC)
    public = LabelPublic.model_validate(row, from_attributes=True)
    await session.commit()
    return public


async def calibration(
    *, session: AsyncSession, caller: CallerContext, start: datetime | None, end: datetime | None
) -> CalibrationPublic:
    labels = await LabelRepository(session, tenant=caller.tenant).given_between(start, end)
    figures = calibrate(
        [
            LabelPair(
                model_sentiment=_label(row.model_sentiment),
                reviewer_sentiment=_label(row.sentiment),
                model_topics=frozenset(row.model_topics),
                reviewer_topics=frozenset(row.topics),
            )
            for row in labels
        ]
    )
    return CalibrationPublic(
        from_=start,
        to=end,
        labelled=figures.labelled,
        sentiment=_agreement(figures.sentiment),
        sentiment_confusion={
            model.value: {reviewer.value: n for reviewer, n in row.items()}
            for model, row in figures.sentiment_confusion.items()
        },
        sentiment_unpaired=figures.sentiment_unpaired,
        topics=[
            TopicAgreementPublic(
                topic=topic.topic,
                agreement=_agreement(topic.agreement),
                both=topic.both,
                model_only=topic.model_only,
                reviewer_only=topic.reviewer_only,
                neither=topic.neither,
                disagreements=topic.disagreements,
            )
            for topic in figures.topics
        ],
        disagreeing=[topic.topic for topic in figures.disagreeing],
    )


def _label(value: str | None) -> SentimentLabel | None:
    return SentimentLabel(value) if value is not None else None


def _agreement(agreement: object) -> AgreementPublic:
    return AgreementPublic.model_validate(agreement, from_attributes=True)
