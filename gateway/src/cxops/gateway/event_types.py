"""Event types and the patterns that select them, for webhook subscriptions and the event stream.

A type is a subject, ``cx.<service>.<entity>.<event>.v<N>``. A pattern is either an exact type
or a prefix wildcard, ``<prefix>.*``, that selects every type starting with ``<prefix>.``:
``cx.routing.*`` is everything routing publishes, ``cx.feedback.case.*`` every case event,
``cx.*`` everything. Patterns name a known service, so a typo (``cx.routin.*``) is refused when it
is written rather than silently matching nothing forever.

Pure: no I/O, so the rules can be tested on their own and used anywhere.
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cxops.gateway.settings import SERVICES

_SEGMENT = r"[a-z][a-z0-9_]*"
_EXACT = re.compile(rf"^cx\.{_SEGMENT}(\.{_SEGMENT})+\.v[0-9]+$")
_WILDCARD = re.compile(rf"^cx(\.{_SEGMENT})*\.\*$")
MAX_PATTERN_LENGTH = 200
_SERVICE = "(" + "|".join(SERVICES) + ")"
#: The same rules as :meth:`Pattern.parse`, as one regular expression for the API's schema
#: (an exact type or a wildcard, naming a known service), so that a client can tell before
#: sending.
PATTERN_SCHEMA = rf"^(cx\.{_SERVICE}(\.{_SEGMENT})+\.v[0-9]+|cx(\.{_SERVICE}(\.{_SEGMENT})*)?\.\*)$"


class InvalidPattern(ValueError):
    """Not an event type or a ``prefix.*`` wildcard over a known service."""


@dataclass(frozen=True, slots=True, order=True)
class Pattern:
    """An exact type (``prefix`` is the type, ``wildcard`` False) or every type under
    ``prefix + "."`` (``wildcard`` True)."""

    prefix: str
    wildcard: bool

    @classmethod
    def parse(cls, text: str) -> "Pattern":
        text = text.strip()
        if len(text) > MAX_PATTERN_LENGTH:
            raise InvalidPattern(f"longer than {MAX_PATTERN_LENGTH} characters")
        if _WILDCARD.fullmatch(text):
            pattern = cls(prefix=text[:-2], wildcard=True)
        elif _EXACT.fullmatch(text):
            pattern = cls(prefix=text, wildcard=False)
        else:
            raise InvalidPattern(
                f"{text!r} is neither an event type (cx.<service>.<entity>.<event>.v<N>) "
                "nor a wildcard (cx.<service>.*, cx.<service>.<entity>.*, cx.*)"
            )
        service = pattern.service
        if service is not None and service not in SERVICES:
            raise InvalidPattern(
                f"{text!r} names no service; known services: {', '.join(SERVICES)}"
            )
        return pattern

    def __str__(self) -> str:
        return f"{self.prefix}.*" if self.wildcard else self.prefix

    @property
    def service(self) -> str | None:
        """The service whose stream holds the matching types; None for ``cx.*`` (all of them)."""
        parts = self.prefix.split(".")
        return parts[1] if len(parts) > 1 else None

    def matches(self, event_type: str) -> bool:
        if self.wildcard:
            return event_type.startswith(self.prefix + ".")
        return event_type == self.prefix

    def covers(self, other: "Pattern") -> bool:
        """Every type ``other`` matches, this matches too."""
        if not self.wildcard:
            return not other.wildcard and other.prefix == self.prefix
        return other.prefix.startswith(self.prefix + ".")

    def subject(self) -> str:
        """The NATS subject filter selecting the same types."""
        return f"{self.prefix}.>" if self.wildcard else self.prefix


def parse_patterns(texts: Iterable[str]) -> list[Pattern]:
    """Parsed, without duplicates or patterns another one covers, in a stable order."""
    return simplest(Pattern.parse(text) for text in texts)


def simplest(patterns: Iterable[Pattern]) -> list[Pattern]:
    unique = sorted(set(patterns))
    return [p for p in unique if not any(q != p and q.covers(p) for q in unique)]


def matches_any(patterns: Sequence[Pattern], event_type: str) -> bool:
    return any(pattern.matches(event_type) for pattern in patterns)


def intersect(wanted: Iterable[Pattern], allowed: Iterable[Pattern]) -> list[Pattern]:
    """The types both select, as patterns: a wanted pattern narrowed to what is allowed.

    Two patterns overlap only when one covers the other (they are prefixes of dotted names), so
    the intersection of two is the narrower one, or nothing.
    """
    allowed = list(allowed)
    out: list[Pattern] = []
    for want in wanted:
        for allow in allowed:
            if allow == want or allow.covers(want):
                out.append(want)
            elif want.covers(allow):
                out.append(allow)
    return simplest(out)


def subjects_by_service(patterns: Iterable[Pattern]) -> dict[str, list[str]]:
    """Per service (in ``SERVICES`` order), the subject filters of its stream that select
    ``patterns``; services with none are left out."""
    chosen: dict[str, list[Pattern]] = {}
    for pattern in patterns:
        services = [pattern.service] if pattern.service else list(SERVICES)
        for service in services:
            if pattern.service is None:
                pattern_here = Pattern(prefix=f"cx.{service}", wildcard=True)
            else:
                pattern_here = pattern
            chosen.setdefault(service, []).append(pattern_here)
    return {
        service: [p.subject() for p in simplest(chosen[service])]
        for service in SERVICES
        if service in chosen
    }
