"""Mask personal data before anything is logged or stored.

Patterns own numbers, e-mail, postal codes and street addresses (GiNZA mislabels those);
GiNZA's named-entity recogniser (spaCy `ja_ginza`) finds personal names where it is installed.
GiNZA costs ~25 ms a message, so it runs only where a name may be: Sudachi's dictionary marks a
personal name, a word it does not know, or a word that introduces a name (申します, さん …).
The masked form keeps the kind, e.g. 「[電話番号]」, so staff still see what was said.
Digits may be full-width and separated by spaces or any hyphen/dash residents type.
"""

from __future__ import annotations

import functools
import logging
import re
import threading

log = logging.getLogger(__name__)

_D = r"[0-9０-９]"  # ASCII or full-width digit
_SEP = r"[ \u3000\-‐‑–—−－ー]?"  # optional separator: space, full-width space, hyphens, 長音
_NOT_DIGIT_BEFORE = r"(?<![0-9０-９])"
_NOT_DIGIT_AFTER = r"(?![0-9０-９])"

# Order matters: longer and more specific patterns first.
PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (
        "メールアドレス",
        re.compile(
            r"[A-Za-z0-9Ａ-Ｚａ-ｚ０-９._%+\-＿．]+[@＠][A-Za-z0-9Ａ-Ｚａ-ｚ０-９\-]+(?:[.．][A-Za-z0-9Ａ-Ｚａ-ｚ\-]+)+"
        ),
    ),
    (
        "カード番号",
        re.compile(
            rf"{_NOT_DIGIT_BEFORE}{_D}{{4}}{_SEP}{_D}{{4}}{_SEP}{_D}{{4}}{_SEP}{_D}{{2,4}}{_NOT_DIGIT_AFTER}"
        ),
    ),
    (
        "マイナンバー",
        re.compile(rf"{_NOT_DIGIT_BEFORE}{_D}{{4}}{_SEP}{_D}{{4}}{_SEP}{_D}{{4}}{_NOT_DIGIT_AFTER}"),
    ),
    (
        "電話番号",
        re.compile(
            rf"(?:(?:\+|＋)81{_SEP}\(?{_D}{{1,4}}\)?|{_NOT_DIGIT_BEFORE}[(（]?[0０]{_D}{{0,4}}[)）]?)"
            rf"{_SEP}\(?{_D}{{1,4}}\)?{_SEP}{_D}{{3,4}}{_NOT_DIGIT_AFTER}"
        ),
    ),
    (
        "郵便番号",
        re.compile(
            rf"〒\s?{_D}{{3}}{_SEP}{_D}{{4}}|{_NOT_DIGIT_BEFORE}{_D}{{3}}[\-‐－−]{_D}{{4}}{_NOT_DIGIT_AFTER}"
        ),
    ),
    (
        "住所",
        re.compile(
            r"(?:[一-龥ぁ-んァ-ヶ]{1,6}?[都道府県])?(?:[一-龥ァ-ヶ]{1,6}?[市区町村])*"
            r"[一-龥ぁ-んァ-ヶ]{1,10}?"
            rf"(?:{_D}+丁目{_SEP}?{_D}+(?:番地?|[\-‐－−の]){_SEP}?{_D}*号?"
            rf"|{_D}+(?:[\-‐－−の]{_D}+){{1,3}}(?:号)?"
            rf"|{_D}+番地(?:{_D}+号?)?)"
        ),
    ),
]


# GiNZA sometimes takes 幸区 or 高津区 for a person; names never end like places do.
PLACE_SUFFIXES = ("区", "市", "町", "村", "駅", "丁目")


# Words that come with a name even when the name itself is unknown to Sudachi's dictionary.
NAME_CUES = (
    "申します",
    "といいます",
    "と言います",
    "名前",
    "氏名",
    "さん",
    "様",
    "さま",
    "君",
    "くん",
    "ちゃん",
    "氏",
)
# GiNZA components named-entity recognition needs (the parser and the rest are left out).
NER_COMPONENTS = frozenset({"tok2vec", "ner"})
# spaCy pipelines are not thread-safe, and GiNZA's Sudachi tokenizer raises "Already borrowed" when
# two threads enter it; the action server masks in worker threads, so one at a time (it is rare:
# only texts that may name someone reach GiNZA).
_GINZA_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def _ginza():
    """The GiNZA pipeline (only what NER needs), or None where it is not installed."""
    try:
        import spacy

        names = spacy.info("ja_ginza").get("pipeline", [])
        return spacy.load("ja_ginza", exclude=[n for n in names if n not in NER_COMPONENTS])
    except (ImportError, OSError):
        log.info("ja_ginza not installed: personal names are not masked in this process")
        return None


def may_name_someone(text: str) -> bool:
    """Whether GiNZA needs to look: a known personal name, an unknown word or a name cue."""
    from bot.japanese import default_analyzer

    if any(cue in text for cue in NAME_CUES):
        return True
    # unknown numbers and symbols name no one; unknown words might
    return any(
        m.person or (m.unknown and any(c.isalpha() for c in m.text)) for m in default_analyzer().analyze(text)
    )


def _mask_names(text: str) -> str:
    nlp = _ginza()
    if nlp is None or not text.strip() or not may_name_someone(text):
        return text
    with _GINZA_LOCK:
        doc = nlp(text[:5000])
    spans = [
        (e.start_char, e.end_char)
        for e in doc.ents
        if e.label_ == "Person"
        and not e.text.endswith(PLACE_SUFFIXES)
        and not (e.text.isascii() and e.text.islower())  # "script", "div": words, not names
    ]
    for start, end in sorted(spans, reverse=True):
        if "[" in text[start:end]:
            continue
        text = text[:start] + "[氏名]" + text[end:]
    return text


def mask(text: str, names: bool = True) -> str:
    """Text with personal data replaced by its kind, e.g. 「[マイナンバー]」."""
    if names:
        _ginza()  # loaded once per process
    if not text:
        return text
    for kind, pattern in PATTERNS:
        text = pattern.sub(f"[{kind}]", text)
    return _mask_names(text) if names else text
