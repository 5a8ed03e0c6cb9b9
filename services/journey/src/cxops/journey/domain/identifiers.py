"""Identifier values as identity resolution sees them: a kind (email, phone or id) for each
identifier type, one spelling per value so that trivially different spellings join, and the rules
that block a value from ever joining two customers (shared inboxes, placeholder numbers).
"""

import fnmatch
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """How an identifier type's values are normalised and which default blocklist applies."""

    EMAIL = "email"
    PHONE = "phone"
    ID = "id"


_PHONE_NAMES = re.compile(r"phone|mobile|msisdn|(?:^|[^a-z])(?:tel|cell)(?:$|[^a-z])")


def kind_of(type_name: str) -> Kind:
    """The kind a type's name suggests: ``email``, ``work_email`` → email; ``phone``,
    ``mobile``, ``msisdn``, ``tel`` → phone; anything else (``crm_id``, ``cookie``) → id."""
    name = type_name.lower()
    if "mail" in name:
        return Kind.EMAIL
    if _PHONE_NAMES.search(name):
        return Kind.PHONE
    return Kind.ID


_EXTENSION = re.compile(r"\s*(?:ext\.?|extension|x|#)\s*\d{1,6}\s*$", re.IGNORECASE)
_NOT_DIGIT = re.compile(r"\D")
_INTERNATIONAL = re.compile(r"\D*\+")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


def normalise_email(raw: str) -> str | None:
    """Trimmed and lowercased, without a ``mailto:`` prefix or a display name
    (``Ann <ann@x.com>``); ``None`` unless it looks like ``local@domain.tld``."""
    value = raw.strip().lower()
    if value.endswith(">") and "<" in value:
        value = value[value.rindex("<") + 1 : -1].strip()
    value = value.removeprefix("mailto:")
    return value if _EMAIL.fullmatch(value) else None


def normalise_phone(raw: str, *, country_code: str | None = None) -> str | None:
    """Digits only, with ``+`` for an international number (a ``+`` before the first digit, or
    ``00`` then a country code, which never starts with 0), and without an extension. With
    ``country_code``, a national number becomes international: a trunk ``0`` is dropped
    (``07911 123456`` → ``+447911123456``), and a number already starting with the code and
    longer than 10 digits only gains the ``+``. ``None`` outside 7-15 digits."""
    text = _EXTENSION.sub("", raw.strip())
    digits = _NOT_DIGIT.sub("", text)
    if _INTERNATIONAL.match(text):
        value = "+" + digits
    elif digits.startswith("00") and not digits.startswith("000"):
        value = "+" + digits[2:]
    elif country_code is None:
        value = digits
    elif digits.startswith(country_code) and len(digits) > 10:
        value = "+" + digits
    else:
        value = "+" + country_code + digits.removeprefix("0")
    count = len(value) - value.startswith("+")
    return value if 7 <= count <= 15 else None


def normalise_id(raw: str) -> str | None:
    """Trimmed, case kept (many systems' ids are case-sensitive); ``None`` when blank."""
    return raw.strip() or None


def normaliser(kind: Kind, *, country_code: str | None = None) -> Callable[[str], str | None]:
    """The function that gives a raw value of this kind its one spelling, or ``None`` when the
    value is malformed and must not join anything."""
    if kind is Kind.EMAIL:
        return normalise_email
    if kind is Kind.PHONE:
        return lambda raw: normalise_phone(raw, country_code=country_code)
    return normalise_id


