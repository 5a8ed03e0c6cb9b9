# Letters that look like Latin ones are the point of this file.
# ruff: noqa: RUF001
"""Language detection: realistic customer-service sentences in many languages and scripts, short
answers, mixed scripts, and text with no language at all."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cxops.feedback.domain.language import detect_language

SENTENCES = [
    ("en", "The delivery was late and nobody answered the phone."),
    ("en", "Great service, the agent sorted my refund in five minutes. Thanks!"),
    ("en", "Product arrived broken, screen cracked, battery dead."),
    ("es", "El pedido llegó tarde y nadie contestó el teléfono."),
    ("es", "Muy buen servicio, gracias por la ayuda."),
    ("fr", "La commande est arrivée en retard et personne n'a répondu."),
    ("fr", "Service client très réactif, merci beaucoup !"),
    ("de", "Die Bestellung kam zu spät und niemand ist ans Telefon gegangen."),
    ("de", "Sehr freundlicher Kundenservice, danke für die schnelle Hilfe."),
    ("it", "L'ordine è arrivato in ritardo e nessuno ha risposto al telefono."),
    ("pt", "O pedido chegou atrasado e ninguém atendeu o telefone."),
    ("nl", "De bestelling kwam te laat en niemand nam de telefoon op."),
    ("sv", "Beställningen kom för sent och ingen svarade i telefon."),
    ("pl", "Zamówienie przyszło za późno i nikt nie odebrał telefonu."),
    ("tr", "Sipariş geç geldi ve kimse telefona cevap vermedi."),
    ("ru", "Заказ пришёл поздно, и никто не ответил на звонок."),
    ("uk", "Замовлення прийшло пізно, і ніхто не відповів на дзвінок."),
    ("el", "Η παραγγελία ήρθε αργά και κανείς δεν απάντησε."),
    ("ar", "الطلب وصل متأخرا ولم يرد أحد على الهاتف"),
    ("he", "ההזמנה הגיעה באיחור ואף אחד לא ענה"),
    ("hi", "ऑर्डर देर से आया और किसी ने फोन नहीं उठाया"),
    ("th", "สั่งของมาช้ามากและไม่มีใครรับโทรศัพท์"),
    ("zh", "订单来晚了，没有人接电话。"),
    ("ja", "注文が遅れて届きました。電話にも誰も出ませんでした。"),
    ("ko", "주문이 늦게 도착했고 아무도 전화를 받지 않았어요."),
]


@pytest.mark.parametrize(("language", "text"), SENTENCES)
def test_customer_service_sentences(language: str, text: str) -> None:
    guess = detect_language(text)
    assert guess.language == language
    assert guess.is_english is (language == "en")
    assert 0.3 <= guess.confidence <= 1.0


@pytest.mark.parametrize(
    ("text", "language", "is_english"),
    [
        ("ok", "en", True),
        ("Thanks!", "en", True),
        ("Terrible.", "en", True),
        ("Brilliant", "und", True),  # no evidence, but short Latin text gets sentiment
        ("gracias", "es", False),
        ("merci beaucoup", "fr", False),
        ("danke", "de", False),
        ("", "und", False),
        ("!!! 10/10", "und", False),
        ("👍👍", "und", False),
    ],
)
def test_short_answers(text: str, language: str, is_english: bool) -> None:
    guess = detect_language(text)
    assert (guess.language, guess.is_english) == (language, is_english)


def test_an_unprofiled_latin_language_is_undetermined_and_not_scored_as_english() -> None:
    guess = detect_language("Kiitos, palvelu oli todella hyvä ja nopea toimitus")
    assert (guess.language, guess.is_english) == ("und", False)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("The app shows a Заказ отменён error when I pay", "en"),
        ("Мой заказ номер 12345 не пришёл, app crashed", "ru"),
        ("Great product 很好", "en"),
        ("这个 app 很好用，客服也很快", "zh"),
    ],
)
def test_mixed_scripts_go_to_the_main_one(text: str, language: str) -> None:
    assert detect_language(text).language == language


def test_undetermined_has_no_confidence() -> None:
    assert detect_language("12345").confidence == 0.0


@given(st.text(max_size=200))
def test_any_text_gets_a_well_formed_guess(text: str) -> None:
    guess = detect_language(text)
    assert 0.0 <= guess.confidence <= 1.0
    assert guess.language == "und" or 2 <= len(guess.language) <= 3
    assert not (guess.is_english and guess.language not in ("en", "und"))
