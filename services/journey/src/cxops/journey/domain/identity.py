"""Identity resolution: events that share identifier values (an email on the web, the same email
with a phone on a call, that phone with a CRM id on a case) become one customer profile.

Union-find alone would make the answer depend on the order of the rows once some merges must be
refused, so the resolution is a function of the *set* of events:

1. Values are normalised; a value is blocked before anything merges, either by a rule
   (``BlockRule``) or because it is too common: it appears with more distinct values of one
   type than ``max_profiles_per_value`` profiles could hold under that type's cap (an
   inbox seen with 9 phone numbers when a profile holds at most 3 phones is shared), or it
   was found too common before (``Rules.common``, from events not given here). A rule wins
   over commonness, so a value blocked both ways reads as blocked by its rule.
2. Two unblocked values are linked when they appear in the same event. Links are taken in a
   canonical order: the most events first, then the earliest, then by the values themselves.
3. A link joins two groups unless the joined group would hold values of both sides of a split
   (``Rules.separations``), or more values of one type than its cap; the refusal is final,
   since groups only grow. Every join and refusal is recorded.
4. Each profile is named by a hash of its smallest identifier; each event belongs to the profile
   holding most of its identifiers (ties: the one holding its smallest identifier).

Nothing depends on the order of the events or of the identifiers within one; only which event a
record names as the first depends on the event ids (earliest, then by id). Given the values found
common over all of them, the events of each connected part (joined by values neither blocked nor
common) resolve alone into the same profiles, merges and refusals as with all the others: a
service may resolve one part at a time.
"""

import bisect
import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import repeat
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from cxops.journey.domain.identifiers import (
    DEFAULT_BLOCKLIST,
    BlockRule,
    Kind,
    first_rule,
    kind_of,
    normaliser,
)


@dataclass(frozen=True, slots=True)
class Event:
    """One event as resolution needs it: its id, when it happened if known (timezone-aware),
    and the raw identifier values it carries as ``(type, value)`` pairs."""

    event_id: str
    identifiers: tuple[tuple[str, str], ...]
    timestamp: datetime | None = None


class Identifier(NamedTuple):
    """A normalised value and its type; identifiers sort by type, then value."""

    type: str
    value: str


@dataclass(frozen=True, slots=True)
class Separation:
    """Values a split put apart: no profile may hold a value of ``left`` and one of ``right``."""

    left: frozenset[Identifier]
    right: frozenset[Identifier]

    def __post_init__(self) -> None:
        if self.left & self.right:
            raise ValueError("a separation's left and right share values")


