"""Request and response bodies of ``/v1/webhooks``."""

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool

from cxops.gateway.event_types import (
    MAX_PATTERN_LENGTH,
    PATTERN_SCHEMA,
    InvalidPattern,
    parse_patterns,
)
from cxops.gateway.webhooks.retries import DeliveryStatus

URL_MAX_LENGTH = 2048


def _valid_pattern(value: str) -> str:
    """An event type or a ``prefix.*`` wildcard (the error names the entry: ``event_types.1``)."""
    try:
        parse_patterns([value])
    except InvalidPattern as exc:
        raise ValueError(str(exc)) from exc
    return value.strip()


def _without_duplicates(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


EventTypes = Annotated[
    list[
        Annotated[
            str,
            Field(pattern=PATTERN_SCHEMA, max_length=MAX_PATTERN_LENGTH),
            AfterValidator(_valid_pattern),
        ]
    ],
    Field(
        min_length=1,
        max_length=100,
        description="Exact types (`cx.feedback.case.opened.v1`) or wildcards (`cx.routing.*`).",
        examples=[["cx.feedback.case.opened.v1", "cx.routing.*"]],
    ),
    AfterValidator(_without_duplicates),
]
Url = Annotated[
    str,
    Field(
        min_length=1,
        max_length=URL_MAX_LENGTH,
        pattern=r"^https?://[^/?#\s]+",
        description=(
            "An http(s) URL; outside development, https to a public address (checked when it "
            "is saved and again at every delivery, after DNS resolution)."
        ),
        examples=["https://hooks.example.com/cxops"],
    ),
]


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url
    event_types: EventTypes
    description: str = Field(default="", max_length=500)


class EndpointUpdate(BaseModel):
    """Only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    event_types: EventTypes | None = None
    description: str | None = Field(default=None, max_length=500)
    enabled: StrictBool | None = Field(
        default=None, description="false pauses deliveries; true resumes (also after a 410)."
    )


class Endpoint(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    event_types: list[str]
    description: str
    enabled: bool
    disabled_reason: str | None = Field(
        description="Why the gateway disabled it (the receiver answered 410 Gone)."
    )
    previous_secret_expires_at: datetime | None = Field(
        description="Until then, the secret before the last rotation signs too."
    )
    created_at: datetime
    updated_at: datetime


class CreatedEndpoint(Endpoint):
    secret: str = Field(description="The signing secret (`whsec_…`). Shown this once.")


class RotatedSecret(BaseModel):
    endpoint: Endpoint
    secret: str = Field(description="The new signing secret (`whsec_…`). Shown this once.")
    previous_secret_expires_at: datetime = Field(
        description="Until then every delivery is signed with both the new and the previous "
        "secret, so receivers can switch without missing one."
    )
    overlap_seconds: float


class EndpointList(BaseModel):
    items: list[Endpoint]


class Delivery(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: str = Field(description="The event's id: the `webhook-id` header of every attempt.")
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_response_code: int | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None


class DeliveryPage(BaseModel):
    items: list[Delivery]
    next_cursor: uuid.UUID | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page."
    )
