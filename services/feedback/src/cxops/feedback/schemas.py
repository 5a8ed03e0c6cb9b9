"""What callers send and what they get back; the tables in :mod:`cxops.feedback.models` are
never exposed as they are."""

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from cxops.common.validation import SingleLine, UtcDateTime, text_pattern, text_schema
from cxops.feedback.domain import cases as domain
from cxops.feedback.domain import invitations as invitation_rules
from cxops.feedback.domain.cases import (
    DEFAULT_RULES,
    DEFAULT_TEAM,
    CaseAction,
    CaseState,
    Clock,
    RootCauseCategory,
)
from cxops.feedback.domain.sentiment import SentimentLabel
from cxops.feedback.domain.topics import DEFAULT_TAXONOMY, TopicDefinition
from cxops.stats.scales import SCALES, SurveyKind

#: How far in the future ``occurred_at`` may be: the caller's clock may run a little ahead.
CLOCK_SKEW = timedelta(minutes=5)

COMMENT_MAX_LENGTH = 4000
CUSTOMER_REF_MAX_LENGTH = 128
CHANNEL_MAX_LENGTH = 64

_LINE_BREAKS = frozenset("\t\n\r")
_FREE_TEXT = r"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"


def _free_text(value: str | None) -> str | None:
    """Free text keeps tabs and line breaks but no other control character; blank means none."""
    if value is None:
        return None
    if any((ord(char) < 0x20 and char not in _LINE_BREAKS) or ord(char) == 0x7F for char in value):
        raise PydanticCustomError(
            "control_characters", "must not contain control characters other than line breaks"
        )
    return value or None


CustomerRef = Annotated[str, SingleLine(CUSTOMER_REF_MAX_LENGTH)]
#: ``secrets.token_urlsafe(32)``: 43 URL-safe characters; anything else cannot be one.
InvitationToken = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,64}$")]
Channel = Annotated[str, SingleLine(CHANNEL_MAX_LENGTH)]
#: A team, a topic, a tier, a rule's name: the names routing's queues and tiers use too.
Name = Annotated[str, SingleLine(64)]
Comment = Annotated[
    str | None,
    StringConstraints(strip_whitespace=True, max_length=COMMENT_MAX_LENGTH),
    AfterValidator(_free_text),
]
_COMMENT_SCHEMA = text_schema(
    text_pattern(_FREE_TEXT, COMMENT_MAX_LENGTH, blank=True),
    f"Up to {COMMENT_MAX_LENGTH} characters once stripped of whitespace, line breaks "
    "allowed; blank means no comment.",
)


