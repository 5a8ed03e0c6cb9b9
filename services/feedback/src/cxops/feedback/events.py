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

``cx.feedback.alert.raised.v1`` (payload :class:`AlertRaisedV1`)
    A complaint alert: a topic's complaints rising in a closed hour or day (``test``
    ``poisson-tail``, ``poisson-cusum`` or ``ewma``), or one negative answer from a customer of a
    named tier (``realtime``, queued with that response's own events). Written in the same
    transaction as the alert row, and only by the transaction that inserted it: published once
    per alert, however many replicas evaluated the period.

**Closed-loop cases.** Every case event's payload is a :class:`CaseEventV1`: ``case_id``,
``response_id``, ``state``, ``team`` (the owning team), ``owner``, ``topic``, ``customer_ref``,
``tier``, ``rule`` (the rule that opened it), ``round`` (1, and one more after each reopen),
``by`` (the caller's key, or ``system``), ``feedback_at``, ``opened_at``, the current round's
deadlines ``acknowledge_due_at``, ``action_due_at``, ``close_due_at``, ``root_cause``
(``{category, why_chain}`` once documented), and elapsed times in seconds:
``seconds_since_feedback`` and ``seconds_since_open`` at the event, and
``acknowledged_after_seconds``, ``action_documented_after_seconds``, ``closed_after_seconds``
from the feedback to each action of the round (null before it).

``cx.feedback.case.opened.v1`` (:class:`CaseOpenedV1`)
    A response matched the tenant's case rules; published in the transaction that stored the
    response. Routing reads ``case_id``, ``team``, ``topic``, ``customer_ref``, ``tier`` and
    ``action_due_at`` to queue a task.
``cx.feedback.case.assigned.v1`` (:class:`CaseAssignedV1`)
    The case has a new ``owner``.
``cx.feedback.case.acknowledged.v1`` (:class:`CaseAcknowledgedV1`)
``cx.feedback.case.action_documented.v1`` (:class:`CaseActionDocumentedV1`)
    With the ``root_cause``.
``cx.feedback.case.closed.v1`` (:class:`CaseClosedV1`)
    Adds ``customer_contacted``.
``cx.feedback.case.reopened.v1`` (:class:`CaseReopenedV1`)
    A new ``round``: every clock restarts from the reopen.
``cx.feedback.case.breached.v1`` (:class:`CaseBreachedV1`)
    A clock's deadline passed without its action: adds ``clock`` (``acknowledge``, ``action``,
    ``close``), ``deadline`` and ``breach_round``. Once per clock and round, whatever the number
    of replicas or restarts.
``cx.feedback.case.escalated.v1`` (:class:`CaseEscalatedV1`)
    Still unacknowledged half way through the acknowledge clock: adds ``escalate_to``
    (``supervisor``, of the case's ``team``). Once per round.

Every event travels on the ``CX_FEEDBACK`` stream as a CloudEvent in binary mode
(:class:`cxops.common.events.Event`): ``ce-source`` is :data:`EVENT_SOURCE`, ``ce-tenant`` the
tenant the response belongs to (the payload does not repeat it), ``Nats-Msg-Id`` the ``ce-id``.
Payloads only ever gain fields; a breaking change is a new ``.v2`` subject published beside
``.v1``, so consumers must ignore fields they do not know.
"""

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, StrictInt, model_validator

from cxops.common.events import Event
from cxops.common.validation import SingleLine
from cxops.feedback.domain import invitations as invitation_rules
from cxops.feedback.domain.cases import (
    Case,
    CaseAction,
    CaseState,
    Clock,
    RootCauseCategory,
    deadlines,
    elapsed,
)
from cxops.feedback.schemas import AlertPublic, SentimentPublic, TopicTagPublic
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


def response_events(
    response: Mapping[str, Any], *, tenant: str, trace: Mapping[str, str] | None = None
) -> list[Event]:
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
        Event.new(
            subject=RESPONSE_RECEIVED,
            source=EVENT_SOURCE,
            tenant=tenant,
            data=received,
            trace=trace,
        ),
        Event.new(
            subject=RESPONSE_ENRICHED,
            source=EVENT_SOURCE,
            tenant=tenant,
            data=enriched,
            trace=trace,
        ),
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


class InteractionRecorded(BaseModel):
    """Journey's ``interaction.recorded`` (issue 15): what a platform reported happened to a
    customer. Feedback knows the customer by ``crm_id``, else by ``email:``/``phone:`` and the
    value, and reaches them by email, else by SMS."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    external_id: str
    occurred_at: AwareDatetime
    #: By type: feedback reads ``crm_id``, ``email`` and ``phone``.
    identifiers: dict[str, str]
    channel: str
    activity: str
    team: str | None = None
    stage: str | None = None
    attributes: dict[str, Any] = {}


CONSUMED: dict[str, type[BaseModel]] = {
    TASK_COMPLETED: TaskCompleted,
    INTERACTION_RECORDED: InteractionRecorded,
}


# ---------------------------------------------------------------------- closed-loop cases

CASE_OPENED = "cx.feedback.case.opened.v1"
CASE_ASSIGNED = "cx.feedback.case.assigned.v1"
CASE_ACKNOWLEDGED = "cx.feedback.case.acknowledged.v1"
CASE_ACTION_DOCUMENTED = "cx.feedback.case.action_documented.v1"
CASE_CLOSED = "cx.feedback.case.closed.v1"
CASE_REOPENED = "cx.feedback.case.reopened.v1"
CASE_BREACHED = "cx.feedback.case.breached.v1"
CASE_ESCALATED = "cx.feedback.case.escalated.v1"

Name = Annotated[str, SingleLine(64)]


class RootCauseV1(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    category: RootCauseCategory
    why_chain: tuple[str, ...]


class CaseEventV1(BaseModel):
    """What every case event carries: the case as it stands after the change, and how long the
    customer has waited. Elapsed times are seconds from the feedback's occurred time (the SLA
    clocks count from it) to each action of the current round, ``None`` before it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    case_id: uuid.UUID
    response_id: uuid.UUID
    state: CaseState
    #: The owning team (routing's queue of that name takes the case).
    team: Name
    owner: Annotated[str, SingleLine(128)] | None = None
    topic: Name | None = None
    customer_ref: Annotated[str, SingleLine(128)]
    tier: Name | None = None
    #: The rule that opened the case.
    rule: Name
    round: StrictInt
    #: Who made the change: the caller's key, or ``system`` for the clocks.
    by: Annotated[str, SingleLine(128)]
    feedback_at: AwareDatetime
    opened_at: AwareDatetime
    acknowledge_due_at: AwareDatetime
    action_due_at: AwareDatetime
    close_due_at: AwareDatetime
    root_cause: RootCauseV1 | None = None
    seconds_since_feedback: float
    seconds_since_open: float
    acknowledged_after_seconds: float | None = None
    action_documented_after_seconds: float | None = None
    closed_after_seconds: float | None = None


class CaseOpenedV1(CaseEventV1):
    """A response matched the tenant's case rules and a case opened (in the transaction that
    stored the response). Routing turns it into a task in the team's queue."""


class CaseAssignedV1(CaseEventV1):
    """The case has a new ``owner``."""


class CaseAcknowledgedV1(CaseEventV1):
    """Someone of the team acknowledged the case."""


class CaseActionDocumentedV1(CaseEventV1):
    """The corrective action and its ``root_cause`` were documented."""


class CaseClosedV1(CaseEventV1):
    """The case closed with a resolution."""

    customer_contacted: bool


class CaseReopenedV1(CaseEventV1):
    """A closed case opened again: a new ``round`` starts and every clock restarts."""


class CaseBreachedV1(CaseEventV1):
    """A clock's deadline came without its action, published once per clock and round."""

    clock: Clock
    deadline: AwareDatetime
    breach_round: StrictInt


class CaseEscalatedV1(CaseEventV1):
    """The case is still unacknowledged half way through its acknowledge clock: it goes to the
    ``escalate_to`` role of its team (once per round)."""

    escalate_to: Literal["supervisor"] = "supervisor"


CASE_EVENTS: dict[str, type[CaseEventV1]] = {
    CASE_OPENED: CaseOpenedV1,
    CASE_ASSIGNED: CaseAssignedV1,
    CASE_ACKNOWLEDGED: CaseAcknowledgedV1,
    CASE_ACTION_DOCUMENTED: CaseActionDocumentedV1,
    CASE_CLOSED: CaseClosedV1,
    CASE_REOPENED: CaseReopenedV1,
    CASE_BREACHED: CaseBreachedV1,
    CASE_ESCALATED: CaseEscalatedV1,
}
#: The subject of each action's event.
ACTION_SUBJECTS: dict[CaseAction, str] = {
    CaseAction.OPEN: CASE_OPENED,
    CaseAction.ASSIGN: CASE_ASSIGNED,
    CaseAction.ACKNOWLEDGE: CASE_ACKNOWLEDGED,
    CaseAction.DOCUMENT_ACTION: CASE_ACTION_DOCUMENTED,
    CaseAction.CLOSE: CASE_CLOSED,
    CaseAction.REOPEN: CASE_REOPENED,
}
PUBLISHED.update(CASE_EVENTS)


def case_event(
    subject: str,
    case: Case,
    *,
    case_id: uuid.UUID,
    response_id: uuid.UUID,
    customer_ref: str,
    tier: str | None,
    tenant: str,
    by: str,
    at: datetime,
    **extra: Any,
) -> Event:
    """The event ``subject`` about ``case`` (as it stands after the change made ``at``)."""
    due = deadlines(case)
    took = elapsed(case)
    root_cause = case.root_cause
    payload = CASE_EVENTS[subject](
        case_id=case_id,
        response_id=response_id,
        state=case.state,
        team=case.team,
        owner=case.owner,
        topic=case.topic,
        customer_ref=customer_ref,
        tier=tier,
        rule=case.rule,
        round=case.round,
        by=by,
        feedback_at=case.feedback_at,
        opened_at=case.opened_at,
        acknowledge_due_at=due[Clock.ACKNOWLEDGE],
        action_due_at=due[Clock.ACTION],
        close_due_at=due[Clock.CLOSE],
        root_cause=(
            RootCauseV1(category=root_cause.category, why_chain=root_cause.why_chain)
            if root_cause is not None
            else None
        ),
        seconds_since_feedback=(at - case.feedback_at).total_seconds(),
        seconds_since_open=(at - case.opened_at).total_seconds(),
        acknowledged_after_seconds=took.acknowledge,
        action_documented_after_seconds=took.action,
        closed_after_seconds=took.close,
        **extra,
    )
    return Event.new(
        subject=subject, source=EVENT_SOURCE, tenant=tenant, data=payload.model_dump(mode="json")
    )


# ------------------------------------------------------------------------ complaint alerts

ALERT_RAISED = "cx.feedback.alert.raised.v1"


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


PUBLISHED[ALERT_RAISED] = AlertRaisedV1
