"""Which language a verbatim is written in, so sentiment is scored only where the lexicon fits.

Offline and fast (tens of microseconds a call), with no model: first the writing system, then,
for Latin script, the function words and customer-service words of ten languages, with letters
only one of them uses (``ñ``, ``ß``, ``ł``, ``ğ``...) as extra evidence.

- Scripts: Cyrillic (``ru``, or ``uk`` when it has ї, є or ґ), Greek (``el``), Arabic (``ar``, or
  ``fa`` when it has پ/چ/ژ/گ), Hebrew (``he``), Devanagari (``hi``), Thai (``th``), Hangul
  (``ko``), kana (``ja``), Han without kana (``zh``), Georgian (``ka``) and Armenian (``hy``).
  Mixed scripts go to the script with the most letters, a CJK character counting as two.
- Latin script: ``en``, ``es``, ``fr``, ``de``, ``it``, ``pt``, ``nl``, ``sv``, ``pl``, ``tr``.
  Other Latin-script languages (Finnish, Indonesian, Vietnamese...) come out as ``und``.
- ``und`` when there is no evidence: no letters, Latin words none of the profiles know, or six
  words or more of which fewer than 15% are known (a language without a profile that happens
  to share a word with one).
  ``is_english`` is True for ``und`` Latin text of up to three words ("ok", "Brilliant!"), so a
  short answer still gets sentiment, and False for longer unknown text and for other scripts.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass

UNDETERMINED = "und"
ENGLISH = "en"


@dataclass(frozen=True, slots=True)
class LanguageGuess:
    """An ISO 639-1 code or ``und``, how sure (0 to 1), and whether to score it as English."""

    language: str
    confidence: float
    is_english: bool


_PROFILES: Mapping[str, str] = {
    "en": """the a an and or but of to in on at for with from by about as is are was were be been
        am i you he she it we they me my your our their this that these those there here what
        which who when where why how not no don't didn't can't won't it's i'm very so too just
        have has had do does did will would could should can get got please thanks thank ok okay
        yes good great bad poor terrible awful excellent service order delivery refund help
        still never again after before call waiting wait waited staff support customer
        product item package parcel arrived late broken damaged missing wrong slow fast quick
        rude friendly helpful useless easy hard price charged money app website account phone
        email agent issue problem fixed resolved experience time day days week hours minutes
        love loved hate hated happy disappointed nice best worst really""",
    "es": """mi el la los las un una unos unas y o pero de del al en con por para sin sobre es son
        está están fue ser estar muy más menos yo tú él ella nosotros ellos mi mis su sus tu que
        qué cuando cómo como porque pedido gracias hola servicio nunca todavía bien mal malo
        buena bueno tengo tiene hay me lo le se nos ya pero también esto este esta""",
    "fr": """le la les un une des et ou mais de du au aux en dans avec pour par sans sur est sont
        était être avoir très plus moins je tu il elle nous vous ils elles mon ma mes votre vos
        leur que qui quand comment pourquoi parce commande merci bonjour service jamais encore
        bien mal mauvais nul bon bonne j'ai c'est n'est pas ne ce cette ces y""",
    "de": """der die das den dem des ein eine einen einem und oder aber von zu im in mit für auf
        ist sind war waren sein haben hat sehr mehr weniger ich du er sie wir ihr mein meine
        ihre unser nicht kein keine wann wie warum weil bestellung danke hallo kundenservice
        service nie noch gut schlecht wurde immer schon auch nach""",
    "it": """il lo la gli le un una uno e o ma di del della dei in con per su è sono era essere
        avere molto più meno io tu lui lei noi voi loro mio mia miei suo sua che chi quando come
        perché ordine grazie ciao servizio mai ancora bene male cattivo buono buona non ho ha
        nel nella questo questa""",
    "pt": """o a os as um uma uns umas e ou mas de do da dos das em no na com por para sem sobre
        é são foi ser estar muito mais menos eu tu ele ela nós eles meu minha seu sua que
        quando como porque pedido obrigado obrigada olá serviço nunca ainda bem mal ruim bom boa
        não tenho tem isso este esta""",
    "nl": """de het een en of maar van naar in op met voor door over is zijn was waren hebben
        heeft zeer erg meer minder ik jij je hij zij wij we mijn jouw ons hun niet geen wanneer
        hoe waarom omdat bestelling bedankt dank hallo service nooit nog goed slecht wel ook al
        dit dat deze""",
    "sv": """en ett och eller men av till i på med för från om är var vara har hade mycket mer
        mindre jag du han hon vi ni de min mitt mina din er deras inte ingen när hur varför
        eftersom beställning tack hej service aldrig fortfarande bra dålig också det den detta
        som""",
    "pl": """i oraz lub ale z ze do w we na od dla przez o jest są był była było być mieć bardzo
        więcej mniej ja ty on ona my wy oni mój moja moje twój nasz nie kiedy jak dlaczego
        ponieważ zamówienie dziękuję dzięki cześć obsługa nigdy jeszcze dobrze źle zły dobry
        się to że już""",
    "tr": """ve veya ama ile bir bu şu o için gibi çok daha az ben sen biz siz onlar benim senin
        bizim değil yok var ne zaman nas\u0131l neden çünkü sipariş teşekkür teşekkürler merhaba
        hizmet hiç hala iyi kötü da de mi m\u0131 ki ise""",
}