def _whole_number(value: Any) -> Any:
    """``7.0`` is the integer 7, as in JSON Schema; ``7.5``, ``"7"`` and ``true`` stay what
    they are, for the strict integer check to refuse."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _score_scale_by_kind(schema: dict[str, Any]) -> None:
    """Each kind's scale in the schema itself (JSON Schema's ``if``/``then``), so that a client
    or a test generator built from the OpenAPI document knows exactly what is accepted."""
    schema["allOf"] = [
        {
            "if": {"properties": {"kind": {"const": kind.value}}, "required": ["kind"]},
            "then": {"properties": {"score": {"minimum": scale.lowest, "maximum": scale.highest}}},
        }
        for kind, scale in SCALES.items()
    ]


class ResponseCreate(BaseModel):
    """A survey answer as a platform reports it. Unknown fields are refused, so a misspelt
    ``comment`` is an error rather than a silently lost remark."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_score_scale_by_kind)

    kind: SurveyKind = Field(
        description="The question asked: `nps` (0-10), `csat` (1-5) or `ces` (1-7)."
    )
    score: Annotated[int, BeforeValidator(_whole_number)] = Field(
        strict=True,
        description="The answer, on the kind's scale.",
        json_schema_extra={
            "minimum": min(scale.lowest for scale in SCALES.values()),
            "maximum": max(scale.highest for scale in SCALES.values()),
        },
    )
    comment: Comment = Field(
        default=None,
        description="The customer's own words, if any.",
        json_schema_extra={"anyOf": [_COMMENT_SCHEMA.json_schema, {"type": "null"}]},
    )
    customer_ref: CustomerRef = Field(
        description="The caller's reference for the customer (an id, not personal data)."
    )
    channel: Channel = Field(description="Where the answer was given: `email`, `web`, `sms`…")
    task_id: uuid.UUID | None = Field(
        default=None,
        description=(
            "The routing task the answer is about (a CSAT after a contact), if the platform "
            "knows it: routing takes a CSAT on a completed task into its agent's proficiency "
            "learning."
        ),
    )
    invitation_token: InvitationToken | None = Field(
        default=None,
        description=(
            "The token of the invitation the customer answers (from "
            "`cx.feedback.survey.invited.v1`): the response is linked to the invitation and "
            "takes its task and agent where it names none. An unknown, expired or other "
            "tenant's token is refused (422) and nothing is stored."
        ),
    )
    occurred_at: UtcDateTime | None = Field(
        default=None,
        description=(
            "When the customer answered; without an offset it is taken as UTC. Not in the "
            "future (up to 5 minutes ahead is taken as clock skew). Defaults to the time of "
            "receipt."
        ),
    )
    customer_tier: Name | None = Field(
        default=None,
        description=(
            "The customer's tier as the platform knows it (`gold`, `standard`…): case rules "
            "may open cases by tier (a case carries it to routing), and real-time alerts "
            "watch named tiers."
        ),
    )

    @field_validator("score")
    @classmethod
    def _score_on_the_kinds_scale(cls, score: int, info: ValidationInfo) -> int:
        kind = info.data.get("kind")
        if kind is None:  # the kind is itself invalid, and its own error says so
            return score
        scale = SCALES[kind]
        if not scale.contains(score):
            raise PydanticCustomError(
                "score_out_of_range",
                "must be from {lowest} to {highest} for kind '{kind}'",
                {"kind": kind.value, "lowest": scale.lowest, "highest": scale.highest},
            )
        return score

    @field_validator("occurred_at")
    @classmethod
    def _not_in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value > datetime.now(UTC) + CLOCK_SKEW:
            raise PydanticCustomError("datetime_in_future", "must not be in the future")
        return value


class SentimentPublic(BaseModel):
    model_config = ConfigDict(frozen=True)

    label: SentimentLabel
    score: float = Field(description="-1 (angry) to 1 (delighted).")
    confidence: float = Field(description="0 to 1.")


class TopicTagPublic(BaseModel):
    model_config = ConfigDict(frozen=True)

    topic: str
    confidence: float
    owner: str | None = Field(description="The team that owns the topic in the taxonomy.")
    sentiment: SentimentPublic | None = Field(
        description="The sentiment of the clauses where the topic was found."
    )


class EnrichmentPublic(BaseModel):
    """What the service read in a response's comment when it arrived."""

    model_config = ConfigDict(frozen=True)

    language: str = Field(description="ISO 639-1, or `und` when it cannot be told.")
    sentiment: SentimentPublic | None = Field(
        description="None without a comment, or for a comment not in English."
    )
    topics: list[TopicTagPublic]
    needs_review: bool
    review_reasons: list[str] = Field(description="Why a person should look at it.")
    redactions: dict[str, int] = Field(
        description="Personal data removed from the comment, by kind (`email`, `phone`…)."
    )
    taxonomy_version: int = Field(description="The taxonomy version the topics come from.")


class ResponsePublic(BaseModel):
    """A stored survey answer; ``comment`` is redacted."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: SurveyKind
    score: int
    comment: str | None = Field(description="The comment, personal data replaced (`[EMAIL]`).")
    customer_ref: str
    channel: str
    task_id: uuid.UUID | None = None
    customer_tier: str | None = None
    agent_id: uuid.UUID | None = None
    invitation_id: uuid.UUID | None = None
    occurred_at: datetime
    received_at: datetime
    enrichment: EnrichmentPublic


class ResponsePage(BaseModel):
    """One page of responses, newest first; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[ResponsePublic]
    next_cursor: uuid.UUID | None = Field(
        description="The cursor of the next page; null on the last page."
    )


