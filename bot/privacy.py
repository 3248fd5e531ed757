"""Mask personal data before anything is logged or stored.

Patterns own numbers, e-mail, postal codes and street addresses (GiNZA mislabels those);
GiNZA's named-entity recogniser (spaCy `ja_ginza`) finds personal names where it is installed.
GiNZA costs ~25 ms a message, so it runs only where a name may be: Sudachi's dictionary marks a
personal name, a word it does not know, or a word that introduces a name (申します, さん …).
The masked form keeps the kind, e.g. 「[電話番号]」, so staff still see what was said.
Digits may be full-width and separated by spaces or any hyphen/dash residents type.

Masking runs on every message before the Rasa server looks at it, so no text may make it slow
(a backtracking address pattern once took days on 60 repeated 区). The work is linear in the
text's length, by construction:
- patterns with open-ended repetition run on RE2 (google-re2), which never backtracks;
- patterns that need look-around (a number is not the middle of a longer one), which RE2 lacks,
  run on Python's re with bounded repetition only, so each start position costs a bounded number
  of steps (tests/test_privacy.py checks both properties of every pattern);
- GiNZA reads the text in windows of at most NER_WINDOW characters.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import re2

log = logging.getLogger(__name__)

_D = r"[0-9０-９]"  # ASCII or full-width digit
# optional separator: space, full-width space, hyphens, 長音 (\u3000 as a character: RE2 has no \u)
_SEP = "[ \u3000\\-‐‑–—−－ー]?"
_NOT_DIGIT_BEFORE = r"(?<![0-9０-９])"
_NOT_DIGIT_AFTER = r"(?![0-9０-９])"


@dataclass(frozen=True)
class MaskPattern:
    """One kind of personal data and the compiled pattern that finds it."""

    kind: str
    source: str  # the pattern's text (tests compile it with both engines)
    engine: str  # "re2" (linear whatever the pattern) or "re" (look-around, bounded repetition)

    @functools.cached_property
    def regex(self):
        return re2.compile(self.source) if self.engine == "re2" else re.compile(self.source)

    def sub(self, text: str) -> str:
        label = f"[{self.kind}]"
        # a function, not a string: google-re2 1.1 garbles a non-ASCII replacement string
        return self.regex.sub(lambda _match: label, text)


# Order matters: longer and more specific patterns first.
PATTERNS: list[MaskPattern] = [
    MaskPattern(
        "メールアドレス",
        r"[A-Za-z0-9Ａ-Ｚａ-ｚ０-９._%+\-＿．]+[@＠][A-Za-z0-9Ａ-Ｚａ-ｚ０-９\-]+(?:[.．][A-Za-z0-9Ａ-Ｚａ-ｚ\-]+)+",
        "re2",
    ),
    MaskPattern(
        "カード番号",
        rf"{_NOT_DIGIT_BEFORE}{_D}{{4}}{_SEP}{_D}{{4}}{_SEP}{_D}{{4}}{_SEP}{_D}{{2,4}}{_NOT_DIGIT_AFTER}",
        "re",
    ),
    MaskPattern(
        "マイナンバー",
        rf"{_NOT_DIGIT_BEFORE}{_D}{{4}}{_SEP}{_D}{{4}}{_SEP}{_D}{{4}}{_NOT_DIGIT_AFTER}",
        "re",
    ),
    MaskPattern(
        "電話番号",
        rf"(?:(?:\+|＋)81{_SEP}\(?{_D}{{1,4}}\)?|{_NOT_DIGIT_BEFORE}[(（]?[0０]{_D}{{0,4}}[)）]?)"
        rf"{_SEP}\(?{_D}{{1,4}}\)?{_SEP}{_D}{{3,4}}{_NOT_DIGIT_AFTER}",
        "re",
    ),
    MaskPattern(
        "郵便番号",
        rf"〒\s?{_D}{{3}}{_SEP}{_D}{{4}}|{_NOT_DIGIT_BEFORE}{_D}{{3}}[\-‐－−]{_D}{{4}}{_NOT_DIGIT_AFTER}",
        "re",
    ),
    MaskPattern(
        "住所",
        r"(?:[一-龥ぁ-んァ-ヶ]{1,6}?[都道府県])?(?:[一-龥ァ-ヶ]{1,6}?[市区町村])*"
        r"[一-龥ぁ-んァ-ヶ]{1,10}?"
        rf"(?:{_D}+丁目{_SEP}?{_D}+(?:番地?|[\-‐－−の]){_SEP}?{_D}*号?"
        rf"|{_D}+(?:[\-‐－−の]{_D}+){{1,3}}(?:号)?"
        rf"|{_D}+番地(?:{_D}+号?)?)",
        "re2",
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


# GiNZA reads long texts in windows of at most this many characters, each ending at a sentence or
# line end where there is one: its cost grows with the text's length (~0.3–0.6 ms a character), and
# the lock is let go between windows, so one long message does not hold up others' short ones.
NER_WINDOW = 500
_WINDOW_ENDS = "。！？!?\n"


def _windows(text: str, size: int = NER_WINDOW) -> Iterator[tuple[int, int]]:
    """(start, end) slices of at most `size` characters that cover the text."""
    start = 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            cut = max(text.rfind(c, start, end) for c in _WINDOW_ENDS)
            end = cut + 1 if cut > start else end
        yield start, end
        start = end


def _person_spans(nlp, text: str) -> Iterator[tuple[int, int]]:
    for offset, end in _windows(text):
        with _GINZA_LOCK:
            doc = nlp(text[offset:end])
        for e in doc.ents:
            if (
                e.label_ == "Person"
                and not e.text.endswith(PLACE_SUFFIXES)
                and not (e.text.isascii() and e.text.islower())  # "script", "div": words, not names
            ):
                yield offset + e.start_char, offset + e.end_char


def _mask_names(text: str) -> str:
    nlp = _ginza()
    if nlp is None or not text.strip() or not may_name_someone(text):
        return text
    pieces, last = [], 0
    for start, end in _person_spans(nlp, text):
        if "[" in text[start:end]:  # already masked by a pattern
            continue
        pieces += [text[last:start], "[氏名]"]
        last = end
    return "".join([*pieces, text[last:]])


def mask(text: str, names: bool = True) -> str:
    """Text with personal data replaced by its kind, e.g. 「[マイナンバー]」, in time linear in its
    length (see the module's docstring)."""
    if names:
        _ginza()  # loaded once per process
    if not text:
        return text
    for pattern in PATTERNS:
        text = pattern.sub(text)
    return _mask_names(text) if names else text