_DISTINCT_LETTERS: Mapping[str, str] = {
    "es": "ñ¿¡",
    "de": "ß",
    "fr": "œ",
    "pt": "ãõ",
    "pl": "łąęśżźćń",
    "tr": "ğ\u0131ş",
    "sv": "å",
}
_LATIN_LANGUAGES = tuple(_PROFILES)


def _index_words() -> dict[str, tuple[str, ...]]:
    index: dict[str, list[str]] = {}
    for language, words in _PROFILES.items():
        for word in set(words.split()):
            index.setdefault(word, []).append(language)
    return {word: tuple(languages) for word, languages in index.items()}


_WORD_LANGUAGES = _index_words()
_LETTER_LANGUAGES = {
    letter: language for language, letters in _DISTINCT_LETTERS.items() for letter in letters
}
_DISTINCT_LETTER = re.compile(f"[{''.join(_LETTER_LANGUAGES)}]")
_APOSTROPHES = "'\u2019"
_WORD = re.compile(rf"[^\W\d_]+(?:[{_APOSTROPHES}][^\W\d_]+)?")
_NOT_LATIN = re.compile(r"[^\x00-\u024f\u1e00-\u1eff\u2000-\u206f\u20a0-\u20cf]")

_SCRIPTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("latin", re.compile(r"[A-Za-z\u00c0-\u024f\u1e00-\u1eff]")),
    ("cyrillic", re.compile(r"[\u0400-\u04ff]")),
    ("greek", re.compile(r"[\u0370-\u03ff]")),
    ("arabic", re.compile(r"[\u0600-\u06ff\u0750-\u077f]")),
    ("hebrew", re.compile(r"[\u0590-\u05ff]")),
    ("devanagari", re.compile(r"[\u0900-\u097f]")),
    ("thai", re.compile(r"[\u0e00-\u0e7f]")),
    ("hangul", re.compile(r"[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]")),
    ("kana", re.compile(r"[\u3040-\u30ff]")),
    ("han", re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]")),
    ("georgian", re.compile(r"[\u10a0-\u10ff]")),
    ("armenian", re.compile(r"[\u0530-\u058f]")),
)
_DOUBLE_WEIGHT_SCRIPTS = frozenset({"han", "kana", "hangul"})
_SCRIPT_LANGUAGE = {
    "greek": "el",
    "hebrew": "he",
    "devanagari": "hi",
    "thai": "th",
    "hangul": "ko",
    "georgian": "ka",
    "armenian": "hy",
}
_UKRAINIAN_LETTER = re.compile("[іїєґІЇЄҐ]")
_PERSIAN_LETTER = re.compile("[پچژگ]")
_SHORT_TEXT_WORDS = 3
_SPARSE_EVIDENCE_WORDS = 6
_SPARSE_EVIDENCE_SHARE = 0.15


def detect_language(text: str) -> LanguageGuess:
    """Guess the language of one verbatim; ``und`` when there is not enough to tell."""
    if not text.isascii() and _NOT_LATIN.search(text):
        script, share = _main_script(text)
        if script != "latin":
            return LanguageGuess(_language_of_script(script, text), share, is_english=False)
    return _guess_latin(text)


def _main_script(text: str) -> tuple[str, float]:
    """The script with the most letters and its share of them."""
    weights: dict[str, int] = {}
    for script, pattern in _SCRIPTS:
        found = len(pattern.findall(text))
        if found:
            weights[script] = found * (2 if script in _DOUBLE_WEIGHT_SCRIPTS else 1)
    if "kana" in weights:
        weights["kana"] += weights.pop("han", 0)
    if not weights:
        return "latin", 0.0
    script = max(weights, key=weights.__getitem__)
    return script, round(weights[script] / sum(weights.values()), 2)


def _language_of_script(script: str, text: str) -> str:
    if script == "cyrillic":
        return "uk" if _UKRAINIAN_LETTER.search(text) else "ru"
    if script == "arabic":
        return "fa" if _PERSIAN_LETTER.search(text) else "ar"
    if script == "kana":
        return "ja"
    if script == "han":
        return "zh"
    return _SCRIPT_LANGUAGE[script]


def _guess_latin(text: str) -> LanguageGuess:
    """Count the profile words of each language; distinct letters add one each, once."""
    lowered = text.lower()
    words = _WORD.findall(lowered)
    if not words:
        return LanguageGuess(UNDETERMINED, 0.0, is_english=False)
    scores = dict.fromkeys(_LATIN_LANGUAGES, 0.0)
    for word in words:
        for language in _WORD_LANGUAGES.get(word.replace("\u2019", "'"), ()):
            scores[language] += 1.0
    if not lowered.isascii():
        for letter in set(_DISTINCT_LETTER.findall(lowered)):
            scores[_LETTER_LANGUAGES[letter]] += 1.0
    ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
    (best, top), (_, second) = ranked[0], ranked[1]
    if top == 0.0:
        return LanguageGuess(UNDETERMINED, 0.0, is_english=len(words) <= _SHORT_TEXT_WORDS)
    if len(words) >= _SPARSE_EVIDENCE_WORDS and top / len(words) < _SPARSE_EVIDENCE_SHARE:
        return LanguageGuess(UNDETERMINED, round(top / len(words), 2), is_english=False)
    if top == second and scores[ENGLISH] == top:
        best = ENGLISH
    margin = (top - second) / top
    evidence = min(1.0, top / 3)
    confidence = round(0.5 * evidence + 0.5 * margin * evidence, 2)
    return LanguageGuess(best, confidence, is_english=best == ENGLISH)