class RawComment(BaseModel):
    """A response's comment as the customer wrote it, kept only when the tenant asks for it."""

    response_id: uuid.UUID
    raw_comment: str | None


class FeedbackSettingsPublic(BaseModel):
    """What a tenant chose about its feedback data."""

    model_config = ConfigDict(extra="forbid")

    keep_raw_comments: bool = Field(
        strict=True,
        default=False,
        description=(
            "Keep each comment as written beside the redacted one, readable only by admins. "
            "Off by default: the raw comment is then never stored."
        ),
    )


class TaxonomyDocument(BaseModel):
    """A tenant's topics, in the `--taxonomy` file format of `cxops feedback analyze`: with
    `extends_default` a topic named like a built-in one adds to it, `remove` drops built-in
    topics; each topic's `owner` is the team that owns it."""

    model_config = ConfigDict(extra="forbid")

    extends_default: StrictBool = True
    remove: list[str] = Field(default_factory=list, max_length=500)
    topics: list[TopicDefinition] = Field(default_factory=list, max_length=500)

    @field_validator("remove")
    @classmethod
    def _removes_built_in_topics(cls, remove: list[str], info: ValidationInfo) -> list[str]:
        if not info.data.get("extends_default", True):
            if remove:
                raise PydanticCustomError(
                    "remove_without_default", "only a taxonomy that extends the default removes"
                )
            return remove
        unknown = [name for name in remove if DEFAULT_TAXONOMY.topic(name) is None]
        if unknown:
            raise PydanticCustomError(
                "unknown_topic", "no built-in topic {unknown}", {"unknown": ", ".join(unknown)}
            )
        return remove

    @field_validator("topics")
    @classmethod
    def _each_topic_once(cls, topics: list[TopicDefinition]) -> list[TopicDefinition]:
        counts = Counter(topic.name for topic in topics)
        twice = sorted(name for name, n in counts.items() if n > 1)
        if twice:
            raise PydanticCustomError(
                "duplicate_topic", "topics defined twice: {twice}", {"twice": ", ".join(twice)}
            )
        return topics


class TaxonomyPublic(TaxonomyDocument):
    version: int = Field(description="0 is the built-in taxonomy, before any PUT.")
    updated_at: datetime | None
    updated_by: str | None
    effective: list[TopicDefinition] = Field(
        description="The topics in force: the document applied to the built-in taxonomy."
    )


class LabelCreate(BaseModel):
    """A reviewer's reading of a response: its sentiment and every topic it is about."""

    model_config = ConfigDict(extra="forbid")

    sentiment: SentimentLabel | None = Field(
        description="null when the comment has no sentiment to speak of (or none at all)."
    )
    topics: list[Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]+$", max_length=64)]] = Field(
        max_length=50, description="Topics of the tenant's taxonomy; [] for none."
    )


class LabelPublic(BaseModel):
    response_id: uuid.UUID
    sentiment: SentimentLabel | None
    topics: list[str]
    model_sentiment: SentimentLabel | None
    model_topics: list[str]
    taxonomy_version: int
    labelled_by: str | None
    labelled_at: datetime


class ReviewQueuePage(BaseModel):
    """Responses flagged for review and not labelled yet, oldest first."""

    items: list[ResponsePublic]
    next_cursor: uuid.UUID | None


class IntervalPublic(BaseModel):
    low: float
    high: float
    level: float


class AgreementPublic(BaseModel):
    n: int = Field(description="Judgements compared.")
    accuracy: float | None
    kappa: float | None = Field(description="Cohen's kappa; null when undefined.")
    kappa_interval: IntervalPublic | None


class TopicAgreementPublic(BaseModel):
    topic: str
    agreement: AgreementPublic
    both: int
    model_only: int = Field(description="Tagged by the rules, removed by the reviewer.")
    reviewer_only: int = Field(description="Added by the reviewer: the rules missed it.")
    neither: int
    disagreements: int


