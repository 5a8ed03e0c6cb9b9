"""The formats of ``cxops journey identities``: the events CSV (wide or long), the rules JSON,
and the resolution as plain JSON. Errors name the file line and the column, the way a user finds
them in the file; nothing is resolved until the whole input has been read.
"""

import csv
import json
import math
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from itertools import groupby, islice
from operator import itemgetter
from pathlib import Path
from typing import Annotated, Any, TextIO

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cxops.journey.domain.identifiers import DEFAULT_BLOCKLIST, BlockRule, Kind
from cxops.journey.domain.identity import (
    EventColumns,
    Identifier,
    Link,
    Merge,
    Profile,
    Resolution,
    Rules,
)


class Layout(StrEnum):
    """``wide``: one row per event, a column per identifier type. ``long``: one row per
    identifier, ``event_id,type,value``. ``auto``: long when the header has ``type`` and
    ``value``."""

    AUTO = "auto"
    WIDE = "wide"
    LONG = "long"


class InputError(ValueError):
    """Input that cannot be read; the message says where."""


@dataclass(frozen=True, slots=True)
class Columns:
    """Which columns mean what. ``identifiers`` maps a column (wide) or a ``type`` value (long)
    to the identifier type it holds; empty means every column but the event id and timestamp
    (wide) or every type (long). ``None`` for the event id or timestamp means "use ``event_id``
    or ``timestamp`` if the header has it"."""

    identifiers: Mapping[str, str] = field(default_factory=dict)
    event_id: str | None = None
    timestamp: str | None = None
    layout: Layout = Layout.AUTO