@dataclass(frozen=True, slots=True)
class Rules:
    """What may join: the blocklist, the most values of one type a profile may hold
    (``max_per_type`` by type, else ``default_max_per_type``), how many profiles a value may
    plausibly span before it counts as shared, each type's kind where its name does not say,
    the country code that makes national phone numbers international, the splits that keep
    values apart, and the normalised values found too common elsewhere (with the detail
    recorded when they were)."""

    blocklist: tuple[BlockRule, ...] = DEFAULT_BLOCKLIST
    max_per_type: Mapping[str, int] = field(default_factory=dict)
    default_max_per_type: int = 3
    max_profiles_per_value: int = 1
    kinds: Mapping[str, Kind] = field(default_factory=dict)
    country_code: str | None = None
    separations: tuple[Separation, ...] = ()
    common: Mapping[Identifier, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        limits = {"default_max_per_type": self.default_max_per_type, **self.max_per_type}
        for name, limit in limits.items():
            if limit < 1:
                raise ValueError(f"max_per_type for {name} must be at least 1")
        if self.max_profiles_per_value < 1:
            raise ValueError("max_profiles_per_value must be at least 1")
        if self.country_code is not None and not (
            self.country_code.isdigit() and 1 <= len(self.country_code) <= 3
        ):
            raise ValueError(f"country_code must be 1 to 3 digits, not {self.country_code!r}")

    def cap(self, type_name: str) -> int:
        return self.max_per_type.get(type_name, self.default_max_per_type)

    def kind(self, type_name: str) -> Kind:
        return self.kinds.get(type_name) or kind_of(type_name)


@dataclass(frozen=True, slots=True)
class Profile:
    """One customer: identifiers sorted, events earliest first (undated last)."""

    profile_id: str
    identifiers: tuple[Identifier, ...]
    events: tuple[str, ...]
    first_seen: datetime | None
    last_seen: datetime | None


@dataclass(frozen=True, slots=True)
class Link:
    """Two identifiers seen together: in how many events, and the first of them."""

    left: Identifier
    right: Identifier
    events: int
    first_event: str


@dataclass(frozen=True, slots=True)
class Merge:
    """A link that joined two groups (of ``sizes`` identifiers) into what became ``profile_id``;
    ``step`` is its place in the canonical order of links."""

    step: int
    profile_id: str
    link: Link
    sizes: tuple[int, int]


@dataclass(frozen=True, slots=True)
class CapRefusal:
    """A link refused because the joined group would hold ``would_hold`` values of
    ``type`` where ``limit`` is allowed; its two sides ended in ``profiles``."""

    step: int
    link: Link
    profiles: tuple[str, str]
    type: str
    would_hold: int
    limit: int


@dataclass(frozen=True, slots=True)
class SeparationRefusal:
    """A link refused because a split put its two sides apart (``separation`` indexes
    ``Rules.separations``); its two sides ended in ``profiles``."""

    step: int
    link: Link
    profiles: tuple[str, str]
    separation: int


@dataclass(frozen=True, slots=True)
class BlockedValue:
    """A value that joined nothing: ``reason`` is ``rule`` (``detail`` names it) or ``common``
    (``detail`` says what it was seen with). ``profiles`` are where its events ended."""

    identifier: Identifier
    reason: str
    detail: str
    events: int
    profiles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class InvalidValue:
    """A value that is not a well-formed email or phone number (as written, trimmed)."""

    type: str
    value: str
    events: int


@dataclass(frozen=True, slots=True)
class SplitEvent:
    """An event whose identifiers ended in more than one profile (a cap or a split refused the
    join): it belongs to ``profile_id`` and also touches ``others``."""

    event_id: str
    profile_id: str
    others: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Resolution:
    """Everything resolution found; ``identifier_types`` are the types with a valid value."""

    events: int
    identifier_types: tuple[str, ...]
    profiles: tuple[Profile, ...]
    merges: tuple[Merge, ...]
    refusals: tuple[CapRefusal, ...]
    blocked: tuple[BlockedValue, ...]
    invalid: tuple[InvalidValue, ...]
    unresolved_events: tuple[str, ...]
    split_events: tuple[SplitEvent, ...]
    separated: tuple[SeparationRefusal, ...] = ()


@dataclass(frozen=True, slots=True)
class EventColumns:
    """Events as columns rather than an object each, for logs of millions of events (the
    command reads its CSV straight into them): event ``e`` is ``event_ids[e]``, happened at
    ``timestamps[e]``, and carries ``identifiers[keys[i]]`` for every ``i`` with
    ``carriers[i] == e``. ``identifiers`` are the distinct raw ``(type, value)`` pairs."""

    event_ids: Sequence[str]
    timestamps: Sequence[datetime | None]
    identifiers: Sequence[tuple[str, str]]
    carriers: npt.NDArray[np.int64]
    keys: npt.NDArray[np.int64]

    @classmethod
    def of(cls, events: Iterable[Event]) -> "EventColumns":
        event_ids: list[str] = []
        timestamps: list[datetime | None] = []
        numbers: dict[tuple[str, str], int] = {}
        carriers: list[int] = []
        keys: list[int] = []
        for position, event in enumerate(events):
            event_ids.append(event.event_id)
            timestamps.append(event.timestamp)
            for key in event.identifiers:
                number = numbers.get(key)
                if number is None:
                    number = numbers[key] = len(numbers)
                carriers.append(position)
                keys.append(number)
        return cls(event_ids, timestamps, list(numbers), _integers(carriers), _integers(keys))


def resolve(events: Iterable[Event], rules: Rules | None = None) -> Resolution:
    """Group events into customer profiles by their shared identifier values (see the module's
    docstring for the rules). Event ids must be unique."""
    return resolve_columns(EventColumns.of(events), rules)


def resolve_columns(columns: EventColumns, rules: Rules | None = None) -> Resolution:
    """:func:`resolve` on events given as columns."""
    rules = rules or Rules()
    order = _Order(columns)
    values = _Values(columns, order, rules)
    links = _Links(values)
    common = _common_values(links, values, rules)
    for identifier, detail in rules.common.items():
        index = values.index_of(identifier)
        if index is not None and not values.blocked[index]:
            common[index] = detail
    for index, detail in common.items():
        values.block(index, "common", detail)
    groups = _Groups(values, rules)
    for step, code in enumerate(links.canonical(order.moments, values.blocked)):
        groups.join(step, code, links.width)
    return _Report(order, values, links, groups).resolution()


def normalise(type_name: str, raw: str, rules: Rules) -> Identifier | None:
    """The identifier a raw value becomes in resolution; ``None`` when blank or malformed."""
    value = _normaliser(type_name, rules)(raw) if raw.strip() else None
    return None if value is None else Identifier(type_name, value)


def is_blocked_by_rule(identifier: Identifier, rules: Rules) -> str | None:
    """The description of the rule that blocks a normalised identifier, if one does."""
    rule = _rule_test(identifier.type, rules)(identifier.value)
    return None if rule is None else rule.describe()


def _normaliser(type_name: str, rules: Rules) -> Callable[[str], str | None]:
    return normaliser(rules.kind(type_name), country_code=rules.country_code)


def _rule_test(type_name: str, rules: Rules) -> Callable[[str], BlockRule | None]:
    """The blocklist compiled for one type, kept between calls (compiling it cost more than
    resolving a few events). The cache knows a blocklist by identity and holds it, so that its
    id stays its own: hashing sixty rules on every call cost a tenth of a small resolution."""
    key = (id(rules.blocklist), type_name, rules.kind(type_name), rules.country_code)
    cached = _RULE_TESTS.get(key)
    if cached is None or cached[0] is not rules.blocklist:
        if len(_RULE_TESTS) >= 256:
            _RULE_TESTS.clear()
        kind = rules.kind(type_name)
        applicable = [rule for rule in rules.blocklist if rule.applies_to(type_name, kind)]
        test = first_rule(applicable, normaliser(kind, country_code=rules.country_code))
        cached = _RULE_TESTS[key] = (rules.blocklist, test)
    return cached[1]


_RULE_TESTS: dict[
    tuple[int, str, Kind, str | None],
    tuple[tuple[BlockRule, ...], Callable[[str], BlockRule | None]],
] = {}


def _integers(numbers: Sequence[int]) -> npt.NDArray[np.int64]:
    return np.array(numbers, dtype=np.int64)


def _run_starts(ordered: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
    """Where each run of equal values begins in a sorted array."""
    begins = np.ones(len(ordered), dtype=bool)
    begins[1:] = ordered[1:] != ordered[:-1]
    return np.flatnonzero(begins)


def _distinct(numbers: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The distinct numbers, ascending (``np.unique`` hashes first, several times slower on
    a million numbers)."""
    ordered = np.sort(numbers)
    return ordered[_run_starts(ordered)]


def _counted(numbers: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The distinct numbers, ascending, and how often each occurs."""
    ordered = np.sort(numbers)
    starts = _run_starts(ordered)
    return ordered[starts], np.diff(np.append(starts, len(ordered)))


def _first_of_each(
    numbers: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.intp]]:
    """The distinct numbers, ascending, and where each first occurs."""
    by_number = np.argsort(numbers, kind="stable")
    starts = _run_starts(numbers[by_number])
    return numbers[by_number][starts], by_number[starts]


def _natural_id(event_id: str) -> str:
    """Numbers first and by value (``9`` before ``10``), then other ids as text."""
    if event_id.isascii() and event_id.isdigit():
        return f"0{len(event_id.lstrip('0')):020d}{event_id.lstrip('0')}{event_id}"
    return f"1{event_id}"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_UNDATED = 1 << 62  # after any datetime's microseconds since the epoch


class _Order:
    """The events in canonical order: earliest first, undated last, then by id (numerically
    where the id is a number). ``events[p]`` is the event at position ``p``, ``position`` the
    inverse; ``moments[p]`` is its rank among the distinct timestamps: it orders like the time
    and, unlike the position, does not depend on event ids."""

    def __init__(self, columns: EventColumns) -> None:
        event_ids, timestamps = columns.event_ids, columns.timestamps
        if len(set(event_ids)) < len(event_ids) or any(
            timestamp is not None and timestamp.tzinfo is None for timestamp in timestamps
        ):
            _refuse(event_ids, timestamps)
        times = [
            _UNDATED if timestamp is None else (timestamp - _EPOCH) // _MICROSECOND
            for timestamp in timestamps
        ]
        events = np.argsort(_integers(times), kind="stable")
        micro = _integers(times)[events]
        tied = np.flatnonzero(micro[1:] == micro[:-1])
        if tied.size:
            slots = np.union1d(tied, tied + 1)
            members = events[slots].tolist()
            members.sort(key=lambda event: (times[event], _natural_id(event_ids[event])))
            events[slots] = members
        self.count = len(event_ids)
        self.events = events
        self.position = np.empty_like(events)
        self.position[events] = np.arange(self.count)
        self.micro = micro
        self.moments = np.cumsum(np.concatenate(([0], micro[1:] != micro[:-1])))
        self.given_ids, self.given_timestamps = event_ids, timestamps

    def ids(self, positions: npt.NDArray[np.int64]) -> list[str]:
        """The ids of the events at these positions."""
        given = self.given_ids
        return [given[event] for event in self.events[positions].tolist()]


def _refuse(event_ids: Sequence[str], timestamps: Sequence[datetime | None]) -> None:
    """Name the first repeated id or naive timestamp, in order of the ids."""
    seen: set[str] = set()
    for event in sorted(range(len(event_ids)), key=lambda event: _natural_id(event_ids[event])):
        event_id, timestamp = event_ids[event], timestamps[event]
        if event_id in seen:
            raise ValueError(f"event id {event_id!r} is used by more than one event")
        seen.add(event_id)
        if timestamp is not None and timestamp.tzinfo is None:
            raise ValueError(f"event {event_id!r}: timestamp has no timezone")


class _Values:
    """The distinct normalised values, numbered in sorted order (so that numbers compare like
    the values), which of them each event carries, and which are blocked and why.

    The event at position ``p`` carries ``flat[starts[p]:starts[p + 1]]``, ascending and each
    once; ``event_of`` gives each entry's event. Arrays rather than a list per event: a million
    small containers made the garbage collector the slowest part of the resolution."""

    def __init__(self, columns: EventColumns, order: _Order, rules: Rules) -> None:
        keys_of: defaultdict[str, list[int]] = defaultdict(list)
        raws_of: defaultdict[str, list[str]] = defaultdict(list)
        for key, (type_name, raw) in enumerate(columns.identifiers):
            keys_of[type_name].append(key)
            raws_of[type_name].append(raw)
        numbers = np.empty(len(columns.identifiers), dtype=np.int64)
        self.types: list[str] = []
        self.identifiers: list[Identifier] = []
        self.type_of: list[int] = []
        for type_name in sorted(keys_of):
            local, found = _numbered(raws_of[type_name], _normaliser(type_name, rules))
            numbered = _integers(local)
            if found:
                ranked = sorted(range(len(found)), key=found.__getitem__)
                rank = np.empty(len(found), dtype=np.int64)
                rank[ranked] = np.arange(len(found)) + len(self.identifiers)
                numbered[numbered >= 0] = rank[numbered[numbered >= 0]]
                self.type_of += [len(self.types)] * len(found)
                self.types.append(type_name)
                self.identifiers += map(
                    Identifier._make, zip(repeat(type_name), map(found.__getitem__, ranked))
                )
            numbers[_integers(keys_of[type_name])] = numbered
        carried = numbers[columns.keys]
        events = order.position[columns.carriers]
        self.invalid = self._malformed(columns, carried, events)
        width = len(self.identifiers)
        pairs = _distinct(events[carried >= 0] * width + carried[carried >= 0])
        self.event_of, self.flat = np.divmod(pairs, max(width, 1))
        self.starts = np.searchsorted(self.event_of, np.arange(order.count + 1))
        self.blocked = np.zeros(width, dtype=bool)
        self.why_blocked: dict[int, tuple[str, str]] = {}
        self._apply_blocklist(rules)

    @staticmethod
    def _malformed(
        columns: EventColumns, carried: npt.NDArray[np.int64], events: npt.NDArray[np.int64]
    ) -> tuple[InvalidValue, ...]:
        """Each malformed value as written (trimmed), and in how many events."""
        malformed = carried == _MALFORMED
        if not malformed.any():
            return ()
        keys = columns.keys[malformed]
        spellings: dict[tuple[str, str], int] = {}
        spelling_of = np.zeros(len(columns.identifiers), dtype=np.int64)
        for key in _distinct(keys).tolist():
            type_name, raw = columns.identifiers[key]
            spelling_of[key] = spellings.setdefault((type_name, raw.strip()), len(spellings))
        seen = _distinct(spelling_of[keys] * (len(columns.event_ids) + 1) + events[malformed])
        counts = np.bincount(seen // (len(columns.event_ids) + 1), minlength=len(spellings))
        return tuple(
            InvalidValue(type_name, value, count)
            for (type_name, value), count in sorted(zip(spellings, counts.tolist(), strict=True))
        )

    def _apply_blocklist(self, rules: Rules) -> None:
        for type_number, type_name in enumerate(self.types):
            test = _rule_test(type_name, rules)
            start = bisect.bisect_left(self.type_of, type_number)
            end = bisect.bisect_right(self.type_of, type_number)
            for index, (_, value) in enumerate(self.identifiers[start:end], start):
                rule = test(value)
                if rule is not None:
                    self.block(index, "rule", rule.describe())

    def index_of(self, identifier: Identifier) -> int | None:
        """The number of a value the events carry, else ``None``."""
        at = bisect.bisect_left(self.identifiers, identifier)
        found = at < len(self.identifiers) and self.identifiers[at] == identifier
        return at if found else None

    def block(self, index: int, reason: str, detail: str) -> None:
        self.blocked[index] = True
        self.why_blocked[index] = (reason, detail)


_BLANK = -2
_MALFORMED = -1


def _numbered(
    raws: list[str], normalise: Callable[[str], str | None]
) -> tuple[list[int], list[str]]:
    """Each raw value's number among the distinct values they normalise to (in order of first
    appearance), else ``_BLANK`` or ``_MALFORMED``; and those values."""
    found: dict[str, int] = {}
    numbers: list[int] = []
    for raw in raws:
        if not raw.strip():
            numbers.append(_BLANK)
        elif (value := normalise(raw)) is None:
            numbers.append(_MALFORMED)
        else:
            numbers.append(found.setdefault(value, len(found)))
    return numbers, list(found)


class _Links:
    """Every pair of values seen in one event, as ``left * width + right`` (left < right),
    ascending in ``codes``: in how many events (``count``), and the position of the first
    (``first``; events are in canonical order)."""

    def __init__(self, values: _Values) -> None:
        self.width = width = len(values.identifiers)
        flat, event_of = values.flat, values.event_of
        entries = np.arange(len(flat))
        after = values.starts[event_of + 1] - entries - 1
        codes, events = [np.empty(0, dtype=np.int64)], [np.empty(0, dtype=np.int64)]
        distance = 1
        while entries.size:
            entries = entries[after[entries] >= distance]
            codes.append(flat[entries] * width + flat[entries + distance])
            events.append(event_of[entries])
            distance += 1
        code, event = np.concatenate(codes), np.concatenate(events)
        by_code = np.lexsort((event, code))
        code, event = code[by_code], event[by_code]
        starts = _run_starts(code)
        self.codes = code[starts]
        self.first = event[starts]
        self.count = np.diff(np.append(starts, len(code)))

    def sides(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        return np.divmod(self.codes, max(self.width, 1))

    def canonical(
        self, moments: npt.NDArray[np.int64], blocked: npt.NDArray[np.bool_]
    ) -> list[int]:
        """The links between unblocked values: most events first, then the earliest, then by
        the values."""
        left, right = self.sides()
        eligible = ~(blocked[left] | blocked[right])
        codes = self.codes[eligible]
        ranked = np.lexsort((codes, moments[self.first[eligible]], -self.count[eligible]))
        return codes[ranked].tolist()  # type: ignore[no-any-return]

    def records(self, codes: list[int], order: _Order, values: _Values) -> list[Link]:
        """The links behind some codes."""
        at = np.searchsorted(self.codes, _integers(codes))
        identifiers = values.identifiers
        return [
            Link(identifiers[code // self.width], identifiers[code % self.width], count, first)
            for code, count, first in zip(
                codes, self.count[at].tolist(), order.ids(self.first[at]), strict=True
            )
        ]


def _common_values(links: _Links, values: _Values, rules: Rules) -> dict[int, str]:
    """Values seen with so many distinct values of one type (their own included) that these
    cannot fit ``max_profiles_per_value`` profiles under that type's cap, and what they were
    seen with.
    Counted once, over the values no rule blocks, so that the answer depends on no order."""
    blocked, kinds = values.blocked, len(values.types)
    type_of = _integers(values.type_of)
    left, right = links.sides()
    free = ~(blocked[left] | blocked[right])
    left, right = left[free], right[free]
    partners, counts = _counted(
        np.concatenate((left * kinds + type_of[right], right * kinds + type_of[left]))
    )
    spans = rules.max_profiles_per_value
    fits = [rules.cap(name) * spans for name in values.types]
    index, type_number = np.divmod(partners, max(kinds, 1))
    over = counts > _integers(fits)[type_number]
    index, type_number, counts = index[over], type_number[over], counts[over]
    # Partners ascend by value, then type: the first of each value is its smallest type.
    worst = _run_starts(index)
    profiles = "one profile" if spans == 1 else f"{spans} profiles"
    return {
        index: f"seen with {count} {values.types[type_number]} values; "
        f"at most {fits[type_number]} fit in {profiles}"
        for index, type_number, count in zip(
            index[worst].tolist(), type_number[worst].tolist(), counts[worst].tolist(), strict=True
        )
    }


class _Groups:
    """Union-find over value numbers that refuses a join putting together the two sides of a
    split or exceeding a type's cap, and keeps every join ``(step, link, sizes)`` and refusal
    (``(step, link, separation)``, ``(step, link, type, would hold)``). A group's values of each
    type are counted in one flat list, ``held[root * types + type]``; the sides of splits it
    holds are bits of ``sides[root]`` (``2 * separation`` for left, the next bit for right),
    kept only for groups holding one."""

    def __init__(self, values: _Values, rules: Rules) -> None:
        size = len(values.identifiers)
        self.types = len(values.types)
        self.parent = list(range(size))
        self.size = [1] * size
        self.held = [0] * (size * self.types)
        for index, type_number in enumerate(values.type_of):
            self.held[index * self.types + type_number] = 1
        self.caps = [rules.cap(name) for name in values.types]
        self.sides: dict[int, int] = {}
        for number, separation in enumerate(rules.separations):
            for bit, side in ((1, separation.left), (2, separation.right)):
                for identifier in side:
                    held = values.index_of(identifier)
                    if held is not None:
                        self.sides[held] = self.sides.get(held, 0) | bit << 2 * number
        self.lefts = sum(1 << 2 * number for number in range(len(rules.separations)))
        self.joins: list[tuple[int, int, tuple[int, int]]] = []
        self.refusals: list[tuple[int, int, int, int]] = []
        self.separated: list[tuple[int, int, int]] = []

    def find(self, index: int) -> int:
        parent = self.parent
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    def join(self, step: int, code: int, width: int) -> None:
        left, right = self.find(code // width), self.find(code % width)
        if left == right:
            return
        sides = self.sides.get(left, 0) | self.sides.get(right, 0)
        both = sides & sides >> 1 & self.lefts
        if both:
            self.separated.append((step, code, ((both & -both).bit_length() - 1) // 2))
            return
        held, types = self.held, self.types
        at_left, at_right = left * types, right * types
        for type_number, cap in enumerate(self.caps):
            would_hold = held[at_left + type_number] + held[at_right + type_number]
            if would_hold > cap:
                self.refusals.append((step, code, type_number, would_hold))
                return
        self.joins.append((step, code, (self.size[left], self.size[right])))
        if self.size[left] < self.size[right]:
            left, right, at_left, at_right = right, left, at_right, at_left
        self.parent[right] = left
        self.size[left] += self.size[right]
        for type_number in range(types):
            held[at_left + type_number] += held[at_right + type_number]
        if sides:
            self.sides[left] = sides


class _Report:
    """The groups as named profiles, each event given to one, and the records."""

    def __init__(self, order: _Order, values: _Values, links: _Links, groups: _Groups):
        self.order, self.values, self.links, self.groups = order, values, links, groups
        root = _roots(groups.parent)
        self.root = root.tolist()
        self.free = np.flatnonzero(~values.blocked)
        named, smallest = _first_of_each(root[self.free])
        self.name = {
            named_root: _profile_id(values.identifiers[index])
            for named_root, index in zip(named.tolist(), self.free[smallest].tolist(), strict=True)
        }
        self.owner = np.full(order.count, -1, dtype=np.int64)
        self.split: list[tuple[int, set[int]]] = []
        kept = ~values.blocked[values.flat]
        events, roots = values.event_of[kept], root[values.flat[kept]]
        if events.size:
            self._own(events, roots)
        self.blocked_events: dict[int, int] = {}
        self.blocked_owners: defaultdict[int, list[int]] = defaultdict(list)
        self._blocked_seen(values.flat[~kept], values.event_of[~kept])

    def _own(self, events: npt.NDArray[np.int64], roots: npt.NDArray[np.int64]) -> None:
        """Give each event to the root holding most of its unblocked values (on a tie, the one
        holding the smallest: the first counted, as ``max`` keeps the first of equals); note a
        split."""
        starts = _run_starts(events)
        lowest = np.minimum.reduceat(roots, starts)
        whole = lowest == np.maximum.reduceat(roots, starts)
        self.owner[events[starts[whole]]] = lowest[whole]
        ends = np.append(starts, len(events))[1:]
        for start, end in zip(starts[~whole].tolist(), ends[~whole].tolist(), strict=True):
            held = Counter(roots[start:end].tolist())
            owner = max(held, key=held.__getitem__)
            position = int(events[start])
            self.owner[position] = owner
            self.split.append((position, set(held) - {owner}))

    def _blocked_seen(self, blocked: npt.NDArray[np.int64], events: npt.NDArray[np.int64]) -> None:
        """In how many events each blocked value was, and which roots own them."""
        indexes, counts = _counted(blocked)
        self.blocked_events = dict(zip(indexes.tolist(), counts.tolist(), strict=True))
        owners = self.owner[events]
        owned = owners >= 0
        width = max(self.links.width, 1)
        for pair in _distinct(blocked[owned] * width + owners[owned]).tolist():
            index, owner = divmod(pair, width)
            self.blocked_owners[index].append(owner)

    def resolution(self) -> Resolution:
        values, groups, order = self.values, self.groups, self.order
        return Resolution(
            events=order.count,
            identifier_types=tuple(values.types),
            profiles=self._profiles(),
            merges=tuple(
                [
                    Merge(step, self._profile_of(code % self.links.width), link, sizes)
                    for (step, code, sizes), link in zip(
                        groups.joins, self._links(code for _, code, _ in groups.joins), strict=True
                    )
                ]
            ),
            refusals=tuple(
                CapRefusal(
                    step,
                    link,
                    self._sides(code),
                    values.types[type_number],
                    held,
                    groups.caps[type_number],
                )
                for (step, code, type_number, held), link in zip(
                    groups.refusals,
                    self._links(code for _, code, _, _ in groups.refusals),
                    strict=True,
                )
            ),
            blocked=tuple(
                BlockedValue(
                    values.identifiers[index],
                    reason,
                    detail,
                    self.blocked_events.get(index, 0),
                    tuple(sorted(self.name[root] for root in self.blocked_owners[index])),
                )
                for index, (reason, detail) in sorted(values.why_blocked.items())
            ),
            invalid=values.invalid,
            unresolved_events=tuple(order.ids(np.flatnonzero(self.owner < 0))),
            split_events=tuple(
                SplitEvent(
                    event_id,
                    self.name[int(self.owner[position])],
                    tuple(sorted(self.name[root] for root in others)),
                )
                for (position, others), event_id in zip(
                    self.split,
                    order.ids(_integers([position for position, _ in self.split])),
                    strict=True,
                )
            ),
            separated=tuple(
                SeparationRefusal(step, link, self._sides(code), separation)
                for (step, code, separation), link in zip(
                    groups.separated,
                    self._links(code for _, code, _ in groups.separated),
                    strict=True,
                )
            ),
        )

    def _links(self, codes: Iterable[int]) -> list[Link]:
        return self.links.records(list(codes), self.order, self.values)

    def _sides(self, code: int) -> tuple[str, str]:
        left, right = divmod(code, self.links.width)
        return self._profile_of(left), self._profile_of(right)

    def _profile_of(self, index: int) -> str:
        return self.name[self.root[index]]

    def _profiles(self) -> tuple[Profile, ...]:
        values, order = self.values, self.order
        root = _integers(self.root)
        members = self.free[np.argsort(root[self.free], kind="stable")]
        member_roots = root[members]
        starts = _run_starts(member_roots)
        ends = np.append(starts, len(members))[1:]
        profile_roots = member_roots[starts]
        owned = np.flatnonzero(self.owner >= 0)
        events = owned[np.argsort(self.owner[owned], kind="stable")]
        owners = self.owner[events]
        first = np.searchsorted(owners, profile_roots)
        last = np.searchsorted(owners, profile_roots, side="right")
        dated = np.concatenate(([0], np.cumsum(order.micro[events] != _UNDATED)))
        last_dated = first + dated[last] - dated[first] - 1
        identifiers = [values.identifiers[index] for index in members.tolist()]
        event_ids = order.ids(events)
        given = order.events[events]
        first_seen = _picked(order.given_timestamps, given, first, last > first)
        last_seen = _picked(order.given_timestamps, given, last_dated, last_dated >= first)
        profiles = [
            Profile(
                self.name[profile_root],
                tuple(identifiers[start:end]),
                tuple(event_ids[low:high]),
                earliest,
                latest,
            )
            for profile_root, start, end, low, high, earliest, latest in zip(
                profile_roots.tolist(),
                starts.tolist(),
                ends.tolist(),
                first.tolist(),
                last.tolist(),
                first_seen,
                last_seen,
                strict=True,
            )
        ]
        profiles.sort(key=lambda profile: profile.profile_id)
        return tuple(profiles)


def _picked(
    items: Sequence[datetime | None],
    given: npt.NDArray[np.int64],
    positions: npt.NDArray[np.int64],
    present: npt.NDArray[np.bool_],
) -> list[datetime | None]:
    """``items[given[p]]`` for each position ``p`` that is ``present``, else ``None``: only
    these become Python numbers (a million of them weighed 40 MB)."""
    picked: list[datetime | None] = [None] * len(positions)
    for slot, index in zip(
        np.flatnonzero(present).tolist(), given[positions[present]].tolist(), strict=True
    ):
        picked[slot] = items[index]
    return picked


def _roots(parent: list[int]) -> npt.NDArray[np.int64]:
    """Each value's root: pointers followed until they stop moving."""
    root = _integers(parent)
    while True:
        above = root[root]
        if np.array_equal(above, root):
            return root
        root = above


def _profile_id(identifier: Identifier) -> str:
    """Named after the profile's smallest identifier, hashed: the name stays as the profile
    gains identifiers (unless a smaller one), and carries no personal data."""
    digest = hashlib.sha256("\x1f".join(identifier).encode()).hexdigest()
    return f"p_{digest[:16]}"