class CalibrationPublic(BaseModel):
    """Model against reviewers over the labels given in ``[from, to)``."""

    model_config = ConfigDict(populate_by_name=True)

    from_: datetime | None = Field(alias="from")
    to: datetime | None
    labelled: int
    sentiment: AgreementPublic
    sentiment_confusion: dict[str, dict[str, int]] = Field(
        description="`confusion[model][reviewer]`: how often the model said one label and the "
        "reviewer another."
    )
    sentiment_unpaired: int = Field(
        description="Labels where the model or the reviewer gave no sentiment."
    )
    topics: list[TopicAgreementPublic]
    disagreeing: list[str] = Field(
        description="Topics whose rules most often disagree with reviewers, worst first."
    )


EXTERNAL_ID_MAX_LENGTH = 128


class ImportRow(ResponseCreate):
    """One row of a bulk import: a response as for `POST /v1/feedback/responses`, plus the
    caller's own id for it."""

    external_id: Annotated[str, SingleLine(EXTERNAL_ID_MAX_LENGTH)] | None = Field(
        default=None,
        description=(
            "The caller's id for the answer, unique per tenant: a row whose id is stored already "
            "is counted as a duplicate and stores nothing, so a retried import is harmless."
        ),
    )


class ImportRejection(BaseModel):
    line: int = Field(description="The row's line in the body (in a CSV the header is line 1).")
    errors: list[dict[str, str]] = Field(description="`{field, message, code}` per problem.")


class ImportResult(BaseModel):
    accepted: int = Field(description="Rows stored (and announced) by this call.")
    duplicates: int = Field(
        description="Rows whose `external_id` is stored already, or came earlier in the body."
    )
    rejected: list[ImportRejection]


# ------------------------------------------------------------------------ survey invitations

SURVEY_KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
SurveyKey = Annotated[str, StringConstraints(pattern=SURVEY_KEY_PATTERN)]
ConditionField = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z_][A-Za-z0-9_]{0,63})?$")
]
ContactAddress = Annotated[str, SingleLine(320)]
ExternalId = Annotated[str, SingleLine(255)]
ExitEvent = Literal["cx.routing.task.completed.v1", "cx.journey.interaction.recorded.v1"]


class ConditionIn(BaseModel):
    """``payload[field] <op> value`` on the exit event, e.g.
    `{"field": "channel", "op": "in", "value": ["chat", "voice"]}`."""

    model_config = ConfigDict(extra="forbid")

    field: ConditionField = Field(
        description=(
            "A field of the exit event's payload (see the README's table), or "
            "`attributes.<name>` on a journey interaction."
        )
    )
    op: invitation_rules.Op = Field(
        description=(
            "`eq`, `ne` (one value), `in` (a non-empty list), `gte`, `lte` (a number). A field "
            "the event lacks meets only `ne`."
        )
    )
    value: JsonValue


