"""The event log a mining run reads: one row per event, parsed, checked and put in case order.

Every analysis relies on the order made here: events grouped by case, by time within a case,
and events of a case at the same instant in the order of the source (pm4py breaks ties the same
way, so directly-follows pairs and variants agree with it). Time is UTC: an ISO 8601 value with
an offset is converted, one without (naive) is taken to be UTC already.

Rows are numbered from 1 over the data rows, the header not counted, so row 1 is a CSV file's
second line.
"""

from dataclasses import dataclass

import polars as pl

#: The names the prepared frame uses, whatever the source called them.
CASE = "case"
ACTIVITY = "activity"
TIMESTAMP = "timestamp"
TEAM = "team"
CHANNEL = "channel"
_ROW = "row"
_RAW_TIME = "raw_time"

#: The timestamp layouts we accept, most specific first: ISO 8601 with a 'T' or a space, with or
#: without seconds and a fraction, with an offset ('Z', '+02:00', '+0200', '+02') or naive.
TIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%#z",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f%#z",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M%#z",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M%#z",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
)
_SAMPLE_ROWS = 1000


@dataclass(frozen=True)
class Columns:
    """Which source column holds each field. Team and channel are optional: ``None`` leaves the
    analyses that need them out."""

    case: str = "case_id"
    activity: str = "activity"
    timestamp: str = "timestamp"
    team: str | None = None
    channel: str | None = None


class LogError(ValueError):
    """A log that cannot be mined. The message names the column and, where one row is at fault,
    the row (counted from 1 over the data rows)."""

    def __init__(self, message: str, *, column: str | None = None, row: int | None = None) -> None:
        self.column = column
        self.row = row
        super().__init__(message)


@dataclass(frozen=True)
class EventLog:
    """Events sorted by case, then time, then source order. Case, activity, team and channel are
    categoricals (small integer codes: sorting and grouping work on them, and each text is held
    once), the timestamp a UTC datetime in microseconds."""

    events: pl.DataFrame
    has_team: bool
    has_channel: bool

    @property
    def cases(self) -> int:
        return self.events[CASE].n_unique()

    def labels(self, field: str) -> dict[int, str]:
        """The distinct values of a categorical ``field``, by their codes."""
        values = self.events.select(pl.col(field).unique())[field]
        return dict(zip(values.to_physical(), values.cast(pl.String), strict=True))


def prepare_log(source: pl.DataFrame | pl.LazyFrame, columns: Columns) -> EventLog:
    """Select, parse, check and sort the source's events, or raise :class:`LogError`."""
    lazy = source.lazy()
    schema = lazy.collect_schema()
    wanted = {
        CASE: columns.case,
        ACTIVITY: columns.activity,
        TIMESTAMP: columns.timestamp,
        TEAM: columns.team,
        CHANNEL: columns.channel,
    }
    named = {field: column for field, column in wanted.items() if column is not None}
    for column in named.values():
        if column not in schema:
            raise LogError(
                f"column {column!r} is not in the log (its columns: {', '.join(schema.names())})",
                column=column,
            )
    labels = [
        pl.col(column).cast(pl.String).cast(pl.Categorical).alias(field)
        for field, column in named.items()
        if field != TIMESTAMP
    ]
    time_column = columns.timestamp
    parsed, layout = _time_expression(lazy, time_column, schema[time_column])
    # The streaming engine reads, encodes and parses a morsel at a time, so the log's text is
    # never held whole; it keeps the rows in the source's order.
    events = (
        lazy.with_row_index(_ROW, offset=1)
        .select(_ROW, *labels, parsed)
        .collect(engine="streaming")
    )
    if events.height == 0:
        raise LogError("the log is empty: it has no events (no data rows)")
    for field in (CASE, ACTIVITY):
        _require_values(events, field, named[field])
    if layout is not None:
        events = _retry_times(events, lazy, time_column, layout)
    _require_values(events, TIMESTAMP, time_column)
    return EventLog(
        events=events.drop(_ROW)[_case_order(events)],
        has_team=columns.team is not None,
        has_channel=columns.channel is not None,
    )


