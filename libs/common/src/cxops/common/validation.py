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

:class:`SingleLine` is the one type for a name, a reference or a label: stripped of
whitespace, 1 to ``max_length`` characters, no control characters (a caller's bug, and
PostgreSQL refuses NUL outright), with a schema ``pattern`` that admits exactly that.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, GetCoreSchemaHandler, GetJsonSchemaHandler, WithJsonSchema
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

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


# What the text validators accept, stated as JSON Schema patterns for the OpenAPI document, so
# that the schema admits exactly what is accepted (a property test holds the two together).
# Stripping removes Unicode White_Space at both ends (some of it control characters, which are
# therefore allowed there); the length limits apply to what is left, so they are in the
# patterns too, not in maxLength.
STRIPPED = r"[\x09-\x0d\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
VISIBLE = r"[^\x00-\x20\x7f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
SINGLE_LINE = r"[^\x00-\x1f\x7f]"


def text_pattern(inner: str, max_length: int, *, blank: bool) -> str:
    """Text whose stripped content is 1 to ``max_length`` characters of ``inner`` that starts
    and ends visibly (or, with ``blank``, nothing at all)."""
    content = f"{VISIBLE}(?:{inner}{{0,{max_length - 2}}}{VISIBLE})?"
    if blank:
        content = f"(?:{content})?"
    return f"^{STRIPPED}*{content}{STRIPPED}*$"


def text_schema(pattern: str, description: str) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "pattern": pattern, "description": description})


def no_control_characters(value: str) -> str:
    """Single-line text has no control characters: they are a caller's bug (and PostgreSQL
    refuses NUL outright), so they are refused here rather than failing in the database."""
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        raise PydanticCustomError("control_characters", "must not contain control characters")
    return value


@dataclass(frozen=True, slots=True)
class SingleLine:
    """``Annotated[str, SingleLine(64)]``: one line of text, 1 to ``max_length`` characters once
    stripped of whitespace, no control characters; its schema's pattern says exactly that."""

    max_length: int

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            no_control_characters,
            core_schema.str_schema(strip_whitespace=True, min_length=1, max_length=self.max_length),
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "type": "string",
            "pattern": text_pattern(SINGLE_LINE, self.max_length, blank=False),
            "description": f"One line, 1 to {self.max_length} characters once stripped of "
            "whitespace.",
        }
