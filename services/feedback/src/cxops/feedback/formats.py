"""The formats feedback reads: a tenant's topic taxonomy and the spike detector's settings (JSON),
people's topic corrections, verbatims to enrich, survey answers to score and complaint counts
(CSV), and the bodies of a bulk import of responses (NDJSON or CSV).

The JSON formats are pydantic models that refuse unknown fields, so that each can be the
feedback API's request body as it stands. A CSV file is used whole or refused at its first
problem, the message naming the file, the row (counted from 1 over the data rows, the header not
counted; complaint counts: the file line) and the column; readers that stream (verbatims,
corrections) refuse at the row where the problem is.
"""

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel, ConfigDict, ValidationError

from cxops.feedback.domain import alerts, topics
from cxops.feedback.domain.alerts import AlertConfig, Observation
from cxops.feedback.domain.scores import Answer
from cxops.feedback.domain.topics import DEFAULT_TAXONOMY, Taxonomy, TopicDefinition
from cxops.stats.scales import SCALES, SurveyKind


class InputError(ValueError):
    """An input file that cannot be used; the message says where."""


class MissingColumn(InputError):
    """The header lacks a column the caller named (``column``)."""

    def __init__(self, message: str, *, column: str) -> None:
        super().__init__(message)
        self.column = column


def _open(path: Path) -> TextIO:
    try:
        return path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc


# --- the topic taxonomy ----------------------------------------------------------------------


class TaxonomyFile(BaseModel):
    """A tenant's taxonomy file. With ``extends_default`` (the default) a topic named like a
    default one adds its phrases and exclusions to it and replaces its owner if it gives one;
    ``remove`` drops default topics. A topic is the domain's own
    :class:`~cxops.feedback.domain.topics.TopicDefinition`, which checks its phrases' shape."""

    model_config = ConfigDict(extra="forbid")

    extends_default: bool = True
    remove: tuple[str, ...] = ()
    topics: tuple[TopicDefinition, ...] = ()


class TaxonomyError(ValueError):
    """A taxonomy file that cannot be used, with every problem found."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


def load_taxonomy(data: object, *, default: Taxonomy = DEFAULT_TAXONOMY) -> Taxonomy:
    """The taxonomy a tenant's file describes (already parsed from JSON)."""
    try:
        parsed = TaxonomyFile.model_validate(data)
    except ValidationError as exc:
        raise TaxonomyError(
            [
                f"{'.'.join(str(part) for part in error['loc']) or '(top)'}: {error['msg']}"
                for error in exc.errors()
            ]
        ) from exc
    names = [topic.name for topic in parsed.topics]
    problems = [f"topic {name!r} is defined twice" for name, n in Counter(names).items() if n > 1]
    base = {topic.name: topic for topic in default.topics} if parsed.extends_default else {}
    problems += [f"remove: no default topic {name!r}" for name in parsed.remove if name not in base]
    if problems:
        raise TaxonomyError(problems)
    for name in parsed.remove:
        del base[name]
    for topic in parsed.topics:
        known = base.get(topic.name)
        base[topic.name] = topic if known is None else _merged(known, topic)
    return Taxonomy(topics=tuple(base.values()))


def _merged(known: TopicDefinition, extra: TopicDefinition) -> TopicDefinition:
    return known.model_copy(
        update={
            "phrases": tuple(dict.fromkeys(known.phrases + extra.phrases)),
            "exclusions": tuple(dict.fromkeys(known.exclusions + extra.exclusions)),
            "owner": extra.owner if extra.owner is not None else known.owner,
        }
    )


# --- topic corrections -----------------------------------------------------------------------

_TRUE = frozenset({"true", "yes", "1", "y"})
_FALSE = frozenset({"false", "no", "0", "n"})


def read_corrections(path: Path) -> Iterator[tuple[int, topics.Correction]]:
    """People's topic corrections (columns ``text``, ``topic``, ``correct``), each with its row,
    one at a time: a caller that refuses a correction (an unknown topic) stops at that row."""
    with _open(path) as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in ("text", "topic", "correct") if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{path.name} has no column {', '.join(map(repr, missing))}")
        for row, record in enumerate(reader, start=1):
            verdict = (record["correct"] or "").strip().lower()
            if verdict not in _TRUE | _FALSE:
                raise InputError(f"{path.name} row {row}: correct must be true or false")
            topic = (record["topic"] or "").strip()
            correct = verdict in _TRUE
            yield row, topics.Correction(text=record["text"] or "", topic=topic, correct=correct)


