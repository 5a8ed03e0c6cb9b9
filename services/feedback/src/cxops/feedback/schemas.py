"""What callers send and what they get back; the tables in :mod:`cxops.feedback.models` are
never exposed as they are."""

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from cxops.common.validation import SingleLine, UtcDateTime, text_pattern, text_schema
from cxops.feedback.domain.sentiment import SentimentLabel
from cxops.feedback.domain.topics import DEFAULT_TAXONOMY, TopicDefinition
from cxops.stats.scales import SCALES, SurveyKind

#: How far in the future ``occurred_at`` may be: the caller's clock may run a little ahead.
CLOCK_SKEW = timedelta(minutes=5)

COMMENT_MAX_LENGTH = 4000
CUSTOMER_REF_MAX_LENGTH = 128
CHANNEL_MAX_LENGTH = 64
CUSTOMER_TIER_MAX_LENGTH = 32

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
Channel = Annotated[str, SingleLine(CHANNEL_MAX_LENGTH)]
CustomerTier = Annotated[str, SingleLine(CUSTOMER_TIER_MAX_LENGTH)]
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
    customer_tier: CustomerTier | None = Field(
        default=None,
        description=(
            "The customer's tier or segment in the platform (`gold`, `smb`…): case rules and "
            "real-time alerts may depend on it."
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

    extends_default: bool = True
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


# --- live complaint alerts --------------------------------------------------------------------


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"


class RealtimeRuleDocument(BaseModel):
    """Alert a team at once on one negative answer from a customer of a named tier."""

    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool = False
    tiers: list[CustomerTier] = Field(
        default_factory=list, max_length=50, description="The `customer_tier` values that alert."
    )
    min_confidence: float = Field(
        default=0.5, ge=0, le=1, description="The least sentiment confidence that alerts."
    )


class PeriodicRuleDocument(BaseModel):
    """The hourly and daily spike detector's settings for the tenant."""

    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool = True
    alpha: float = Field(
        default=0.001, gt=0, le=0.05, description="False-alarm level of the tail tests."
    )
    min_count: int = Field(
        default=5, ge=1, le=100_000, description="Fewest complaints in a period that alert."
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
