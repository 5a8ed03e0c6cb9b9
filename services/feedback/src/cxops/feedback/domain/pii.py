"""Personal data taken out of a verbatim before it is stored or shown.

Each kind found is replaced by a typed placeholder and counted, so a reader still sees that the
customer gave a phone number without seeing the number. The rules run from the most specific to
the least (email, IBAN, card, government id, phone, address): a card number is never half eaten
as a phone, and no placeholder contains a digit or an ``@``, so redacting redacted text changes
nothing.

Recognised:

- ``[EMAIL]``: ``local@domain.tld``.
- ``[IBAN]``: two letters, two check digits and 11-30 letters or digits, compact or in groups of
  four, in either case, only when the ISO 13616 mod-97 check passes.
- ``[CARD]``: 13-19 digits, optionally split by single spaces or dashes, only when the Luhn check
  passes. A digit run that fails it is left alone: an order or tracking number is not a card,
  and a run of 16 or more digits is not a phone either (E.164 numbers have at most 15).
- ``[GOV_ID]``: US Social Security numbers (``123-45-6789`` or with spaces; the area numbers 000,
  666 and 900-999, group 00 and serial 0000 are never issued, so they are not matched), UK
  National Insurance numbers (``AB 12 34 56 C``, with the prefixes HMRC never allocates
  excluded) and Spanish DNI/NIE numbers (``12345678Z``, ``X1234567L``, check letter verified).
- ``[PHONE]``: international forms starting with ``+`` or ``00`` (8-15 digits), North American
  forms with separators (``(555) 123-4567``, ``555.123.4567``, ``+1-202-555-0143``) and national
  forms with a trunk ``0`` (``07700 900123``, ``020 7946 0958``, ``06 12 34 56 78``; 9-11
  digits, one kind of separator). Not recognised: bare digit runs without ``+``/``00``/``0``
  (``5551234567``), and anything right after ``#``, "order", "invoice", "ref", "reference",
  "tracking", "booking", "confirmation" or "case/ticket number". Dates, times, prices,
  percentages and version numbers do not have a phone's shape and are left alone.
- ``[ADDRESS]``: a house number, one to three capitalised words and a street suffix
  (``221B Baker Street``, ``1600 Pennsylvania Avenue NW``), with the town and a UK postcode or
  US ZIP that follow it (``12 Oak Road, London SW1A 1AA``). A postcode or ZIP on its own only
  after "postcode"/"zip" or after a town and a comma (``Leeds, LS1 4AP``,
  ``..., Springfield, IL 62704``), keeping the label or town; UK postcodes in capitals only.
  Not recognised: addresses in lower case, without a house number, or in other languages' word
  order (``Calle Mayor 5``).
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

EMAIL = "email"
PHONE = "phone"
CARD = "card"
IBAN = "iban"
GOVERNMENT_ID = "government_id"
ADDRESS = "address"

PLACEHOLDERS: Mapping[str, str] = {
    EMAIL: "[EMAIL]",
    PHONE: "[PHONE]",
    CARD: "[CARD]",
    IBAN: "[IBAN]",
    GOVERNMENT_ID: "[GOV_ID]",
    ADDRESS: "[ADDRESS]",
}


@dataclass(frozen=True, slots=True)
class Redaction:
    """The text with personal data replaced, and how many of each kind were found."""

    text: str
    counts: Mapping[str, int]


_ANY_DIGIT = re.compile(r"[0-9]")

_EMAIL = re.compile(r"(?<![\w.%+-])[\w%+-]+(?:\.[\w%+-]+)*@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}\b")

_IBAN = re.compile(
    r"[A-Za-z]{2}(?<!\w..)[0-9]{2}"
    r"(?:[A-Za-z0-9]{11,30}|(?: [A-Za-z0-9]{4}){2,7}(?: [A-Za-z0-9]{1,3})?)\b"
)
_CARD = re.compile(r"[1-9](?<![0-9+].)(?<![0-9][ -].)(?:[ -]?[0-9]){12,18}(?![0-9]|[ -][0-9])")

_SSN = re.compile(r"[0-9]{3}(?<!\w...)(?<!000|666)(?<!9..)([- ])(?!00)[0-9]{2}\1(?!0000)[0-9]{4}\b")
_NATIONAL_INSURANCE = re.compile(
    r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z](?<!\w..)(?<!BG|GB|KN|NK|NT|TN|ZZ)"
    r" ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]\b",
    re.IGNORECASE,
)
_NATIONAL_INSURANCE_ENDING = re.compile(r"[0-9]{2} ?[A-Da-d]\b")
_SPANISH_ID = re.compile(r"([XYZxyz0-9])(?<!\w.)([0-9]{7})-?([A-Za-z])\b")
_SPANISH_ID_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"

_PHONE = re.compile(
    r"(?<![\w+.,/-])(?:"
    r"(?:\+|\b00)[1-9][0-9]{0,2}(?:[ .-]?(?:\([0-9]{1,4}\)|[0-9]{1,5})){1,6}"
    r"|(?:\(\s?[0-9]{3}\s?\)[ .-]?|[0-9]{3}[ .-])[0-9]{3}[ .-][0-9]{4}"
    r"|0[1-9][0-9]{0,3}([ .-]?)[0-9]{2,6}(?:\1[0-9]{2,6}){0,3}"
    r")(?![\w%]|[.,][0-9])"
)
_NOT_A_PHONE_AFTER = re.compile(
    r"(?:#|\b(?:order|invoice|ref|reference|tracking|booking|confirmation)"
    r"(?:\s*(?:no\.?|number|id))?|\b(?:case|ticket)\s*(?:no\.?|number|id|#))\s*[:#]?\s*$",
    re.IGNORECASE,
)

_STREET_SUFFIX = (
    r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Boulevard|Blvd|Way|Court|Ct|Place|Pl"
    r"|Close|Crescent|Terrace|Gardens|Square|Sq|Parkway|Pkwy|Highway|Hwy|Row|Mews|Grove)"
)
_UK_POSTCODE = r"[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][ABD-HJLNP-UW-Z]{2}"
_US_ZIP = r"[0-9]{5}(?:-[0-9]{4})?"
_ADDRESS = re.compile(
    rf"[0-9](?<!\w.)[0-9]{{0,4}}[A-Za-z]?,?\s+(?:[A-Z][\w'\u2019-]*\s+){{1,3}}{_STREET_SUFFIX}\b\.?"
    r"(?:\s+(?:N|S|E|W|NE|NW|SE|SW)\b)?"
    rf"(?:,?\s+(?:[A-Z][a-z]+(?:\s+[A-Z][a-z]+){{0,2}},?\s+)?(?:[A-Z]{{2}}\s+)?"
    rf"(?:{_UK_POSTCODE}|{_US_ZIP})\b)?"
)
_POSTCODE_ENDING = re.compile(r"[0-9](?:[ABD-HJLNP-UW-Z]{2}|[0-9]{4})\b")
_POSTCODE_AFTER_LABEL_OR_TOWN = re.compile(
    r"(?:(?i:\b(?:post ?code|zip(?: ?code)?)(?:\s+is)?)\s*:?\s*"
    r"|(?:,\s*[A-Z][a-z]+(?:\s+[A-Z][a-z]+){0,2},?\s+|\b[A-Z][a-z]+,\s*)"
    r"(?=[A-Z]{2}\s+[0-9]|[A-Z]{1,2}[0-9]))"
    rf"((?:[A-Z]{{2}}\s+)?{_US_ZIP}|{_UK_POSTCODE})\b"
)


def redact(text: str) -> Redaction:
    """Replace every recognised piece of personal data, most specific kind first.

    Cheap checks come before the patterns: most verbatims have no ``@`` and few digits, so
    most patterns cannot match and are not run; the slower letter-led patterns run only when
    the digit-led ending they need is there.
    """
    counts: dict[str, int] = {}
    if "@" in text:
        text = _replace(_EMAIL, text, EMAIL, counts)
    if not _ANY_DIGIT.search(text):
        return Redaction(text, counts)
    digits = _count_digits(text)
    if digits >= 8:
        text = _replace(_IBAN, text, IBAN, counts, _iban_replacement)
    if digits >= 13:
        text = _replace(_CARD, text, CARD, counts, _card_replacement)
    if digits >= 6 and _NATIONAL_INSURANCE_ENDING.search(text):
        text = _replace(_NATIONAL_INSURANCE, text, GOVERNMENT_ID, counts)
    if digits >= 7:
        text = _replace(_SPANISH_ID, text, GOVERNMENT_ID, counts, _spanish_id_replacement)
    if digits >= 8:
        text = _replace(_SSN, text, GOVERNMENT_ID, counts)
        text = _replace(_PHONE, text, PHONE, counts, _phone_replacement)
    text = _replace(_ADDRESS, text, ADDRESS, counts)
    if _POSTCODE_ENDING.search(text):
        text = _replace(_POSTCODE_AFTER_LABEL_OR_TOWN, text, ADDRESS, counts, _postcode_replacement)
    return Redaction(text, counts)


def _count_digits(text: str) -> int:
    return sum(map(text.count, "0123456789"))


_Replacement = Callable[[re.Match[str]], str | None]


def _replace(
    pattern: re.Pattern[str],
    text: str,
    kind: str,
    counts: dict[str, int],
    replacement: _Replacement | None = None,
) -> str:
    """Substitute the matches that ``replacement`` accepts (all when it is None) and count them.

    ``replacement`` returns the new text for a match, or None to leave the match as it is.
    """
    if not pattern.search(text):
        return text
    placeholder = PLACEHOLDERS[kind]

    def substitute(match: re.Match[str]) -> str:
        new = placeholder if replacement is None else replacement(match)
        if new is None:
            return match.group()
        counts[kind] = counts.get(kind, 0) + 1
        return new

    return pattern.sub(substitute, text)


def _iban_replacement(match: re.Match[str]) -> str | None:
    """The longest prefix of whole groups that passes mod-97: a grouped IBAN may be followed by
    an unrelated word or number that the pattern took as one more group."""
    candidate = match.group()
    while True:
        if is_valid_iban(candidate):
            return PLACEHOLDERS[IBAN] + match.group()[len(candidate) :]
        cut = candidate.rfind(" ")
        if cut < 15:
            return None
        candidate = candidate[:cut]


def is_valid_iban(candidate: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters to 10-35, mod 97 is 1."""
    compact = candidate.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _card_replacement(match: re.Match[str]) -> str | None:
    digits = match.group().replace(" ", "").replace("-", "")
    return PLACEHOLDERS[CARD] if passes_luhn(digits) else None


def passes_luhn(digits: str) -> bool:
    """The Luhn check digit test that every payment card number passes."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _spanish_id_replacement(match: re.Match[str]) -> str | None:
    first, rest, letter = match.groups()
    number = str("XYZ".index(first.upper())) + rest if first.isalpha() else first + rest
    expected = _SPANISH_ID_LETTERS[int(number) % 23]
    return PLACEHOLDERS[GOVERNMENT_ID] if letter.upper() == expected else None


def _phone_replacement(match: re.Match[str]) -> str | None:
    found = match.group()
    digits = _count_digits(found)
    if found.startswith(("+", "00")):
        plausible = 8 <= digits <= 15
    elif found.startswith("0"):
        plausible = 9 <= digits <= 11
    else:
        plausible = digits == 10
    if not plausible:
        return None
    if _NOT_A_PHONE_AFTER.search(match.string, max(0, match.start() - 30), match.start()):
        return None
    return PLACEHOLDERS[PHONE]


def _postcode_replacement(match: re.Match[str]) -> str:
    """Keep the label or town, replace only the code."""
    return match.group()[: match.start(1) - match.start()] + PLACEHOLDERS[ADDRESS]