# --- verbatims -------------------------------------------------------------------------------

#: Verbatims longer than csv's default field limit (128 KiB) are cut and flagged, not refused.
FIELD_SIZE_LIMIT = 64 * 1024 * 1024


def read_verbatims(
    path: Path, *, text_column: str, score_column: str | None
) -> Iterator[tuple[str, str | None]]:
    """Each row's verbatim (empty when the cell is) and raw score cell, in file order, read as
    they are asked for: a large file is enriched and printed row by row, never held whole. A
    file that turns out unreadable part-way is refused with the rows read before it."""
    csv.field_size_limit(FIELD_SIZE_LIMIT)
    with _open(path) as handle:
        read = 0
        try:
            reader = csv.DictReader(handle)
            present = list(reader.fieldnames or [])
            for column in (text_column, score_column):
                if column is not None and column not in present:
                    raise MissingColumn(
                        f"{path.name} has no column {column!r} "
                        f"(columns: {', '.join(present) or 'none'})",
                        column=column,
                    )
            for record in reader:
                yield (
                    record.get(text_column) or "",
                    record.get(score_column) if score_column is not None else None,
                )
                read += 1
        except (UnicodeDecodeError, csv.Error) as exc:
            raise InputError(f"{path.name}: unreadable after row {read}: {exc}") from exc


# --- survey answers --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnswerColumns:
    """Where a survey file keeps each answer's score and, when asked for, its segment and its
    group (a period or an experiment's arm, read as the answer's period)."""

    score: str
    segment: str | None = None
    group: str | None = None


def read_answers(path: Path, *, kind: SurveyKind, columns: AnswerColumns) -> list[Answer]:
    """Every row as an :class:`Answer`. An empty score cell is an answer without a score
    (counted as skipped, never dropped); any other bad cell refuses the file."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            for name in (columns.score, columns.segment, columns.group):
                if name is not None and name not in header:
                    raise InputError(
                        f"{path.name} has no column {name!r} (its columns: "
                        f"{', '.join(map(repr, header)) or 'none'})"
                    )
            answers = [
                _answer(row, number, kind=kind, columns=columns)
                for number, row in enumerate(reader, start=1)
            ]
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path.name} is not UTF-8 text: {exc.reason}") from exc
    except csv.Error as exc:
        raise InputError(f"{path.name} is not valid CSV: {exc}") from exc
    except _CellError as exc:
        raise InputError(f"{path.name} {exc}") from exc
    if not answers:
        raise InputError(f"{path.name} has no data rows")
    return answers


class _CellError(ValueError):
    """A bad cell, its message naming the row and the column."""


def _answer(
    row: dict[str, str], number: int, *, kind: SurveyKind, columns: AnswerColumns
) -> Answer:
    if None in row:  # csv.DictReader's key for the cells beyond the header's
        raise _CellError(f"row {number} has more cells than the header has columns")
    raw = _cell(row, number, columns.score).strip()
    value: int | None = None
    if raw:
        try:
            value = int(raw)
        except ValueError:
            raise _CellError(
                f"row {number}, column {columns.score!r}: {raw!r} is not a whole-number score"
            ) from None
        scale = SCALES[kind]
        if not scale.contains(value):
            raise _CellError(
                f"row {number}, column {columns.score!r}: {value} is off the "
                f"{kind.value.upper()} scale ({scale})"
            )
    return Answer(
        score=value,
        segment=_label(row, number, columns.segment),
        period=_label(row, number, columns.group),
    )


def _label(row: dict[str, str], number: int, column: str | None) -> str | None:
    if column is None:
        return None
    label = _cell(row, number, column).strip()
    if not label:
        raise _CellError(f"row {number}, column {column!r}: empty")
    return label


def _cell(row: dict[str, str], number: int, column: str) -> str:
    value = row.get(column)
    if value is None:  # csv.DictReader's mark of a row shorter than the header
        raise _CellError(f"row {number}, column {column!r}: missing (the row has too few cells)")
    return value


# --- complaint counts and the spike detector's settings --------------------------------------

COUNT_COLUMNS = ("period", "topic", "count")
OPTIONAL_COUNT_COLUMNS = ("segment", "total")
_WHOLE = re.compile(r"[0-9]+")
_DEFAULTS = AlertConfig()


class SpikeSettings(BaseModel):
    """The spike detector's settings file: any of these keys; ranges are checked by
    :class:`~cxops.feedback.domain.alerts.AlertConfig`."""

    model_config = ConfigDict(extra="forbid")

    alpha: float = _DEFAULTS.alpha
    min_count: int = _DEFAULTS.min_count
    season: int = _DEFAULTS.season
    period_days: int = _DEFAULTS.period_days
    baseline: int = _DEFAULTS.baseline
    min_baseline: int = _DEFAULTS.min_baseline
    correction: alerts.Correction = _DEFAULTS.correction
    ewma_weight: float = _DEFAULTS.ewma_weight
    cooldown: int = _DEFAULTS.cooldown
    escalation: float = _DEFAULTS.escalation
    cusum_shift: float = _DEFAULTS.cusum_shift
    #: null turns the CUSUM off.
    cusum_threshold: float | None = _DEFAULTS.cusum_threshold
    window: int = _DEFAULTS.window
    #: null turns the window test off.
    window_alpha: float | None = _DEFAULTS.window_alpha
    groups: dict[str, list[str]] = {}

    def alert_config(self, **overrides: float) -> AlertConfig:
        """The detector's configuration, with ``overrides`` (``season``, ``period_days``,
        ``cusum_shift``, ``cusum_threshold``, ``window``, ``window_alpha``) taking the place of
        the file's; a ``ValueError`` names any setting out of range."""
        values: dict[str, Any] = {**self.model_dump(), **overrides}
        values["groups"] = {name: tuple(names) for name, names in values["groups"].items()}
        return AlertConfig(**values)