def read_events(path: Path, columns: Columns) -> EventColumns:
    """The events of a CSV file; rows with the same event id are one event."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = _rows(handle)
            try:
                header_line, header = next(rows)
            except StopIteration:
                raise InputError(f"{path} is empty: expected a header row, then events") from None
            try:
                reader = _Reader(header_line, header, columns)
                reader.read(rows)
            except InputError as exc:
                raise InputError(f"{path}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text: {exc.reason}") from exc
    except csv.Error as exc:
        raise InputError(f"{path}: not CSV: {exc}") from exc
    if not reader.event_ids:
        raise InputError(f"{path} has a header (line {header_line}) but no events")
    return reader.finish()


def _rows(handle: TextIO) -> Iterator[tuple[int, list[str]]]:
    """Rows with something in them, with the file line each starts on (a quoted cell may span
    lines)."""
    reader = csv.reader(handle)
    line = 1
    for row in reader:
        if "".join(row).strip():
            yield line, row
        line = reader.line_num + 1


class _Reader:
    def __init__(self, header_line: int, header: list[str], columns: Columns) -> None:
        self.header = [name.strip() for name in header]
        for at, name in enumerate(self.header):
            if not name:
                raise InputError(f"line {header_line}: column {at + 1} has no name")
            if name in self.header[:at]:
                raise InputError(f"line {header_line}: column {name!r} appears twice")
        self.long = columns.layout is Layout.LONG or (
            columns.layout is Layout.AUTO and {"type", "value"} <= set(self.header)
        )
        self.event_id = self._optional(columns.event_id, "event_id")
        self.timestamp = self._optional(columns.timestamp, "timestamp")
        self.event_ids: list[str] = []
        self.positions: dict[str, int] = {}
        self.timestamps: list[datetime | None] = []
        self.timestamp_lines = array("q")
        self.identifiers: list[tuple[str, str]] = []
        self.numbers: dict[str, dict[str, int]] = {}
        self.carriers = array("q")
        self.keys = array("q")
        self.types = dict(columns.identifiers)
        if self.long:
            if self.event_id is None:
                raise InputError(
                    f"column {columns.event_id or 'event_id'!r} is missing: the long layout "
                    f"needs it to group rows into events ({self._has()})"
                )
            self.type_column, self.value_column = self._required("type"), self._required("value")
            return
        named = set(self.types) or set(self.header) - self._names(self.event_id)
        named -= self._names(self.timestamp)
        for name in sorted(named):
            self._required(name)
        #: Each identifier column, its type, and the number of each spelling seen of that type.
        self.identifier_columns = [
            (self.header.index(name), type_name, self._spellings(type_name))
            for name in sorted(named)
            for type_name in [self.types.get(name, name)]
        ]
        if not self.identifier_columns:
            raise InputError(f"no identifier columns ({self._has()})")

    def _names(self, index: int | None) -> set[str]:
        return set() if index is None else {self.header[index]}

    def _has(self) -> str:
        return "the header has " + ", ".join(self.header)

    def _required(self, name: str) -> int:
        if name not in self.header:
            raise InputError(f"column {name!r} is missing ({self._has()})")
        return self.header.index(name)

    def _optional(self, name: str | None, default: str) -> int | None:
        if name is not None:
            return self._required(name)
        return self.header.index(default) if default in self.header else None

    def read(self, rows: Iterable[tuple[int, list[str]]]) -> None:
        """Every row: an event, or more identifiers of one already read. Empty cells carry
        nothing (resolution skips blank values). One loop with its names at hand: over a
        million rows, every attribute looked up and every call counts."""
        width, header = len(self.header), self.header
        event_column, timestamp_column = self.event_id, self.timestamp
        positions, event_ids = self.positions, self.event_ids
        timestamps, timestamp_lines = self.timestamps, self.timestamp_lines
        identifiers, carriers, keys = self.identifiers, self.carriers, self.keys
        wide = [] if self.long else self.identifier_columns
        for line, row in rows:
            if len(row) != width:
                raise InputError(
                    f"line {line}: {len(row)} cells where the header has {width} columns"
                )
            if event_column is None:
                event_id = str(line)
            elif not (event_id := row[event_column].strip()):
                raise InputError(f"line {line}, column {header[event_column]!r}: empty")
            position = positions.get(event_id)
            if position is None:
                position = positions[event_id] = len(event_ids)
                event_ids.append(event_id)
                timestamps.append(None)
                timestamp_lines.append(0)
            if timestamp_column is not None and (text := row[timestamp_column].strip()):
                self._stamp(position, line, header[timestamp_column], text)
            for at, type_name, spellings in wide:
                raw = row[at]
                if raw:
                    number = spellings.get(raw)
                    if number is None:
                        number = spellings[raw] = len(identifiers)
                        identifiers.append((type_name, raw))
                    carriers.append(position)
                    keys.append(number)
            if self.long:
                self._long(position, line, row)

    def _long(self, position: int, line: int, row: list[str]) -> None:
        value = row[self.value_column]
        if not value.strip():
            return
        type_name = row[self.type_column].strip()
        if not type_name:
            raise InputError(f"line {line}, column {self.header[self.type_column]!r}: empty")
        if not self.types:
            self._carry(position, type_name, value)
        elif type_name in self.types:
            self._carry(position, self.types[type_name], value)

    def _spellings(self, type_name: str) -> dict[str, int]:
        """The number of each raw value of this type seen so far."""
        return self.numbers.setdefault(type_name, {})

    def _carry(self, position: int, type_name: str, raw: str) -> None:
        spellings = self._spellings(type_name)
        number = spellings.get(raw)
        if number is None:
            number = spellings[raw] = len(self.identifiers)
            self.identifiers.append((type_name, raw))
        self.carriers.append(position)
        self.keys.append(number)

    def _stamp(self, position: int, line: int, column: str, text: str) -> None:
        try:
            when = parse_timestamp(text)
        except ValueError as exc:
            raise InputError(f"line {line}, column {column!r}: {exc}") from exc
        before = self.timestamps[position]
        if before is not None and before != when:
            raise InputError(
                f"line {line}, column {column!r}: event {self.event_ids[position]!r} has another "
                f"timestamp on line {self.timestamp_lines[position]}"
            )
        self.timestamps[position], self.timestamp_lines[position] = when, line

    def finish(self) -> EventColumns:
        return EventColumns(
            self.event_ids,
            self.timestamps,
            self.identifiers,
            np.frombuffer(self.carriers, dtype=np.int64),
            np.frombuffer(self.keys, dtype=np.int64),
        )


def parse_timestamp(text: str) -> datetime:
    """ISO 8601 (without an offset it is UTC), else Unix seconds; as UTC."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        pass
    else:
        if when.tzinfo is UTC:
            return when
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
    try:
        seconds = float(text)
        if math.isfinite(seconds):
            return datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise ValueError(
        f"not a timestamp: {text!r} (ISO 8601, such as 2024-05-01T09:30:00Z, or Unix seconds)"
    )