class ExitPointIn(BaseModel):
    """An event that triggers the survey when all its conditions hold."""

    model_config = ConfigDict(extra="forbid")

    event: ExitEvent = Field(
        description=(
            "`cx.routing.task.completed.v1` (a contact ended) or "
            "`cx.journey.interaction.recorded.v1` (an interaction a platform reported)."
        )
    )
    activity: Annotated[str, SingleLine(64)] | None = Field(
        default=None,
        description="For a journey interaction: only interactions of this activity (its type).",
    )
    conditions: list[ConditionIn] = Field(default_factory=list, max_length=20)

    @field_validator("activity")
    @classmethod
    def _activity_of_interactions_only(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("event") == invitation_rules.TASK_COMPLETED:
            raise PydanticCustomError(
                "activity_not_allowed", "only a journey interaction has an activity"
            )
        return value

    @field_validator("conditions")
    @classmethod
    def _conditions_fit_the_event(
        cls, conditions: list[ConditionIn], info: ValidationInfo
    ) -> list[ConditionIn]:
        event = info.data.get("event")
        if event is None:  # the event is itself invalid, and its own error says so
            return conditions
        for index, condition in enumerate(conditions):
            try:
                invitation_rules.check_condition(
                    event,
                    invitation_rules.Condition(condition.field, condition.op, condition.value),
                )
            except invitation_rules.InvalidCondition as exc:
                raise PydanticCustomError(
                    "invalid_condition",
                    "condition {index}: {reason}",
                    {"index": index, "reason": str(exc)},
                ) from exc
        return conditions


def _hundredths(value: float) -> float:
    if abs(value * 100 - round(value * 100)) > 1e-6:
        raise PydanticCustomError("too_precise", "has at most two decimals")
    return value


class SurveyPut(BaseModel):
    """A survey as ``PUT /surveys/{key}`` takes it: the whole of it, every time."""

    model_config = ConfigDict(extra="forbid")

    kind: SurveyKind = Field(description="`nps`, `csat` or `ces`.")
    exit_points: list[ExitPointIn] = Field(
        default_factory=list,
        max_length=20,
        description="What triggers the survey; none for a survey sent only by hand.",
    )
    channels: list[Channel] | None = Field(
        default=None,
        min_length=1,
        description=(
            "The contact channels an invitation may go by (`email`, `sms`…); an exit point "
            "whose contact uses another is `no_contact_channel`. Null: any."
        ),
    )
    delay_seconds: int = Field(
        strict=True,
        default=0,
        ge=0,
        le=30 * 86400,
        description="How long after the exit point to send.",
    )
    sampling_percentage: Annotated[float, AfterValidator(_hundredths)] = Field(
        strict=True,
        default=100,
        ge=0,
        le=100,
        description="The share of exit points invited, to 0.01%, chosen by a stable hash.",
    )
    quota_per_day: int | None = Field(
        strict=True,
        default=None,
        ge=1,
        description="At most this many invitations per UTC day; null: none.",
    )
    recontact_days: int | None = Field(
        strict=True,
        default=None,
        ge=0,
        le=365,
        description=(
            "Invite a customer only if no survey invited them in this many days; null: the "
            "default, 7."
        ),
    )
    valid_days: int = Field(
        strict=True,
        default=14,
        ge=1,
        le=90,
        description="How long after sending the token is accepted.",
    )


class SurveyPublic(SurveyPut):
    key: str
    version: int = Field(description="1 when created, one more at each change.")
    created_at: datetime
    updated_at: datetime


class SurveyList(BaseModel):
    items: list[SurveyPublic]


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Channel = Field(description="How to reach the customer: `email`, `sms`, `chat`…")
    address: ContactAddress | None = Field(
        default=None,
        description="The address on that channel, when the platform does not know it itself.",
    )


class InvitationCreate(BaseModel):
    """A manual invitation: it follows the same rules as an exit point's."""

    model_config = ConfigDict(extra="forbid")

    survey_key: SurveyKey
    customer_ref: CustomerRef
    contact: Contact | None = Field(
        default=None, description="Without one the invitation is `no_contact_channel`."
    )
    task_id: uuid.UUID | None = None
    agent_id: uuid.UUID | None = None
    external_id: ExternalId | None = Field(
        default=None,
        description=(
            "The caller's id for this invitation: a retry with the same one answers the first "
            "result and decides nothing again. It is also what sampling hashes."
        ),
    )
    force: bool = Field(
        strict=True,
        default=False,
        description="Skip sampling (only sampling: recontact and quota still apply).",
    )


class InvitationPublic(BaseModel):
    """An invitation, or an exit point that did not become one and why (``status``)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    survey_key: str
    kind: SurveyKind
    status: invitation_rules.Status
    customer_ref: str | None
    contact_channel: str | None
    contact_address: str | None
    task_id: uuid.UUID | None
    agent_id: uuid.UUID | None
    source: str = Field(description="The exit event's subject, or `manual`.")
    source_id: str = Field(description="The exit event's id, or the manual one's external id.")
    sample_bucket: int = Field(
        description=(
            "0-9999, from SHA-256 of tenant, survey key and source id: sampled in when below "
            "the survey's percentage times 100."
        )
    )
    forced: bool
    created_at: datetime
    due_at: datetime | None
    expires_at: datetime | None
    sent_at: datetime | None
    responded_at: datetime | None


class InvitationCreated(InvitationPublic):
    """The manual invitation with its token (listed invitations never show one)."""

    token: str | None


class InvitationPage(BaseModel):
    """One page of invitations, newest first; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[InvitationPublic]
    next_cursor: uuid.UUID | None = Field(
        description="The cursor of the next page; null on the last page."
    )


# ---------------------------------------------------------------------- closed-loop cases

CASE_TEXT_MAX_LENGTH = 4000
WHY_MAX_LENGTH = 500
MAX_CASE_RULES = 50
#: The longest SLA clock a tenant may set: a year, in seconds.
MAX_SLA_SECONDS = 366 * 24 * 3600

#: Free text that must say something: a corrective action, a resolution.
CaseText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=CASE_TEXT_MAX_LENGTH),
    AfterValidator(_free_text),
]
Seconds = Annotated[float, Field(strict=True, gt=0, le=MAX_SLA_SECONDS, allow_inf_nan=False)]