@dataclass(frozen=True, slots=True)
class BlockRule:
    """One way a value is kept from joining anything: an exact ``value`` (normalised like the
    values it is compared with), a glob ``pattern`` or a ``regex`` (both matched against the
    whole normalised value, ignoring case); for one identifier ``type``, every type of one
    ``kind``, or, with neither, every type."""

    value: str | None = None
    pattern: str | None = None
    regex: str | None = None
    type: str | None = None
    kind: Kind | None = None

    def __post_init__(self) -> None:
        given = [x for x in (self.value, self.pattern, self.regex) if x is not None]
        if len(given) != 1:
            raise ValueError("a block rule has exactly one of value, pattern and regex")
        if not given[0].strip():
            raise ValueError("a block rule's value, pattern or regex must not be blank")
        if self.type is not None and self.kind is not None:
            raise ValueError("a block rule applies to a type or to a kind, not both")
        if self.regex is not None:
            try:
                re.compile(f"(?i:{self.regex})")
            except re.error as exc:
                raise ValueError(f"not a regular expression: {self.regex!r}: {exc}") from exc

    def applies_to(self, type_name: str, kind: Kind) -> bool:
        if self.type is not None:
            return self.type == type_name
        return self.kind is None or self.kind is kind

    def describe(self) -> str:
        """How the rule reads in a report: ``pattern info@*`` or ``value +15550100 (phone)``."""
        if self.value is not None:
            what = f"value {self.value}"
        elif self.pattern is not None:
            what = f"pattern {self.pattern}"
        else:
            what = f"regex {self.regex}"
        scope = self.type or (self.kind and str(self.kind))
        return f"{what} ({scope})" if scope else what

    def source(self, normalise: Callable[[str], str | None]) -> str | None:
        """The rule as a regular expression over one type's normalised values, given that
        type's normaliser; ``None`` when an exact value is not a valid value of that type."""
        if self.value is not None:
            exact = normalise(self.value)
            return None if exact is None else re.escape(exact)
        return f"(?i:{fnmatch.translate(self.pattern) if self.pattern else self.regex})"


def first_rule(
    rules: Sequence[BlockRule], normalise: Callable[[str], str | None]
) -> Callable[[str], BlockRule | None]:
    """A test of one type's normalised values: the first of ``rules`` that blocks a value, or
    ``None``. The rules are tried as one regular expression (those without groups, whose
    numbering would clash), so a value no rule blocks costs one match, not one per rule."""
    compiled = [
        (rule, re.compile(source))
        for rule in rules
        if (source := rule.source(normalise)) is not None
    ]
    plain = "|".join(f"(?:{pattern.pattern})" for _, pattern in compiled if not pattern.groups)
    any_plain = re.compile(plain) if plain else None
    grouped = [pattern for _, pattern in compiled if pattern.groups]

    def first(value: str) -> BlockRule | None:
        if (any_plain is None or not any_plain.fullmatch(value)) and not (
            grouped and any(pattern.fullmatch(value) for pattern in grouped)
        ):
            return None
        return next(rule for rule, pattern in compiled if pattern.fullmatch(value))

    return first


_ROLE_MAILBOXES = (
    "info admin administrator support help helpdesk hello contact contactus sales billing "
    "accounts office service customerservice enquiries inquiries team webmaster postmaster "
    "mailer-daemon noreply no-reply no_reply donotreply do-not-reply do_not_reply test "
    "unknown none null noemail nomail na"
).split()
_PLACEHOLDER_DOMAINS = "example.com example.org example.net test.com email.com domain.com".split()
_PLACEHOLDER_IDS = "-1 - none null nil unknown n/a na test guest anonymous tbd tba".split()

#: What blocks obvious placeholders and shared values unless a configuration turns it off.
DEFAULT_BLOCKLIST: tuple[BlockRule, ...] = (
    *(BlockRule(pattern=f"{name}@*", kind=Kind.EMAIL) for name in _ROLE_MAILBOXES),
    *(BlockRule(pattern=f"*@{domain}", kind=Kind.EMAIL) for domain in _PLACEHOLDER_DOMAINS),
    *(BlockRule(pattern=f"*@*.{tld}", kind=Kind.EMAIL) for tld in ("invalid", "test", "example")),
    # One digit repeated after at most a country code: 0000000, +1 111 111 1111.
    BlockRule(regex=r"\+?\d{0,3}?(\d)\1{6,}", kind=Kind.PHONE),
    BlockRule(pattern="*123456789*", kind=Kind.PHONE),
    BlockRule(pattern="*987654321*", kind=Kind.PHONE),
    # North America's fictional numbers: area code 555, and 555-0100 to 555-0199.
    BlockRule(pattern="+1555*", kind=Kind.PHONE),
    BlockRule(pattern="+1???55501??", kind=Kind.PHONE),
    *(BlockRule(pattern=value, kind=Kind.ID) for value in _PLACEHOLDER_IDS),
    BlockRule(regex=r"0+", kind=Kind.ID),
)
