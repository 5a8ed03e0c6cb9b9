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
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from cxops.common.validation import SingleLine, UtcDateTime, text_pattern, text_schema
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


class ResponsePage(BaseModel):
    """One page of responses, newest first; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[ResponsePublic]
    next_cursor: uuid.UUID | None = Field(
        description="The cursor of the next page; null on the last page."
    )