class CaseRuleSpec(BaseModel):
    """One rule: every condition given must hold for a response to open a case."""

    model_config = ConfigDict(extra="forbid")

    name: Name = Field(description="Recorded in the case's history when this rule opens it.")
    nps_at_most: int | None = Field(default=None, strict=True, ge=0, le=10)
    csat_at_most: int | None = Field(default=None, strict=True, ge=1, le=5)
    ces_at_least: int | None = Field(default=None, strict=True, ge=1, le=7)
    negative_sentiment_above: float | None = Field(
        strict=True,
        default=None,
        ge=0,
        lt=1,
        description="Negative sentiment with a confidence strictly above this.",
    )
    topics: list[Name] | None = Field(
        default=None, min_length=1, description="Any of the response's topics is one of these."
    )
    tiers: list[Name] | None = Field(
        default=None, min_length=1, description="The customer's tier is one of these."
    )

    @model_validator(mode="after")
    def _a_rule_the_domain_accepts(self) -> "CaseRuleSpec":
        self.to_domain()  # its ValueError becomes a 422 naming this rule
        return self

    def to_domain(self) -> domain.CaseRule:
        return domain.CaseRule(
            name=self.name,
            nps_at_most=self.nps_at_most,
            csat_at_most=self.csat_at_most,
            ces_at_least=self.ces_at_least,
            negative_sentiment_above=self.negative_sentiment_above,
            topics=frozenset(self.topics) if self.topics is not None else None,
            tiers=frozenset(self.tiers) if self.tiers is not None else None,
        )

    @classmethod
    def from_domain(cls, rule: domain.CaseRule) -> "CaseRuleSpec":
        return cls(
            name=rule.name,
            nps_at_most=rule.nps_at_most,
            csat_at_most=rule.csat_at_most,
            ces_at_least=rule.ces_at_least,
            negative_sentiment_above=rule.negative_sentiment_above,
            topics=sorted(rule.topics) if rule.topics is not None else None,
            tiers=sorted(rule.tiers) if rule.tiers is not None else None,
        )


class SlaSpec(BaseModel):
    """The three clocks, in seconds from the negative feedback (or the last reopen)."""

    model_config = ConfigDict(extra="forbid")

    acknowledge_within_seconds: Seconds = Field(default=24 * 3600)
    action_within_seconds: Seconds = Field(default=72 * 3600)
    close_within_seconds: Seconds = Field(default=7 * 24 * 3600)

    def to_domain(self) -> domain.SlaPolicy:
        return domain.SlaPolicy(
            acknowledge_within=timedelta(seconds=self.acknowledge_within_seconds),
            action_within=timedelta(seconds=self.action_within_seconds),
            close_within=timedelta(seconds=self.close_within_seconds),
        )