def read_spike_settings(path: Path) -> SpikeSettings:
    try:
        return SpikeSettings.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'file'}: {error['msg']}"
            for error in exc.errors()
        )
        raise InputError(f"{path.name}: {problems}") from exc


def read_counts(path: Path, period_days: int) -> list[Observation]:
    """The rows of ``period,topic,count[,segment][,total]`` as observations; any bad value
    refuses the file, naming its line and column. Periods of several days must fall on the
    first period's grid, and a series has at most one count per period."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle, restkey="\x00extra")
            header = reader.fieldnames
            if not header:
                raise InputError(f"{path.name}: empty file, expected a header row")
            unknown = [
                name for name in header if name not in COUNT_COLUMNS + OPTIONAL_COUNT_COLUMNS
            ]
            if unknown:
                raise InputError(
                    f"{path.name}: unknown column {unknown[0]!r}; the columns are "
                    f"{', '.join(COUNT_COLUMNS)} and optionally {', '.join(OPTIONAL_COUNT_COLUMNS)}"
                )
            missing = [name for name in COUNT_COLUMNS if name not in header]
            if missing:
                raise InputError(f"{path.name}: missing column {missing[0]!r}")
            rows = [(reader.line_num, row) for row in reader]
    except UnicodeDecodeError as exc:
        raise InputError(f"{path.name}: not UTF-8 text: {exc.reason}") from exc
    except csv.Error as exc:
        raise InputError(f"{path.name}: not CSV: {exc}") from exc
    observations = [_observation(path.name, line, row, "total" in header) for line, row in rows]
    _check_grid(path.name, rows, observations, period_days)
    return observations


def _observation(name: str, line: int, row: dict[str, Any], has_total: bool) -> Observation:
    def bad(column: str, why: str) -> InputError:
        return InputError(f"{name}: row {line}, column {column!r}: {why}")

    if "\x00extra" in row or None in row.values():
        raise bad("*", "the row has a different number of fields than the header")
    try:
        period = date.fromisoformat(row["period"].strip())
    except ValueError as exc:
        raise bad("period", f"{row['period']!r} is not an ISO date (YYYY-MM-DD)") from exc
    topic = row["topic"].strip()
    if not topic:
        raise bad("topic", "empty")
    count = _whole(row["count"])
    if count is None:
        raise bad("count", f"{row['count']!r} is not a non-negative whole number")
    total = None
    if has_total:
        total = _whole(row["total"])
        if total is None:
            raise bad("total", f"{row['total']!r} is not a non-negative whole number")
        if count > total:
            raise bad("count", f"{count} complaints out of a total of {total} responses")
    return Observation(period, topic, count, segment=row.get("segment", "").strip(), total=total)


def _whole(text: str) -> int | None:
    text = text.strip()
    return int(text) if _WHOLE.fullmatch(text) else None


def _check_grid(
    name: str, rows: list[tuple[int, Any]], observations: list[Observation], period_days: int
) -> None:
    """Refuse duplicates and, for periods of several days, dates off the first period's grid."""
    if not observations:
        return
    origin = min(o.period for o in observations).toordinal()
    seen: dict[tuple[int, str, str], int] = {}
    for (line, _), o in zip(rows, observations, strict=True):
        index, off_grid = divmod(o.period.toordinal() - origin, period_days)
        if off_grid:
            raise InputError(
                f"{name}: row {line}, column 'period': {o.period} is not a whole number of "
                f"{period_days}-day periods after the first, {date.fromordinal(origin)}"
            )
        first = seen.setdefault((index, o.topic, o.segment), line)
        if first != line:
            raise InputError(
                f"{name}: row {line}, column 'period': a second count for {o.topic!r}"
                f"{f' in segment {o.segment!r}' if o.segment else ''} on {o.period} "
                f"(the first is row {first})"
            )