Name = Annotated[str, Field(min_length=1)]
Positive = Annotated[int, Field(ge=1)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BlockSpec(_Spec):
    value: Name | None = None
    pattern: Name | None = None
    regex: Name | None = None
    type: Name | None = None
    kind: Kind | None = None


class RulesSpec(_Spec):
    """The rules JSON; ``max_per_type`` takes ``"*"`` for every type not named."""

    default_blocklist: bool = True
    blocked: list[BlockSpec] = []
    max_per_type: dict[Name, Positive] = {}
    max_profiles_per_value: Positive = 1
    kinds: dict[Name, Kind] = {}
    country_code: Annotated[str, Field(pattern=r"^\d{1,3}$")] | None = None


def load_rules(data: object, *, source: str) -> RulesSpec:
    try:
        return RulesSpec.model_validate(data)
    except ValidationError as exc:
        problems = "\n".join(
            f"  {'.'.join(str(part) for part in error['loc']) or '(top)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise InputError(f"invalid rules in {source}:\n{problems}") from exc


def build_rules(spec: RulesSpec, *, extra_blocks: Sequence[str] = ()) -> Rules:
    """The domain's rules from the JSON's; ``extra_blocks`` are patterns for every type (a value
    without ``*``, ``?`` or ``[`` is exact)."""
    blocklist = list(DEFAULT_BLOCKLIST if spec.default_blocklist else ())
    for at, block in enumerate(spec.blocked):
        try:
            blocklist.append(BlockRule(**block.model_dump()))
        except ValueError as exc:
            raise InputError(f"blocked[{at}]: {exc}") from exc
    for text in extra_blocks:
        wildcard = any(char in text for char in "*?[")
        blocklist.append(BlockRule(pattern=text) if wildcard else BlockRule(value=text))
    limits = dict(spec.max_per_type)
    default_limit = limits.pop("*", 3)
    return Rules(
        blocklist=tuple(blocklist),
        max_per_type=limits,
        default_max_per_type=default_limit,
        max_profiles_per_value=spec.max_profiles_per_value,
        kinds=dict(spec.kinds),
        country_code=spec.country_code,
    )


def report_json(resolution: Resolution) -> Iterator[str]:
    """The resolution as one JSON object (the format in ``services/journey/README.md``), in
    pieces to write as they come: a million events' profiles and merges are never held at once
    as dictionaries and again as text. The text is what ``json.dumps`` writes for these values
    (its separators and escapes); profiles, merges and event ids, the bulk, are put together
    here with its string encoder, the rest is encoded by ``json.dumps`` itself."""
    yield '{"totals": ' + json.dumps(_totals(resolution))
    yield ', "identifier_types": ' + json.dumps(list(resolution.identifier_types))
    yield ', "profiles": '
    yield from _array(_profile_text(profile) for profile in resolution.profiles)
    yield ', "merges": '
    yield from _array(_merge_text(merge) for merge in resolution.merges)
    yield ', "refusals": ' + json.dumps(_cap_refusals(resolution) + _blocked_links(resolution))
    yield ', "blocked": ' + json.dumps(_blocked(resolution))
    yield ', "invalid": ' + json.dumps(
        [
            {"type": value.type, "value": value.value, "events": value.events}
            for value in resolution.invalid
        ]
    )
    yield ', "unresolved_events": '
    yield from _array(map(_text, resolution.unresolved_events))
    yield ', "split_events": ' + json.dumps(
        [
            {"event": split.event_id, "profile": split.profile_id, "also": list(split.others)}
            for split in resolution.split_events
        ]
    )
    yield "}"


_text: Callable[[str], str] = json.encoder.encode_basestring_ascii
"""A string as ``json.dumps`` writes it (quoted, escaped, ASCII)."""


def _array(items: Iterable[str]) -> Iterator[str]:
    """A JSON array of encoded items, a few thousand at a time."""
    yield "["
    items = iter(items)
    separator = ""
    while batch := list(islice(items, 4096)):
        yield separator + ", ".join(batch)
        separator = ", "
    yield "]"


def _totals(resolution: Resolution) -> dict[str, int]:
    return {
        "events": resolution.events,
        "resolved_events": resolution.events - len(resolution.unresolved_events),
        "unresolved_events": len(resolution.unresolved_events),
        "profiles": len(resolution.profiles),
        "identifiers": sum(len(profile.identifiers) for profile in resolution.profiles),
        "merges": len(resolution.merges),
        "refused_by_cap": len(resolution.refusals),
        "blocked_values": len(resolution.blocked),
        "invalid_values": len(resolution.invalid),
        "split_events": len(resolution.split_events),
    }


def _profile_text(profile: Profile) -> str:
    """A profile's JSON; its identifiers come sorted, so that each type's values are together."""
    identifiers = ", ".join(
        f"{_text(type_name)}: [{', '.join([_text(value) for _, value in same_type])}]"
        for type_name, same_type in groupby(profile.identifiers, itemgetter(0))
    )
    events = ", ".join(map(_text, profile.events))
    return (
        f'{{"id": {_text(profile.profile_id)}, "identifiers": {{{identifiers}}}, '
        f'"event_count": {len(profile.events)}, "events": [{events}], '
        f'"first_seen": {_time_text(profile.first_seen)}, '
        f'"last_seen": {_time_text(profile.last_seen)}}}'
    )


def _merge_text(merge: Merge) -> str:
    link = merge.link
    left, right = link.left, link.right
    return (
        f'{{"step": {merge.step}, "profile": {_text(merge.profile_id)}, '
        f'"left": {{"type": {_text(left.type)}, "value": {_text(left.value)}}}, '
        f'"right": {{"type": {_text(right.type)}, "value": {_text(right.value)}}}, '
        f'"shared_events": {link.events}, "first_event": {_text(link.first_event)}, '
        f'"sizes": [{merge.sizes[0]}, {merge.sizes[1]}]}}'
    )


def _time_text(when: datetime | None) -> str:
    """``utc_text`` as JSON (ISO 8601 needs no escapes)."""
    return "null" if when is None else f'"{when.isoformat().replace("+00:00", "Z")}"'


def _cap_refusals(resolution: Resolution) -> list[dict[str, Any]]:
    return [
        {
            "reason": "cap",
            "step": refusal.step,
            **_link(refusal.link),
            "profiles": list(refusal.profiles),
            "type": refusal.type,
            "would_hold": refusal.would_hold,
            "limit": refusal.limit,
        }
        for refusal in resolution.refusals
    ]


def _blocked_links(resolution: Resolution) -> list[dict[str, Any]]:
    return [
        {
            "reason": "blocked",
            "via": _identifier(blocked.identifier),
            "blocked_as": blocked.reason,
            "detail": blocked.detail,
            "profiles": list(blocked.profiles),
        }
        for blocked in resolution.blocked
        if len(blocked.profiles) > 1
    ]


def _blocked(resolution: Resolution) -> list[dict[str, Any]]:
    return [
        {
            **_identifier(blocked.identifier),
            "reason": blocked.reason,
            "detail": blocked.detail,
            "events": blocked.events,
            "profiles": list(blocked.profiles),
        }
        for blocked in resolution.blocked
    ]


def by_type(identifiers: Sequence[Identifier]) -> dict[str, list[str]]:
    """Values grouped by type, in the order given."""
    grouped: dict[str, list[str]] = {}
    for identifier in identifiers:
        grouped.setdefault(identifier.type, []).append(identifier.value)
    return grouped


def _identifier(identifier: Identifier) -> dict[str, str]:
    return {"type": identifier.type, "value": identifier.value}


def _link(link: Link) -> dict[str, Any]:
    return {
        "left": _identifier(link.left),
        "right": _identifier(link.right),
        "shared_events": link.events,
        "first_event": link.first_event,
    }


def utc_text(when: datetime | None) -> str | None:
    """A time as the JSON gives it: ISO 8601, ``Z`` for UTC."""
    return None if when is None else when.isoformat().replace("+00:00", "Z")