class CaseRulesUpdate(BaseModel):
    """``PUT /v1/feedback/case-rules``: the whole setting, replacing the previous one."""

    model_config = ConfigDict(extra="forbid")

    rules: list[CaseRuleSpec] = Field(
        min_length=1,
        max_length=MAX_CASE_RULES,
        description="Tried in order; the first that matches opens the case.",
    )
    topic_teams: dict[Name, Name] = Field(
        default_factory=dict, description="Topic -> the team that owns its cases."
    )
    default_team: Name = Field(
        default=DEFAULT_TEAM, description="The team of a case whose topics have no owner."
    )
    sla: SlaSpec = Field(default_factory=SlaSpec)

    @field_validator("rules")
    @classmethod
    def _names_differ(cls, rules: list[CaseRuleSpec]) -> list[CaseRuleSpec]:
        names = [rule.name for rule in rules]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise PydanticCustomError(
                "rule_names_repeat",
                "rule names must differ (the history names the rule): {repeated} repeat",
                {"repeated": ", ".join(repeated)},
            )
        return rules

    def to_domain(self) -> domain.CaseRules:
        return domain.CaseRules(
            rules=tuple(rule.to_domain() for rule in self.rules),
            topic_teams=dict(self.topic_teams),
            default_team=self.default_team,
        )


class CaseRulesPublic(CaseRulesUpdate):
    """A tenant's case setting; ``version`` 0 and no ``updated_at``: the defaults, never set."""

    version: int
    updated_at: datetime | None
    updated_by: str | None


DEFAULT_CASE_RULES = CaseRulesPublic(
    rules=[CaseRuleSpec.from_domain(rule) for rule in DEFAULT_RULES],
    version=0,
    updated_at=None,
    updated_by=None,
)


class AssignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    owner: CustomerRef = Field(description="Who owns the case now: a person or agent reference.")


class RootCauseSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: RootCauseCategory = Field(description="The fishbone's bone.")
    why_chain: list[Annotated[str, SingleLine(WHY_MAX_LENGTH)]] = Field(
        min_length=1, max_length=10, description="The five whys' answers, in order."
    )

    def to_domain(self) -> domain.RootCause:
        return domain.RootCause(category=self.category, why_chain=tuple(self.why_chain))


class ActionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    corrective_action: CaseText
    root_cause: RootCauseSpec


class CloseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resolution: CaseText
    customer_contacted: StrictBool = Field(description="Whether the customer was contacted.")


class ReopenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: CaseText | None = None


class BreachPublic(BaseModel):
    clock: Clock
    round: int
    deadline: datetime


class Deadlines(BaseModel):
    """The current round's deadlines: each clock is breached from its deadline on."""

    acknowledge: datetime
    action: datetime
    close: datetime


class CasePublic(BaseModel):
    """A case as it stands. Action times, texts and the root cause are the current round's (a
    reopen clears them; the history keeps them); ``breaches`` keeps every round's."""

    id: uuid.UUID
    response_id: uuid.UUID
    state: CaseState
    allowed_actions: list[CaseAction]
    rule: str
    team: str
    owner: str | None
    topic: str | None
    customer_ref: str
    tier: str | None
    round: int
    feedback_at: datetime
    opened_at: datetime
    reopened_at: datetime | None
    acknowledged_at: datetime | None
    action_documented_at: datetime | None
    closed_at: datetime | None
    sla: SlaSpec
    deadlines: Deadlines
    next_due_at: datetime | None
    escalated_at: datetime | None
    breached: bool
    breaches: list[BreachPublic]
    corrective_action: str | None
    root_cause: RootCauseSpec | None
    resolution: str | None
    customer_contacted: bool | None
    version: int
    updated_at: datetime


