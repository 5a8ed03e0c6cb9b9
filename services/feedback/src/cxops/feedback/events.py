"""The event catalogue of the feedback service: every event it publishes and its payload.

``cx.feedback.response.received.v1`` (payload :class:`ResponseReceivedV1`)
    A survey response was stored. Published once per response, never again for an idempotent
    replay of the same request.

``cx.feedback.response.enriched.v1`` (payload :class:`ResponseEnrichedV1`)
    What the service read in that response: the redacted comment, language, sentiment, topics
    with their own sentiment and owning team, ``needs_review``, the taxonomy version. Written in
    the same transaction as ``response.received`` and right after it in the outbox, so it
    follows it on the stream.

``cx.feedback.survey.invited.v1`` (payload :class:`SurveyInvitedV1`)
    An invitation fell due: the tenant's platform should now ask the customer (the gateway
    delivers it by signed webhook). Published once per invitation, by whichever replica's timer
    sends it.

Every event travels on the ``CX_FEEDBACK`` stream as a CloudEvent in binary mode
(:class:`cxops.common.events.Event`): ``ce-source`` is :data:`EVENT_SOURCE`, ``ce-tenant`` the
tenant the response belongs to (the payload does not repeat it), ``Nats-Msg-Id`` the ``ce-id``.
Payloads only ever gain fields; a breaking change is a new ``.v2`` subject published beside
``.v1``, so consumers must ignore fields they do not know.
"""

import uuid
from collections.abc import Mapping
from typing import Any, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, StrictInt, model_validator

from cxops.common.events import Event
from cxops.feedback.domain import invitations as invitation_rules
from cxops.feedback.schemas import SentimentPublic, TopicTagPublic
from cxops.stats.scales import SCALES, SurveyKind

EVENT_SOURCE = "/cxops/feedback"

RESPONSE_RECEIVED = "cx.feedback.response.received.v1"
RESPONSE_ENRICHED = "cx.feedback.response.enriched.v1"


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
    #: The agent the answer is about, when its invitation named one.
    agent_id: uuid.UUID | None = None
    #: The invitation whose token the response quoted.
    invitation_id: uuid.UUID | None = None
    occurred_at: AwareDatetime
    received_at: AwareDatetime
    has_comment: bool

    @model_validator(mode="after")
    def _score_on_the_kinds_scale(self) -> Self:
        if not SCALES[self.kind].contains(self.score):
            raise ValueError(f"a {self.kind.value} score runs from {SCALES[self.kind]}")
        return self


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
    agent_id: uuid.UUID | None = None
    invitation_id: uuid.UUID | None = None
    customer_tier: str | None = None
    occurred_at: AwareDatetime
    comment: str | None
    language: str
    sentiment: SentimentPublic | None
    topics: list[TopicTagPublic]
    needs_review: bool
    review_reasons: list[str]
    taxonomy_version: int


def response_events(response: Mapping[str, Any], *, tenant: str) -> list[Event]:
    """``response.received`` then ``response.enriched`` for a new response of ``tenant``, for
    the outbox. ``response`` is the response's columns as they are stored (the enrichment in its
    JSON shape): the payloads are built as plain JSON, not through their models, because a bulk
    import announces a hundred thousand; the event tests hold them to the models."""
    enrichment = response["enrichment"]
    common = {
        "response_id": str(response["id"]),
        "kind": response["kind"],
        "score": response["score"],
        "customer_ref": response["customer_ref"],
        "channel": response["channel"],
        "task_id": _text(response["task_id"]),
        "agent_id": _text(response.get("agent_id")),
        "invitation_id": _text(response.get("invitation_id")),
        "customer_tier": response["customer_tier"],
        "occurred_at": response["occurred_at"].isoformat(),
    }
    received = {
        **common,
        "received_at": response["received_at"].isoformat(),
        "has_comment": response["comment"] is not None,
    }
    enriched = {
        **common,
        "comment": response["comment"],
        "language": enrichment["language"],
        "sentiment": enrichment["sentiment"],
        "topics": enrichment["topics"],
        "needs_review": enrichment["needs_review"],
        "review_reasons": enrichment["review_reasons"],
        "taxonomy_version": enrichment["taxonomy_version"],
    }
    return [
        Event.new(subject=RESPONSE_RECEIVED, source=EVENT_SOURCE, tenant=tenant, data=received),
        Event.new(subject=RESPONSE_ENRICHED, source=EVENT_SOURCE, tenant=tenant, data=enriched),
    ]


def _text(value: object) -> str | None:
    return None if value is None else str(value)


#: Every subject this service publishes, and the model of its payload (the event contract tests
#: feed each into the model of every consumer of that subject).
PUBLISHED: dict[str, type[BaseModel]] = {
    RESPONSE_RECEIVED: ResponseReceivedV1,
    RESPONSE_ENRICHED: ResponseEnrichedV1,
}


# ------------------------------------------------------------------------ survey invitations

SURVEY_INVITED = "cx.feedback.survey.invited.v1"


class SurveyInvitedV1(BaseModel):
    """Ask this customer this survey now. ``token`` goes into the survey's link; the answer
    quotes it (``invitation_token``) so that feedback links it to the invitation, its task and
    agent. ``contact_address`` is what the exit event gave (null when the platform reaches the
    customer by ``customer_ref`` itself)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    invitation_id: uuid.UUID
    survey_key: str
    kind: SurveyKind
    customer_ref: str
    contact_channel: str
    contact_address: str | None = None
    token: str
    task_id: uuid.UUID | None = None
    agent_id: uuid.UUID | None = None
    due_at: AwareDatetime
    expires_at: AwareDatetime


def survey_invited(invitation: SurveyInvitedV1, *, tenant: str) -> Event:
    return Event.new(
        subject=SURVEY_INVITED,
        source=EVENT_SOURCE,
        tenant=tenant,
        data=invitation.model_dump(mode="json"),
    )


PUBLISHED[SURVEY_INVITED] = SurveyInvitedV1

#: The exit events feedback consumes, as it reads them (the publisher's payload may carry more).
TASK_COMPLETED = invitation_rules.TASK_COMPLETED
INTERACTION_RECORDED = invitation_rules.INTERACTION_RECORDED


class TaskCompleted(BaseModel):
    """Routing's ``task.completed``: a contact ended, the exit point of a CSAT or NPS on it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    task_id: uuid.UUID
    agent_id: uuid.UUID
    team: str | None = None
    queue: str
    channel: str
    tier: str
    customer_ref: str | None = None
    case_id: str | None = None
    wait_seconds: float
    handle_seconds: float
    resolved: bool
    csat: int | None = None
    completed_at: AwareDatetime


class InteractionIdentifiers(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    email: str | None = None
    phone: str | None = None
    crm_id: str | None = None


class InteractionRecorded(BaseModel):
    """Journey's ``interaction.recorded`` (issue 15): what a platform reported happened to a
    customer. Feedback knows the customer by ``crm_id``, else by ``email:``/``phone:`` and the
    value, and reaches them by email, else by SMS."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    external_id: str
    occurred_at: AwareDatetime
    identifiers: InteractionIdentifiers
    channel: str
    activity: str
    team: str | None = None
    stage: str | None = None
    attributes: dict[str, Any] = {}


CONSUMED: dict[str, type[BaseModel]] = {
    TASK_COMPLETED: TaskCompleted,
    INTERACTION_RECORDED: InteractionRecorded,
}
