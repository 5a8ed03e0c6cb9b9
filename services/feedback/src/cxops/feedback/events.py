"""The event catalogue of the feedback service: every event it publishes and its payload.

``cx.feedback.response.received.v1`` (payload :class:`ResponseReceivedV1`)
    A survey response was stored. Published once per response, never again for an idempotent
    replay of the same request.

``cx.feedback.response.enriched.v1`` (payload :class:`ResponseEnrichedV1`)
    What the service read in that response: the redacted comment, language, sentiment, topics
    with their own sentiment and owning team, ``needs_review``, the taxonomy version. Written in
    the same transaction as ``response.received`` and right after it in the outbox, so it
    follows it on the stream.

``cx.feedback.alert.raised.v1`` (payload :class:`AlertRaisedV1`)
    A complaint alert: a topic's complaints rising in a closed hour or day (``test``
    ``poisson-tail``, ``poisson-cusum`` or ``ewma``), or one negative answer from a customer of a
    named tier (``realtime``, queued with that response's own events). Written in the same
    transaction as the alert row, and only by the transaction that inserted it: published once
    per alert, however many replicas evaluated the period.

Every event travels on the ``CX_FEEDBACK`` stream as a CloudEvent in binary mode
(:class:`cxops.common.events.Event`): ``ce-source`` is :data:`EVENT_SOURCE`, ``ce-tenant`` the
tenant the response belongs to (the payload does not repeat it), ``Nats-Msg-Id`` the ``ce-id``.
Payloads only ever gain fields; a breaking change is a new ``.v2`` subject published beside
``.v1``, so consumers must ignore fields they do not know.
"""

import uuid
from typing import Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, StrictInt, model_validator

from cxops.common.events import Event
from cxops.feedback.schemas import AlertPublic, ResponsePublic, SentimentPublic, TopicTagPublic
from cxops.stats.scales import SCALES, SurveyKind

EVENT_SOURCE = "/cxops/feedback"

RESPONSE_RECEIVED = "cx.feedback.response.received.v1"
RESPONSE_ENRICHED = "cx.feedback.response.enriched.v1"
ALERT_RAISED = "cx.feedback.alert.raised.v1"


class ResponseReceivedV1(BaseModel):
    """A survey answer was stored. The comment itself is not carried: it is raw customer text,
    not yet redacted, and stays in feedback's database; ``has_comment`` says whether there is one.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    response_id: uuid.UUID
    kind: SurveyKind
    score: StrictInt
    customer_ref: str
    channel: str
    #: The routing task the answer is about, if the platform named it.
    task_id: uuid.UUID | None = None
    customer_tier: str | None = None
    occurred_at: AwareDatetime
    received_at: AwareDatetime
    has_comment: bool

    @model_validator(mode="after")
    def _score_on_the_kinds_scale(self) -> Self:
        if not SCALES[self.kind].contains(self.score):
            raise ValueError(f"a {self.kind.value} score runs from {SCALES[self.kind]}")
        return self


def response_received(response: ResponsePublic, *, tenant: str) -> Event:
    """The ``response.received`` event announcing ``response`` of ``tenant``, for the outbox."""
    payload = ResponseReceivedV1(
        response_id=response.id,
        kind=response.kind,
        score=response.score,
        customer_ref=response.customer_ref,
        channel=response.channel,
        task_id=response.task_id,
        customer_tier=response.customer_tier,
        occurred_at=response.occurred_at,
        received_at=response.received_at,
        has_comment=response.comment is not None,
    )
    return Event.new(
        subject=RESPONSE_RECEIVED,
        source=EVENT_SOURCE,
        tenant=tenant,
        data=payload.model_dump(mode="json"),
    )


class ResponseEnrichedV1(BaseModel):
    """What the service read in a stored response. ``comment`` is redacted: personal data is
    replaced by placeholders (``[EMAIL]``) before anything reads it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    response_id: uuid.UUID
    kind: SurveyKind
    score: StrictInt
    customer_ref: str
    channel: str
    task_id: uuid.UUID | None = None
    customer_tier: str | None = None
    occurred_at: AwareDatetime
    comment: str | None
    language: str
    sentiment: SentimentPublic | None
    topics: list[TopicTagPublic]
    needs_review: bool
    review_reasons: list[str]
    taxonomy_version: int


def response_enriched(response: ResponsePublic, *, tenant: str) -> Event:
    """The ``response.enriched`` event of ``response`` of ``tenant``, for the outbox."""
    enrichment = response.enrichment
    payload = ResponseEnrichedV1(
        response_id=response.id,
        kind=response.kind,
        score=response.score,
        customer_ref=response.customer_ref,
        channel=response.channel,
        task_id=response.task_id,
        customer_tier=response.customer_tier,
        occurred_at=response.occurred_at,
        comment=response.comment,
        language=enrichment.language,
        sentiment=enrichment.sentiment,
        topics=enrichment.topics,
        needs_review=enrichment.needs_review,
        review_reasons=enrichment.review_reasons,
        taxonomy_version=enrichment.taxonomy_version,
    )
    return Event.new(
        subject=RESPONSE_ENRICHED,
        source=EVENT_SOURCE,
        tenant=tenant,
        data=payload.model_dump(mode="json"),
    )


class AlertRaisedV1(BaseModel):
    """A complaint alert for ``team``: ``observed`` complaints about ``topic`` among ``segment``
    (``all`` or ``tier:<tier>``) between ``period_start`` and ``period_end`` against ``expected``,
    with the test that fired, its corrected ``p_value`` (null for ``poisson-cusum`` and
    ``realtime``) and a reason in words. A real-time alert names its ``response_id``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alert_id: uuid.UUID
    granularity: str
    topic: str | None
    segment: str
    team: str
    period_start: AwareDatetime
    period_end: AwareDatetime
    test: str
    p_value: float | None
    observed: int
    expected: float | None
    reason: str
    response_id: uuid.UUID | None = None
    raised_at: AwareDatetime


def alert_raised(alert: AlertPublic, *, tenant: str) -> Event:
    """The ``alert.raised`` event of ``alert`` of ``tenant``, for the outbox."""
    payload = AlertRaisedV1(
        alert_id=alert.id,
        granularity=alert.granularity,
        topic=alert.topic,
        segment=alert.segment,
        team=alert.team,
        period_start=alert.period_start,
        period_end=alert.period_end,
        test=alert.test,
        p_value=alert.p_value,
        observed=alert.observed,
        expected=alert.expected,
        reason=alert.reason,
        response_id=alert.response_id,
        raised_at=alert.raised_at,
    )
    return Event.new(
        subject=ALERT_RAISED,
        source=EVENT_SOURCE,
        tenant=tenant,
        data=payload.model_dump(mode="json"),
    )


#: Every subject this service publishes, and the model of its payload (the event contract tests
#: feed each into the model of every consumer of that subject).
PUBLISHED: dict[str, type[BaseModel]] = {
    RESPONSE_RECEIVED: ResponseReceivedV1,
    RESPONSE_ENRICHED: ResponseEnrichedV1,
    ALERT_RAISED: AlertRaisedV1,
}