def _case_order(events: pl.DataFrame) -> pl.Series:
    """The positions that put events in case order, then time, then source order: a stable
    sort by time, then a stable sort by case. On ten million events this is several times
    faster than one sort by both keys, and gathering once takes less memory than sorting the
    frame."""
    by_time = events.select(pl.arg_sort_by(TIMESTAMP, maintain_order=True)).to_series()
    cases = events.select(pl.col(CASE).to_physical().gather(by_time))
    by_case = cases.select(pl.arg_sort_by(CASE, maintain_order=True)).to_series()
    return by_time.gather(by_case)


def _time_expression(
    lazy: pl.LazyFrame, column: str, dtype: pl.DataType
) -> tuple[pl.Expr, str | None]:
    """The timestamp as UTC; for text, also the layout that reads most of the first values
    (the one tried on every row)."""
    source = pl.col(column)
    if isinstance(dtype, pl.Datetime):
        zoned = (
            source.dt.replace_time_zone("UTC")
            if dtype.time_zone is None
            else source.dt.convert_time_zone("UTC")
        )
        return zoned.cast(pl.Datetime("us", "UTC")).alias(TIMESTAMP), None
    if isinstance(dtype, pl.Date):
        return source.cast(pl.Datetime("us")).dt.replace_time_zone("UTC").alias(TIMESTAMP), None
    if not isinstance(dtype, pl.String):
        raise LogError(f"column {column!r} holds {dtype}, not date-times", column=column)
    sample = lazy.select(source).head(_SAMPLE_ROWS).collect().to_series().drop_nulls()
    likeliest = max(TIME_FORMATS, key=lambda layout: _parse(sample, layout).count())
    return _parse_expr(source, likeliest).alias(TIMESTAMP), likeliest


def _parse(values: pl.Series, layout: str) -> pl.Series:
    return values.str.to_datetime(layout, time_zone="UTC", strict=False, cache=False)


def _parse_expr(values: pl.Expr, layout: str) -> pl.Expr:
    return values.str.to_datetime(layout, time_zone="UTC", strict=False, cache=False)


def _retry_times(
    events: pl.DataFrame, lazy: pl.LazyFrame, column: str, layout: str
) -> pl.DataFrame:
    """A log may mix layouts: read again the values the likeliest layout missed, try the other
    layouts on those still unread (the likeliest for them first), and refuse the first value
    none can read (a blank one is left for the caller to report as empty)."""
    if not events[TIMESTAMP].has_nulls():
        return events
    source = pl.col(column)
    unread = (
        lazy.with_row_index(_ROW, offset=1)
        .filter(_parse_expr(source, layout).is_null() & (source.str.strip_chars() != ""))
        .select(_ROW, source.str.strip_chars().alias(_RAW_TIME))
        .collect()
    )
    sample = unread[_RAW_TIME].head(_SAMPLE_ROWS)
    others = sorted(
        (other for other in TIME_FORMATS if other != layout),
        key=lambda other: -_parse(sample, other).count(),
    )
    read = []
    for other in others:
        if unread.height == 0:
            break
        tried = unread.with_columns(_parse_expr(pl.col(_RAW_TIME), other).alias(TIMESTAMP))
        read.append(tried.filter(pl.col(TIMESTAMP).is_not_null()).select(_ROW, TIMESTAMP))
        unread = tried.filter(pl.col(TIMESTAMP).is_null()).select(_ROW, _RAW_TIME)
    if unread.height:
        row, raw = unread.row(0)
        more = f" (and {unread.height - 1} more rows)" if unread.height > 1 else ""
        raise LogError(
            f"row {row}, column {column!r}: not a date-time: {raw!r}{more}",
            column=column,
            row=row,
        )
    return events.update(pl.concat(read), on=_ROW) if read else events


def _require_values(events: pl.DataFrame, field: str, column: str) -> None:
    values = pl.col(field)
    blank = values.is_null()
    if events.schema[field] == pl.Categorical:
        blank = blank | (values == "")
    first_blank = events.filter(blank).head(1)
    if first_blank.height:
        row = first_blank[_ROW][0]
        raise LogError(f"row {row}, column {column!r}: empty", column=column, row=row)
