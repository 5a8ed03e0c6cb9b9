"""The events scorecard consumes, as scorecard reads them, and their handlers.

Scorecard publishes nothing yet. It consumes:

``cx.feedback.response.received.v1`` from the ``CX_FEEDBACK`` stream
    Durable consumer ``scorecard-feedback-responses``; each answer becomes one
    :class:`~cxops.scorecard.models.ResponseFact`.

Each payload model names only the fields scorecard uses and ignores the rest, so the publisher
can add fields without breaking this consumer. A payload that does not fit is a
:class:`~cxops.common.events.PermanentEventError`: retrying cannot fix it, so it goes straight
to the dead-letter stream for an operator to see.
"""

import uuid
from collections.abc import Sequence
from typing import Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    StrictInt,
    ValidationError,
    model_validator,
)
from sqlalchemy.ext.asyncio import AsyncSession

from cxops.common.events import ConsumerSpec, Event, PermanentEventError
from cxops.common.events.broker import stream_name
from cxops.scorecard import service
from cxops.stats.scales import SCALES, SurveyKind

FEEDBACK_RESPONSE_RECEIVED = "cx.feedback.response.received.v1"


class FeedbackResponseReceived(BaseModel):
    """Scorecard's reading of ``cx.feedback.response.received.v1``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    response_id: uuid.UUID
    kind: SurveyKind
    score: StrictInt
    occurred_at: AwareDatetime

    @model_validator(mode="after")
    def _score_on_the_kinds_scale(self) -> Self:
        scale = SCALES[self.kind]
        if not scale.contains(self.score):
            raise ValueError(
                f"a {self.kind.value} score runs from {scale.lowest} to {scale.highest}, "
                f"not {self.score}"
            )
        return self


def _read_response(event: Event) -> service.ResponseAnswer:
    try:
        payload = FeedbackResponseReceived.model_validate(event.data)
    except ValidationError as exc:
        raise PermanentEventError(f"unreadable {event.type} payload: {exc}") from exc
    return service.ResponseAnswer(
        tenant=event.tenant,
        event_id=event.id,
        response_id=payload.response_id,
        metric=payload.kind,
        score=payload.score,
        occurred_at=payload.occurred_at,
    )


async def on_feedback_response_received(session: AsyncSession, event: Event) -> None:
    """Count the answer in the event's tenant. Runs in the consumer's transaction."""
    await service.record_response_facts(session=session, answers=[_read_response(event)])


async def on_feedback_responses_received(session: AsyncSession, events: Sequence[Event]) -> None:
    """Count a fetched batch of answers with one statement (see ``ConsumerSpec``)."""
    await service.record_response_facts(
        session=session, answers=[_read_response(event) for event in events]
    )


FEEDBACK_RESPONSES = ConsumerSpec(
    name="feedback-responses",
    stream=stream_name("feedback"),
    subjects=[FEEDBACK_RESPONSE_RECEIVED],
    handler=on_feedback_response_received,
    batch_handler=on_feedback_responses_received,
)

#: Every subject this service consumes, and the model it reads the payload with.
CONSUMED: dict[str, type[BaseModel]] = {FEEDBACK_RESPONSE_RECEIVED: FeedbackResponseReceived}
