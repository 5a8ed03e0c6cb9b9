"""Input types every API shares, so that each service, and each API still to come, refuses the
same things the same way: a 422 problem+json naming the field, never a 500.

:data:`UtcDateTime` is the one type for a date and time in a request, in a body as in a query:

- an RFC 3339 date-time string: ``2026-01-15T09:30:00Z``, ``2026-01-15T10:30:00.25+01:00``
  (``T`` or a space between date and time; seconds required; any fraction; ``Z`` or ``±hh:mm``).
  Without an offset the time is taken as UTC, as every time in cxops is;
- converted to UTC, so the code behind sees one kind of value;
- a number is refused, also as a string (``1767225600``, ``0``): pydantic alone would read it as
  a Unix timestamp, which no caller of ours means and which the schema does not allow;
- a time that cannot be converted is refused: Python's datetimes end at years 1 and 9999, so on
  the first and last day of that range (0001-01-01 and 9999-12-31) the time must be given in UTC
  (``Z`` or ``±00:00``): ``0001-01-01T00:00:00+01:00`` is before the first representable instant.

The OpenAPI schema says all of it (``format: date-time`` and a ``pattern`` that is exactly what
is accepted), so a generated client or a schema-driven test tool agrees with the server.
"""

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

_SHAPE = r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})?"
#: What :data:`UtcDateTime` accepts, as a regular expression (the same in Python and in the
#: ECMA-262 dialect of JSON Schema): the shape, less a non-UTC offset on the two edge days.
DATE_TIME_PATTERN = (
    r"^(?!0001-01-01[Tt ][^+]*\+(?!00:00)|9999-12-31[Tt ][^-]*-(?!00:00))" + _SHAPE + "$"
)
_SHAPE_RE = re.compile(_SHAPE)
_PATTERN_RE = re.compile(DATE_TIME_PATTERN)

EXAMPLE = "2026-01-15T09:30:00Z"


def _out_of_range() -> PydanticCustomError:
    return PydanticCustomError(
        "datetime_out_of_range",
        "is out of range: times run from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z, "
        "and on those two days they must be given in UTC",
    )


def parse_utc_datetime(value: Any) -> datetime:
    """``value`` as a timezone-aware UTC datetime, or a ``PydanticCustomError`` saying why not.

    Strings are read as described in this module's documentation; a ``datetime`` (from Python
    callers) is converted the same way; anything else, numbers first, is refused.
    """
    if isinstance(value, str):
        if not _SHAPE_RE.fullmatch(value):
            raise PydanticCustomError(
                "datetime_format",
                "must be an RFC 3339 date-time, such as {example}",
                {"example": EXAMPLE},
            )
        if not _PATTERN_RE.fullmatch(value):
            raise _out_of_range()
        try:
            moment = datetime.fromisoformat(value.upper())
        except ValueError as exc:
            raise PydanticCustomError(
                "datetime_format",
                "is not a valid date-time ({reason}); an example: {example}",
                {"reason": str(exc), "example": EXAMPLE},
            ) from None
    elif isinstance(value, datetime):
        moment = value
    else:
        raise PydanticCustomError(
            "datetime_type",
            "must be an RFC 3339 date-time string, such as {example}, not {kind}",
            {"example": EXAMPLE, "kind": type(value).__name__},
        )
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise _out_of_range() from None


#: A date and time in a request (body or query): see this module's documentation.
UtcDateTime = Annotated[
    datetime,
    BeforeValidator(parse_utc_datetime),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": DATE_TIME_PATTERN,
            "description": (
                "An RFC 3339 date-time, converted to UTC; without an offset it is taken as UTC. "
                "On 0001-01-01 and 9999-12-31, the edges of the range, only in UTC."
            ),
            "examples": [EXAMPLE],
        }
    ),
]
