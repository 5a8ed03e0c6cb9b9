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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import NamedTuple

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


def resolve(events: Iterable[Event], rules: Rules | None = None) -> Resolution:
    """Group events into customer profiles by their shared identifier values (see the module's
    docstring for the rules). Event ids must be unique."""
    rules = rules or Rules()
    ordered = _in_order(events)
    values = _Values(ordered, rules)
    links = _Links(values)
    common = _common_values(links, values, rules)
    for identifier, detail in rules.common.items():
        index = values.index_of(identifier)
        if index is not None and not values.blocked[index]:
            common[index] = detail
    for index, detail in common.items():
        values.block(index, "common", detail)
    groups = _Groups(values, rules)
    for step, code in enumerate(links.canonical(_moments(ordered), values.blocked)):
        groups.join(step, code, links.width)
    return _Report(ordered, values, links, groups).resolution()


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
    kind = rules.kind(type_name)
    applicable = [rule for rule in rules.blocklist if rule.applies_to(type_name, kind)]
    return first_rule(applicable, _normaliser(type_name, rules))


def _in_order(events: Iterable[Event]) -> list[Event]:
    """Earliest first, undated last, then by id (numerically where the id is a number). The
    keys are strings and integers rather than tuples: a million tuples wake the garbage
    collector, which then walks every event."""
    ordered = sorted(events, key=_natural_id)
    ids: set[str] = set()
    for event in ordered:
        if event.event_id in ids:
            raise ValueError(f"event id {event.event_id!r} is used by more than one event")
        ids.add(event.event_id)
        if event.timestamp is not None and event.timestamp.tzinfo is None:
            raise ValueError(f"event {event.event_id!r}: timestamp has no timezone")
    ordered.sort(key=_microseconds)
    return ordered


def _natural_id(event: Event) -> str:
    """Numbers first and by value (``9`` before ``10``), then other ids as text."""
    event_id = event.event_id
    if event_id.isascii() and event_id.isdigit():
        return f"0{len(event_id.lstrip('0')):020d}{event_id.lstrip('0')}{event_id}"
    return f"1{event_id}"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_UNDATED = 1 << 62  # after any datetime's microseconds since the epoch


def _microseconds(event: Event) -> int:
    if event.timestamp is None:
        return _UNDATED
    return (event.timestamp - _EPOCH) // _MICROSECOND


def _moments(ordered: list[Event]) -> list[int]:
    """Each event's rank among the distinct timestamps (undated last): it orders like the time
    and, unlike the position, does not depend on event ids."""
    moments: list[int] = []
    rank = -1
    for position, event in enumerate(ordered):
        if position == 0 or event.timestamp != ordered[position - 1].timestamp:
            rank += 1
        moments.append(rank)
    return moments


class _Values:
    """The distinct normalised values, numbered in sorted order (so that numbers compare like
    the values), which of them each event carries, and which are blocked and why.

    An event's numbers are ``flat[starts[p]:starts[p + 1]]``, ascending: flat lists of integers
    rather than a list per event, because a million small containers make the garbage collector
    the slowest part of the resolution."""

    def __init__(self, events: list[Event], rules: Rules) -> None:
        self.normalisers: dict[str, Callable[[str], str | None]] = {}
        spelled: dict[tuple[str, str], int] = {}
        numbering: dict[Identifier, int] = {}
        malformed: set[tuple[str, str, int]] = set()
        flat: list[int] = []
        starts = [0]
        spelling, carry = spelled.get, flat.append
        for position, event in enumerate(events):
            start = len(flat)
            for key in event.identifiers:
                number = spelling(key)
                if number is None:
                    number = spelled[key] = self._number(key, rules, numbering)
                if number >= 0:
                    carry(number)
                elif number == _MALFORMED:
                    malformed.add((key[0], key[1].strip(), position))
            if len(flat) - start > 1:
                flat[start:] = set(flat[start:])
            starts.append(len(flat))
        found = list(numbering)
        order = sorted(range(len(found)), key=found.__getitem__)
        rank = [0] * len(found)
        for position, number in enumerate(order):
            rank[number] = position
        self.identifiers = [found[number] for number in order]
        self.flat = flat = [rank[number] for number in flat]
        self.starts = starts
        for start, end in pairwise(starts):
            if end - start == 2:
                if flat[start] > flat[start + 1]:
                    flat[start], flat[start + 1] = flat[start + 1], flat[start]
            elif end - start > 2:
                flat[start:end] = sorted(flat[start:end])
        self.types = sorted({identifier.type for identifier in self.identifiers})
        type_number = {name: index for index, name in enumerate(self.types)}
        self.type_of = [type_number[identifier.type] for identifier in self.identifiers]
        invalid = Counter((type_name, value) for type_name, value, _ in malformed)
        self.invalid = tuple(InvalidValue(*key, count) for key, count in sorted(invalid.items()))
        self.blocked = [False] * len(self.identifiers)
        self.why_blocked: dict[int, tuple[str, str]] = {}
        self._apply_blocklist(rules)

    def _number(self, key: tuple[str, str], rules: Rules, numbering: dict[Identifier, int]) -> int:
        """The value's provisional number, ``_BLANK`` or ``_MALFORMED``."""
        type_name, raw = key
        if not raw.strip():
            return _BLANK
        normalise = self.normalisers.get(type_name)
        if normalise is None:
            normalise = self.normalisers[type_name] = _normaliser(type_name, rules)
        value = normalise(raw)
        if value is None:
            return _MALFORMED
        return numbering.setdefault(Identifier(type_name, value), len(numbering))

    def _apply_blocklist(self, rules: Rules) -> None:
        tests = {name: _rule_test(name, rules) for name in self.types}
        for index, identifier in enumerate(self.identifiers):
            rule = tests[identifier.type](identifier.value)
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


