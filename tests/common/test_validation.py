"""The one date-time type of every API: RFC 3339 in, UTC out, a 422 for anything else."""

from datetime import UTC, datetime, timedelta, timezone

import jsonschema_rs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from cxops.common.validation import DATE_TIME_PATTERN, UtcDateTime


class Window(BaseModel):
    at: UtcDateTime


SCHEMA = Window.model_json_schema()["properties"]["at"]
SCHEMA_VALIDATOR = jsonschema_rs.validator_for(SCHEMA)


def parse(value: object) -> datetime:
    return Window(at=value).at  # type: ignore[arg-type]


def refusal(value: object) -> str:
    with pytest.raises(ValidationError) as caught:
        parse(value)
    [error] = caught.value.errors()
    assert error["loc"] == ("at",)
    return str(error["type"])


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2026-01-15T10:30:00+01:00", datetime(2026, 1, 15, 9, 30, tzinfo=UTC)),
        ("2026-01-15t09:30:00.25z", datetime(2026, 1, 15, 9, 30, 0, 250_000, tzinfo=UTC)),
        ("2026-01-15 09:30:00-00:00", datetime(2026, 1, 15, 9, 30, tzinfo=UTC)),
        ("2026-01-15T09:30:00", datetime(2026, 1, 15, 9, 30, tzinfo=UTC)),  # no offset: UTC
        ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=UTC)),
        ("0001-01-01T00:00:00-01:00", datetime(1, 1, 1, 1, tzinfo=UTC)),
        ("9999-12-31T23:59:59.999999+00:00", datetime.max.replace(tzinfo=UTC)),
        ("9999-12-31T22:00:00+01:00", datetime(9999, 12, 31, 21, tzinfo=UTC)),
    ],
)
def test_rfc_3339_comes_out_in_utc(text: str, instant: datetime) -> None:
    parsed = parse(text)
    assert parsed == instant and parsed.tzinfo is UTC
    assert SCHEMA_VALIDATOR.is_valid(text)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        # The conversion to UTC overflows (issue 12, defect 2: these were 500s).
        ("0001-01-01T00:00:00+01:00", "datetime_out_of_range"),
        ("9999-12-31T23:59:59-01:00", "datetime_out_of_range"),
        # The edge days only in UTC, even where the instant would fit: one simple rule.
        ("0001-01-01T12:00:00+01:00", "datetime_out_of_range"),
        # Numbers are not times (defect 6), nor are other shapes.
        (0, "datetime_type"),
        (1767225600, "datetime_type"),
        (1767225600.5, "datetime_type"),
        (True, "datetime_type"),
        (None, "datetime_type"),
        ("0", "datetime_format"),
        ("1767225600", "datetime_format"),
        ("2026-01-15", "datetime_format"),
        ("2026-01-15T09:30Z", "datetime_format"),
        ("2026-01-15T09:30:00+0100", "datetime_format"),
        ("yesterday", "datetime_format"),
        (" 2026-01-15T09:30:00Z", "datetime_format"),
        ("2026-01-15T09:30:00Z\n", "datetime_format"),
        ("2026-02-30T09:30:00Z", "datetime_format"),
        ("2026-01-15T24:00:00Z", "datetime_format"),
        ("2026-01-15T09:30:00+24:00", "datetime_format"),
    ],
)
def test_anything_else_is_refused_with_a_reason(value: object, code: str) -> None:
    assert refusal(value) == code


def test_the_schema_is_a_date_time_with_the_exact_pattern() -> None:
    assert SCHEMA["type"] == "string" and SCHEMA["format"] == "date-time"
    assert SCHEMA["pattern"] == DATE_TIME_PATTERN
    for number in (0, 1767225600, 1.5):
        assert not SCHEMA_VALIDATOR.is_valid(number)


def test_a_datetime_from_python_is_converted_too() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert parse(datetime(2026, 1, 15, 11, 30, tzinfo=plus_two)) == datetime(
        2026, 1, 15, 9, 30, tzinfo=UTC
    )
    assert refusal(datetime(1, 1, 1, tzinfo=plus_two)) == "datetime_out_of_range"


offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda minutes: timedelta(minutes=minutes))


def rfc3339(moment: datetime, offset: timedelta) -> str:
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"{moment.isoformat(timespec='microseconds')}{sign}{hours:02d}:{rest:02d}"


@given(st.datetimes(), offsets)
def test_any_date_time_is_converted_or_refused_as_the_schema_says(
    wall: datetime, offset: timedelta
) -> None:
    """Never anything but a UTC instant or a validation error; and exactly what the published
    pattern admits is accepted, so a client built from the schema is never surprised."""
    text = rfc3339(wall, offset)
    admitted = SCHEMA_VALIDATOR.is_valid(text)
    try:
        parsed = parse(text)
    except ValidationError:
        assert not admitted, text
        return
    assert admitted, text
    assert parsed.tzinfo is UTC
    assert parsed == wall.replace(tzinfo=timezone(offset))
