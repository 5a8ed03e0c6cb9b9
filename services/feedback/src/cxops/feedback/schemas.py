"""What callers send and what they get back; the tables in :mod:`cxops.feedback.models` are
never exposed as they are."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from cxops.common.validation import UtcDateTime
from cxops.feedback.domain.scales import SCALES, ResponseKind

#: How far in the future ``occurred_at`` may be: the caller's clock may run a little ahead.
CLOCK_SKEW = timedelta(minutes=5)

COMMENT_MAX_LENGTH = 4000
CUSTOMER_REF_MAX_LENGTH = 128
CHANNEL_MAX_LENGTH = 64

_LINE_BREAKS = frozenset("\t\n\r")


def _no_control_characters(value: str) -> str:
    """Identifiers are single-line text: control characters are a caller's bug (and PostgreSQL
    refuses NUL outright), so they are refused here rather than failing in the database."""
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        raise PydanticCustomError("control_characters", "must not contain control characters")
    return value


def _free_text(value: str | None) -> str | None:
    """Free text keeps tabs and line breaks but no other control character; blank means none."""
    if value is None:
        return None
    if any((ord(char) < 0x20 and char not in _LINE_BREAKS) or ord(char) == 0x7F for char in value):
        raise PydanticCustomError(
            "control_characters", "must not contain control characters other than line breaks"
        )
    return value or None


CustomerRef = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=CUSTOMER_REF_MAX_LENGTH),
    AfterValidator(_no_control_characters),
]
Channel = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=CHANNEL_MAX_LENGTH),
    AfterValidator(_no_control_characters),
]
Comment = Annotated[
    str | None,
    StringConstraints(strip_whitespace=True, max_length=COMMENT_MAX_LENGTH),
    AfterValidator(_free_text),
]


class ResponseCreate(BaseModel):
    """A survey answer as a platform reports it. Unknown fields are refused, so a misspelt
    ``comment`` is an error rather than a silently lost remark."""

    model_config = ConfigDict(extra="forbid")

    kind: ResponseKind = Field(
        description="The question asked: `nps` (0-10), `csat` (1-5) or `ces` (1-7)."
    )
    score: int = Field(strict=True, description="The answer, on the kind's scale.")
    comment: Comment = Field(default=None, description="The customer's own words, if any.")
    customer_ref: CustomerRef = Field(
        description="The caller's reference for the customer (an id, not personal data)."
    )
    channel: Channel = Field(description="Where the answer was given: `email`, `web`, `sms`…")
    occurred_at: UtcDateTime | None = Field(
        default=None,
        description=(
            "When the customer answered; without an offset it is taken as UTC. "
            "Defaults to the time of receipt."
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
    kind: ResponseKind
    score: int
    comment: str | None
    customer_ref: str
    channel: str
    occurred_at: datetime
    received_at: datetime


class ResponsePage(BaseModel):
    """One page of responses, newest first; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[ResponsePublic]
    next_cursor: uuid.UUID | None = Field(
        description="The cursor of the next page; null on the last page."
    )