class CasePage(BaseModel):
    """One page of cases, newest first; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[CasePublic]
    next_cursor: uuid.UUID | None


class HistoryPublic(BaseModel):
    action: CaseAction
    by: str
    at: datetime
    from_state: CaseState | None
    to_state: CaseState
    detail: dict[str, Any]


class CaseDetail(BaseModel):
    """A case with the response that opened it (and that response's enrichment, which is part
    of :class:`ResponsePublic` once stored) and its whole history, oldest first."""

    case: CasePublic
    response: ResponsePublic
    history: list[HistoryPublic]


class RootCauseRow(BaseModel):
    category: RootCauseCategory
    topic: str | None
    team: str
    count: int
    share: float
    cumulative_share: float
    recurrences: int = Field(
        description="Cases of this cause opened within 30 days after one of its cases closed."
    )


class RootCausePareto(BaseModel):
    start: datetime
    end: datetime
    total: int
    items: list[RootCauseRow]


# --- live complaint alerts --------------------------------------------------------------------


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"


class RealtimeRuleDocument(BaseModel):
    """Alert a team at once on one negative answer from a customer of a named tier."""

    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool = False
    tiers: list[Name] = Field(
        default_factory=list, max_length=50, description="The `customer_tier` values that alert."
    )
    min_confidence: float = Field(
        strict=True,
        default=0.5,
        ge=0,
        le=1,
        description="The least sentiment confidence that alerts.",
    )


class PeriodicRuleDocument(BaseModel):
    """The hourly and daily spike detector's settings for the tenant."""

    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool = True
    alpha: float = Field(
        strict=True,
        default=0.001,
        gt=0,
        le=0.05,
        description="False-alarm level of the tail tests.",
    )
    min_count: int = Field(
        strict=True,
        default=5,
        ge=1,
        le=100_000,
        description="Fewest complaints in a period that alert.",
    )


class AlertRulesDocument(BaseModel):
    """A tenant's alert rules; every part optional, the defaults otherwise."""

    model_config = ConfigDict(extra="forbid")

    realtime: RealtimeRuleDocument = Field(default_factory=RealtimeRuleDocument)
    periodic: PeriodicRuleDocument = Field(default_factory=PeriodicRuleDocument)


class AlertRulesPublic(AlertRulesDocument):
    updated_at: datetime | None = Field(description="null: the defaults, never set.")
    updated_by: str | None


class AlertPublic(BaseModel):
    """A complaint alert. ``granularity`` is `hour`, `day` or `realtime`; ``segment`` is `all`
    or `tier:<customer_tier>`."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    granularity: str
    topic: str | None = Field(description="null for a real-time alert with no negative topic.")
    segment: str
    team: str = Field(description="The team the alert is for: the topic's owner, or `cases`.")
    period_start: datetime
    period_end: datetime
    test: str = Field(description="`poisson-tail`, `poisson-cusum`, `ewma` or `realtime`.")
    p_value: float | None = Field(description="Corrected; null for `poisson-cusum`, `realtime`.")
    observed: int
    expected: float | None = Field(description="null for `realtime`.")
    statistic: float | None = Field(description="The CUSUM or the EWMA rate, when one alerted.")
    threshold: float | None = Field(description="Its threshold or control limit.")
    reason: str
    response_id: uuid.UUID | None = Field(description="The response a real-time alert is about.")
    status: AlertStatus
    raised_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None


class AlertPage(BaseModel):
    """One page of alerts, newest first; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[AlertPublic]
    next_cursor: uuid.UUID | None


class AlertResponsePublic(BaseModel):
    """A response counted in an alert."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: SurveyKind
    score: int
    comment: str | None = Field(description="Redacted.")
    sentiment: SentimentLabel | None = Field(validation_alias="sentiment_label")
    customer_tier: str | None
    occurred_at: datetime


class AlertDetail(AlertPublic):
    responses: list[AlertResponsePublic] = Field(
        description="The responses behind the alert, newest first, at most 100."
    )
    responses_total: int = Field(description="How many responses are behind it in all.")


class EvaluationPublic(BaseModel):
    """What an evaluation raised (alerts already raised for those periods are not repeated)."""

    raised: list[AlertPublic]
