"""The ``from``/``to`` query range that reports over time take."""

from datetime import datetime
from typing import Annotated

from fastapi import Query

from cxops.common.errors import Problem
from cxops.common.validation import UtcDateTime

From = Annotated[UtcDateTime | None, Query(alias="from", description="From this time on.")]
To = Annotated[UtcDateTime | None, Query(alias="to", description="Before this time.")]


def ordered(start: datetime | None, end: datetime | None) -> None:
    """Refuse a range whose ``to`` does not come after its ``from`` (422 naming ``to``)."""
    if start is not None and end is not None and end <= start:
        raise Problem(
            422,
            "`to` must come after `from`.",
            slug="validation-error",
            title="Validation failed",
            errors=[
                {"field": "to", "in": "query", "message": "must be after from", "code": "range"}
            ],
        )
