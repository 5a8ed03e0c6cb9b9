"""What callers send and what they get back; the tables in :mod:`cxops.feedback.models` are
never exposed as they are."""

import uuid
from datetime import UTC, datetime, timedelta
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
    model_validator,
)
from pydantic_core import PydanticCustomError

from cxops.common.validation import SingleLine, UtcDateTime, text_pattern, text_schema
from cxops.feedback.domain import cases as domain
from cxops.feedback.domain.cases import (
    DEFAULT_RULES,
    DEFAULT_TEAM,
    CaseAction,
    CaseState,
    Clock,
    RootCauseCategory,
)
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
            "may open cases by tier, and a case carries it to routing."
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


class ResponsePublic(BaseModel):
    """A stored survey answer."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: SurveyKind
    score: int
    comment: str | None
    customer_ref: str
    channel: str
    task_id: uuid.UUID | None = None
    occurred_at: datetime
    received_at: datetime
    customer_tier: str | None = None


class ResponsePage(BaseModel):
    """One page of responses, newest first; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[ResponsePublic]
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
Seconds = Annotated[float, Field(gt=0, le=MAX_SLA_SECONDS, allow_inf_nan=False)]


class CaseRuleSpec(BaseModel):
    """One rule: every condition given must hold for a response to open a case."""

    model_config = ConfigDict(extra="forbid")

    name: Name = Field(description="Recorded in the case's history when this rule opens it.")
    nps_at_most: int | None = Field(default=None, strict=True, ge=0, le=10)
    csat_at_most: int | None = Field(default=None, strict=True, ge=1, le=5)
    ces_at_least: int | None = Field(default=None, strict=True, ge=1, le=7)
    negative_sentiment_above: float | None = Field(
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