class _Links:
    """Every pair of values seen in one event, as ``left * width + right`` (left < right): in
    how many events, and the position of the first (events are in canonical order)."""

    def __init__(self, values: _Values) -> None:
        self.width = len(values.identifiers)
        self.count: dict[int, int] = {}
        self.first: dict[int, int] = {}
        flat = values.flat
        starts = values.starts
        for position, (start, end) in enumerate(pairwise(starts)):
            for at in range(start, end - 1):
                base = flat[at] * self.width
                for right in flat[at + 1 : end]:
                    code = base + right
                    if code in self.count:
                        self.count[code] += 1
                    else:
                        self.count[code] = 1
                        self.first[code] = position

    def pairs(self) -> Iterable[tuple[int, int]]:
        return (divmod(code, self.width) for code in self.count)

    def canonical(self, moments: list[int], blocked: list[bool]) -> list[int]:
        """The links between unblocked values: most events first, then the earliest, then by
        the values."""
        count, first, width = self.count, self.first, self.width
        eligible = [code for code in count if not (blocked[code // width] or blocked[code % width])]
        eligible.sort(key=lambda code: (-count[code], moments[first[code]], code))
        return eligible


def _common_values(links: _Links, values: _Values, rules: Rules) -> dict[int, str]:
    """Values seen with so many distinct values of one type (their own included) that these
    cannot fit ``max_profiles_per_value`` profiles under that type's cap, and what they were
    seen with.
    Counted once, over the values no rule blocks, so that the answer depends on no order."""
    blocked, type_of, kinds = values.blocked, values.type_of, len(values.types)
    partners: dict[int, int] = {}
    for left, right in links.pairs():
        if not (blocked[left] or blocked[right]):
            for key in (left * kinds + type_of[right], right * kinds + type_of[left]):
                partners[key] = partners.get(key, 0) + 1
    spans = rules.max_profiles_per_value
    fits = [rules.cap(name) * spans for name in values.types]
    worst: dict[int, tuple[int, int]] = {}
    for key, count in partners.items():
        index, type_number = divmod(key, kinds)
        if count > fits[type_number] and type_number < worst.get(index, (kinds, 0))[0]:
            worst[index] = (type_number, count)
    profiles = "one profile" if spans == 1 else f"{spans} profiles"
    return {
        index: f"seen with {count} {values.types[type_number]} values; "
        f"at most {fits[type_number]} fit in {profiles}"
        for index, (type_number, count) in sorted(worst.items())
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

    def __init__(self, events: list[Event], values: _Values, links: _Links, groups: _Groups):
        self.events, self.values, self.links, self.groups = events, values, links, groups
        blocked = values.blocked
        self.root = [groups.find(index) for index in range(len(values.identifiers))]
        self.name: dict[int, str] = {}
        for index, root in enumerate(self.root):
            if not blocked[index] and root not in self.name:
                self.name[root] = _profile_id(values.identifiers[index])
        self.owner: list[int] = []
        self.split: list[tuple[int, set[int]]] = []
        self.blocked_events: Counter[int] = Counter()
        self.blocked_owners: defaultdict[int, set[int]] = defaultdict(set)
        flat = values.flat
        for start, end in pairwise(values.starts):
            if end - start == 1 and not blocked[flat[start]]:
                self.owner.append(self.root[flat[start]])
            else:
                self._own(flat[start:end])

    def _own(self, numbers: list[int]) -> None:
        """Give an event to the root holding most of its values (on a tie, the one holding the
        smallest: the first counted, as ``max`` keeps the first of equals); note a split, and
        where its blocked values ended."""
        blocked = self.values.blocked
        roots = [self.root[index] for index in numbers if not blocked[index]]
        if not roots:
            owner = -1
        elif roots.count(roots[0]) == len(roots):
            owner = roots[0]
        else:
            held = Counter(roots)
            owner = max(held, key=held.__getitem__)
            self.split.append((len(self.owner), set(held) - {owner}))
        self.owner.append(owner)
        if len(roots) < len(numbers):
            for index in numbers:
                if blocked[index]:
                    self.blocked_events[index] += 1
                    if owner >= 0:
                        self.blocked_owners[index].add(owner)

    def resolution(self) -> Resolution:
        return Resolution(
            events=len(self.events),
            identifier_types=tuple(self.values.types),
            profiles=self._profiles(),
            merges=tuple(
                Merge(step, self._profile_of(code % self.links.width), self._link(code), sizes)
                for step, code, sizes in self.groups.joins
            ),
            refusals=tuple(
                CapRefusal(
                    step,
                    self._link(code),
                    self._sides(code),
                    self.values.types[type_number],
                    held,
                    self.groups.caps[type_number],
                )
                for step, code, type_number, held in self.groups.refusals
            ),
            blocked=tuple(
                BlockedValue(
                    self.values.identifiers[index],
                    reason,
                    detail,
                    self.blocked_events[index],
                    tuple(sorted(self.name[root] for root in self.blocked_owners[index])),
                )
                for index, (reason, detail) in sorted(self.values.why_blocked.items())
            ),
            invalid=self.values.invalid,
            unresolved_events=tuple(
                event.event_id
                for event, owner in zip(self.events, self.owner, strict=True)
                if owner < 0
            ),
            split_events=tuple(
                SplitEvent(
                    self.events[position].event_id,
                    self.name[self.owner[position]],
                    tuple(sorted(self.name[root] for root in others)),
                )
                for position, others in self.split
            ),
            separated=tuple(
                SeparationRefusal(step, self._link(code), self._sides(code), separation)
                for step, code, separation in self.groups.separated
            ),
        )

    def _sides(self, code: int) -> tuple[str, str]:
        left, right = divmod(code, self.links.width)
        return self._profile_of(left), self._profile_of(right)

    def _profile_of(self, index: int) -> str:
        return self.name[self.root[index]]

    def _link(self, code: int) -> Link:
        left, right = divmod(code, self.links.width)
        return Link(
            self.values.identifiers[left],
            self.values.identifiers[right],
            self.links.count[code],
            self.events[self.links.first[code]].event_id,
        )

    def _profiles(self) -> tuple[Profile, ...]:
        members: defaultdict[int, list[Identifier]] = defaultdict(list)
        for index, root in enumerate(self.root):
            if not self.values.blocked[index]:
                members[root].append(self.values.identifiers[index])
        owned: defaultdict[int, list[Event]] = defaultdict(list)
        for event, owner in zip(self.events, self.owner, strict=True):
            if owner >= 0:
                owned[owner].append(event)
        profiles = []
        for root, identifiers in members.items():
            events = owned[root]
            dated = (event.timestamp for event in reversed(events) if event.timestamp is not None)
            profiles.append(
                Profile(
                    self.name[root],
                    tuple(identifiers),
                    tuple([event.event_id for event in events]),
                    events[0].timestamp if events else None,
                    next(dated, None),
                )
            )
        profiles.sort(key=lambda profile: profile.profile_id)
        return tuple(profiles)


def _profile_id(identifier: Identifier) -> str:
    """Named after the profile's smallest identifier, hashed: the name stays as the profile
    gains identifiers (unless a smaller one), and carries no personal data."""
    digest = hashlib.sha256("\x1f".join(identifier).encode()).hexdigest()
    return f"p_{digest[:16]}"