# --- bulk imports of survey responses --------------------------------------------------------

NDJSON = "application/x-ndjson"
CSV = "text/csv"
_WHOLE_NUMBER = re.compile(r"^[+-]?\d+$")


@dataclass(frozen=True, slots=True)
class ImportLine:
    """One row of an import body: its line in the body (from 1; in a CSV the header is line 1),
    and its fields, or why it could not even be read as a row."""

    line: int
    fields: dict[str, Any] | None
    problem: str | None = None


def read_import(body: bytes, media_type: str, *, columns: frozenset[str]) -> Iterator[ImportLine]:
    """The rows of an import body in ``media_type`` (:data:`NDJSON` or :data:`CSV`).

    NDJSON: one JSON object per line, blank lines skipped; a line that is not a JSON object is a
    row with a problem. CSV: a header of ``columns`` names (any order, any subset; an unknown one
    raises :class:`InputError`), then one row per record; an empty cell is an absent field and
    a whole number in ``score`` is read as one, so a row means what its JSON form would.
    """
    if media_type == NDJSON:
        yield from _ndjson_rows(body)
    elif media_type == CSV:
        yield from _csv_rows(body, columns)
    else:
        raise InputError(f"cannot read {media_type!r}; send {NDJSON} or {CSV}")


def _ndjson_rows(body: bytes) -> Iterator[ImportLine]:
    for number, raw in enumerate(body.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            yield ImportLine(number, None, f"not JSON: {exc}")
            continue
        if not isinstance(value, dict):
            yield ImportLine(number, None, "not a JSON object")
            continue
        yield ImportLine(number, value)


def _csv_rows(body: bytes, columns: frozenset[str]) -> Iterator[ImportLine]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"the CSV body is not UTF-8 (byte {exc.start})") from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        return
    names = [name.strip() for name in header]
    unknown = sorted(set(names) - columns)
    if unknown:
        raise InputError(f"unknown columns {unknown}; the columns are {sorted(columns)}")
    twice = sorted(name for name, n in Counter(names).items() if n > 1)
    if twice:
        raise InputError(f"columns given twice: {twice}")
    for cells in reader:
        number = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(names):
            yield ImportLine(number, None, f"{len(cells)} cells for {len(names)} columns")
            continue
        fields: dict[str, Any] = {
            name: cell for name, cell in zip(names, cells, strict=True) if cell != ""
        }
        score = fields.get("score")
        if isinstance(score, str) and _WHOLE_NUMBER.match(score.strip()):
            fields["score"] = int(score)
        yield ImportLine(number, fields)
