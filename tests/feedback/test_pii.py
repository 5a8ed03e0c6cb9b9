"""PII redaction: each kind with its placeholder and count, the look-alikes left alone, and the
invariants (redacting twice changes nothing; a valid card or email in any text is removed and
the text around it survives)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cxops.feedback.domain.pii import Redaction, is_valid_iban, passes_luhn, redact

REDACTED = [
    # email
    ("Write to jane.doe@example.com please", "Write to [EMAIL] please", "email"),
    ("mail: j_o+cx@mail.example.co.uk.", "mail: [EMAIL].", "email"),
    # IBAN, compact, grouped, lower case, followed by a word the pattern might take as a group
    ("IBAN GB82 WEST 1234 5698 7654 32 thanks", "IBAN [IBAN] thanks", "iban"),
    ("refund to DE89370400440532013000.", "refund to [IBAN].", "iban"),
    ("fr14 2004 1010 0505 0001 3m02 606 is mine", "[IBAN] is mine", "iban"),
    ("NL91 ABNA 0417 1643 00 and", "[IBAN] and", "iban"),
    # cards pass Luhn
    ("card 4111 1111 1111 1111 exp 12/27", "card [CARD] exp 12/27", "card"),
    ("my mastercard 5555-5555-5555-4444 was charged", "my mastercard [CARD] was charged", "card"),
    ("amex 378282246310005", "amex [CARD]", "card"),
    ("card:4242424242424242", "card:[CARD]", "card"),
    # government ids
    ("SSN 123-45-6789 on file", "SSN [GOV_ID] on file", "government_id"),
    ("NI number AB 12 34 56 C", "NI number [GOV_ID]", "government_id"),
    ("ni jk123456c", "ni [GOV_ID]", "government_id"),
    ("DNI 12345678Z", "DNI [GOV_ID]", "government_id"),
    ("NIE X1234567L", "NIE [GOV_ID]", "government_id"),
    # phones, international and national forms
    ("call +44 20 7946 0958 today", "call [PHONE] today", "phone"),
    ("call +44 (0)20 7946 0958", "call [PHONE]", "phone"),
    ("call 0044 20 7946 0958", "call [PHONE]", "phone"),
    ("ring (555) 123-4567 after 5", "ring [PHONE] after 5", "phone"),
    ("mobile 07700 900123", "mobile [PHONE]", "phone"),
    ("office 020 7946 0958", "office [PHONE]", "phone"),
    ("tel +1-202-555-0143", "tel [PHONE]", "phone"),
    ("tel 555.123.4567.", "tel [PHONE].", "phone"),
    ("portable 06 12 34 56 78", "portable [PHONE]", "phone"),
    ("handy +49 30 901820", "handy [PHONE]", "phone"),
    ("tel +33 6 12 34 56 78", "tel [PHONE]", "phone"),
    # addresses
    ("I live at 221B Baker Street now", "I live at [ADDRESS] now", "address"),
    ("send it to 12 Oak Road, London SW1A 1AA.", "send it to [ADDRESS].", "address"),
    ("1600 Pennsylvania Avenue NW, Washington, DC 20500", "[ADDRESS]", "address"),
    ("at 42 Elm St. yesterday", "at [ADDRESS] yesterday", "address"),
    ("my postcode is LS1 4AP", "my postcode is [ADDRESS]", "address"),
    ("I moved to Leeds, LS1 4AP", "I moved to Leeds, [ADDRESS]", "address"),
    ("zip: 62704-1234", "zip: [ADDRESS]", "address"),
]


@pytest.mark.parametrize(("text", "expected", "kind"), REDACTED)
def test_each_kind_is_replaced_by_its_placeholder_and_counted(
    text: str, expected: str, kind: str
) -> None:
    redaction = redact(text)
    assert redaction.text == expected
    assert redaction.counts == {kind: 1}


LEFT_ALONE = [
    "order 12345 arrived late",
    "I paid £25.99 and then $1,299.00",
    "delivered on 2024-05-01 at 10:30",
    "booked for 01.05.2024 10:30",
    "date 05/01/2024, 15% off",
    "updated to version 3.12.1 and 10.0.19045",
    "order 1234567812345678 still missing",  # 16 digits that fail Luhn
    "card 4111 1111 1111 1112 declined",  # fails Luhn
    "IBAN GB82 WEST 1234 5698 7654 33",  # fails mod-97
    "order #555-123-4567",
    "tracking number 0123 4567 890",
    "SSN 000-12-3456 or 666-12-3456 or 923-45-6789",  # never issued
    "5551234567",
    "2 Large Boxes",
    "I waited 3 hours and 45 minutes",
    "my PS5 1TB broke",
    "ok",
    "",
]


@pytest.mark.parametrize("text", LEFT_ALONE)
def test_lookalikes_are_left_alone(text: str) -> None:
    assert redact(text) == Redaction(text, {})


def test_counts_every_kind_and_every_occurrence() -> None:
    redaction = redact(
        "Email a@b.io or c@d.org, call +44 20 7946 0958 or 07700 900123, "
        "card 4111 1111 1111 1111, IBAN GB82WEST12345698765432, SSN 123-45-6789, "
        "home 10 Downing Street"
    )
    assert redaction.counts == {
        "email": 2,
        "phone": 2,
        "card": 1,
        "iban": 1,
        "government_id": 1,
        "address": 1,
    }
    assert redaction.text == (
        "Email [EMAIL] or [EMAIL], call [PHONE] or [PHONE], card [CARD], IBAN [IBAN], "
        "SSN [GOV_ID], home [ADDRESS]"
    )


def test_a_card_is_not_half_redacted_as_a_phone() -> None:
    assert redact("pay with 4111-1111-1111-1111").text == "pay with [CARD]"


def test_checks() -> None:
    assert passes_luhn("79927398713")
    assert not passes_luhn("79927398710")
    assert is_valid_iban("GB82 WEST 1234 5698 7654 32")
    assert not is_valid_iban("GB82 WEST 1234 5698 7654 23")
    assert not is_valid_iban("GB82 WEST")


def with_luhn_digit(body: str) -> str:
    for check in "0123456789":
        if passes_luhn(body + check):
            return body + check
    raise AssertionError("one check digit always works")


cards = st.builds(
    with_luhn_digit,
    st.from_regex(r"[1-9][0-9]{11,17}", fullmatch=True),
)
emails = st.from_regex(
    r"[a-z0-9_+]{1,8}(\.[a-z0-9_+]{1,8}){0,2}@[a-z0-9-]{1,8}\.(com|org|co\.uk|io)", fullmatch=True
)
words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz .,!?'", max_size=40)


@given(prefix=words, card=cards, suffix=words)
def test_a_valid_card_in_any_text_is_removed_and_the_rest_survives(
    prefix: str, card: str, suffix: str
) -> None:
    redaction = redact(f"{prefix} {card} {suffix}")
    assert redaction.text == f"{prefix} [CARD] {suffix}"
    assert redaction.counts == {"card": 1}


@given(prefix=words, email=emails, suffix=words)
def test_an_email_in_any_text_is_removed_and_the_rest_survives(
    prefix: str, email: str, suffix: str
) -> None:
    redaction = redact(f"{prefix} {email} {suffix}")
    assert redaction.text == f"{prefix} [EMAIL] {suffix}"
    assert redaction.counts == {"email": 1}


noisy_text = st.text(alphabet="0123456789 +-().@abcXYZ GBNWSt", max_size=80)


@given(noisy_text)
def test_redacting_redacted_text_changes_nothing(text: str) -> None:
    once = redact(text).text
    assert redact(once) == Redaction(once, {})


@pytest.mark.parametrize(("text", "expected", "kind"), REDACTED)
def test_placeholders_are_not_matched_again(text: str, expected: str, kind: str) -> None:
    assert redact(expected) == Redaction(expected, {})
