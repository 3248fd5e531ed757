"""Japanese text normalisation shared by the Rasa tokenizer and retrieval.

Depends on SudachiPy only, so that both Python environments can import it. Matching uses
three views of the text, because no single one unifies the spellings residents type:
NFKC text (half-width kana, full-width digits), Sudachi normalized forms (okurigana and
kanji variants) and katakana readings (kana-only input such as じゅうみんひょう, which
Sudachi does not normalise to 住民票).
"""

from __future__ import annotations

import functools
import itertools
import re
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

# Parts of speech that carry no topic: dropped before lexical matching.
FUNCTION_POS = frozenset({"助詞", "助動詞", "補助記号", "記号", "空白"})
# Symbols have no reading worth matching.
SYMBOL_POS = frozenset({"補助記号", "記号", "空白"})
# Sudachi refuses inputs above ~49 KB; analyse long texts in slices of this many characters.
_SLICE_CHARS = 4000
_HIRAGANA_START, _HIRAGANA_END, _KANA_OFFSET = 0x3041, 0x3096, 0x60


@dataclass(frozen=True, slots=True)
class Morph:
    """One Sudachi morpheme with its offsets in the original text."""

    surface: str  # as typed (slice of the original text)
    start: int
    end: int
    text: str  # NFKC, lower-cased surface
    normalized: str  # Sudachi normalized form
    reading: str  # katakana reading
    pos: str  # first-level part of speech
    person: bool = False  # Sudachi's dictionary knows it as a personal name (名詞-固有名詞-人名)
    unknown: bool = False  # not in Sudachi's dictionary
    synonyms: tuple[int, ...] = ()  # Sudachi's synonym group ids (転居 and 引っ越し share one)

    @property
    def is_content(self) -> bool:
        return self.pos not in FUNCTION_POS


def nfkc(text: str) -> str:
    """NFKC plus lower case: ｼﾞｭｳﾐﾝﾋｮｳ → ジュウミンヒョウ, ＡＢＣ１ → abc1."""
    return unicodedata.normalize("NFKC", text).lower()


def to_katakana(text: str) -> str:
    """Hiragana → katakana by the fixed code-point offset; other characters unchanged."""
    return "".join(
        chr(ord(c) + _KANA_OFFSET) if _HIRAGANA_START <= ord(c) <= _HIRAGANA_END else c for c in text
    )


def _is_kana(text: str) -> bool:
    return all("\u3041" <= c <= "\u30ff" for c in text)


def is_kana_only(text: str) -> bool:
    """True for text written in kana alone (ignoring spaces, punctuation and symbols)."""
    letters = [c for c in nfkc(text) if c.isalnum()]
    return bool(letters) and all("\u3041" <= c <= "\u30ff" for c in letters)


def is_mostly_latin(text: str) -> bool:
    """True when most letters are Latin: the resident wrote in English (or romaji)."""
    letters = [c for c in nfkc(text) if c.isalpha()]
    latin = sum(1 for c in letters if c.isascii())
    return bool(letters) and latin / len(letters) >= 0.6


def _slices(text: str) -> Iterator[tuple[int, str]]:
    """Cut long text at a line break or sentence end near the slice size."""
    start = 0
    while start < len(text):
        end = min(len(text), start + _SLICE_CHARS)
        if end < len(text):
            cut = max(text.rfind(ch, start, end) for ch in "\n。．.!?！？ ")
            if cut > start:
                end = cut + 1
        yield start, text[start:end]
        start = end


# Distinct texts whose analysis is kept: one message is analysed by the words channel, the
# readings channel, the place finder and the topic check, so each is tokenized once.
# Only short texts (questions, names) are kept, so the cache stays a few MB.
ANALYSIS_CACHE = 4096
ANALYSIS_CACHE_MAX_CHARS = 256


class Analyzer:
    """Thread-safe wrapper around a Sudachi tokenizer (one per thread, split mode C)."""

    def __init__(self, split_mode: str = "C", dict_name: str = "core") -> None:
        self.split_mode = split_mode
        self.dict_name = dict_name
        self._local = threading.local()
        self._dictionary = None
        self._lock = threading.Lock()
        self._cached_analyze = functools.lru_cache(maxsize=ANALYSIS_CACHE)(self._analyze)

    def analyze(self, text: str) -> tuple[Morph, ...]:
        """Morphemes of `text`, offsets into `text`; whitespace morphemes are dropped.
        Short texts are remembered (a message is analysed by several channels)."""
        return self._cached_analyze(text) if len(text) <= ANALYSIS_CACHE_MAX_CHARS else self._analyze(text)

    def _tokenizer(self):
        tok = getattr(self._local, "tokenizer", None)
        if tok is None:
            from sudachipy import Dictionary, SplitMode

            with self._lock:
                if self._dictionary is None:
                    self._dictionary = Dictionary(dict=self.dict_name)
            mode = getattr(SplitMode, self.split_mode)
            tok = self._local.tokenizer = self._dictionary.create(mode)
        return tok

    def _analyze(self, text: str) -> tuple[Morph, ...]:
        morphs: list[Morph] = []
        tokenizer = self._tokenizer()
        for offset, piece in _slices(text):
            for m in tokenizer.tokenize(piece):
                surface = m.surface()
                tags = m.part_of_speech()
                pos = tags[0]
                if pos == "空白" or not surface.strip():
                    continue
                norm_surface = nfkc(surface)
                # kana as typed is its own reading; Sudachi's guess for unknown kana is worse
                reading = norm_surface if _is_kana(norm_surface) else (m.reading_form() or surface)
                morphs.append(
                    Morph(
                        surface=surface,
                        start=offset + m.begin(),
                        end=offset + m.end(),
                        text=nfkc(surface),
                        normalized=nfkc(m.normalized_form()),
                        reading=to_katakana(nfkc(reading)),
                        pos=pos,
                        person=tags[1] == "固有名詞" and tags[2] == "人名",
                        unknown=m.is_oov(),
                        synonyms=tuple(m.synonym_group_ids()),
                    )
                )
        return tuple(morphs)

    def content_terms(self, text: str) -> list[str]:
        """Normalized forms of content words: the lexical-matching vocabulary."""
        return [m.normalized for m in self.analyze(text) if m.is_content]

    def synonym_terms(self, text: str) -> list[str]:
        """Content terms plus a token per Sudachi synonym group ("≡21673" for both 転居 and
        引っ越す), so BM25 matches a resident's word against the entry's synonym of it. The group ids
        ship inside SudachiDict; the group contents (chikkarpy) would need a download at install."""
        terms = []
        for m in self.analyze(text):
            if m.is_content:
                terms.append(m.normalized)
                terms += [f"≡{g}" for g in m.synonyms]
        return terms

    def reading(self, text: str) -> str:
        """Katakana reading of the whole text (symbols dropped), for kana-only matching."""
        return "".join(m.reading for m in self.analyze(text) if m.pos not in SYMBOL_POS)


_shared: dict[str, Analyzer] = {}
_shared_lock = threading.Lock()


def default_analyzer(split_mode: str = "C") -> Analyzer:
    """The process-wide analyzer of a split mode. Shared so that the dictionary loads once (~100 ms)
    and a message analysed at the door (masking) is not analysed again by the Rasa tokenizer."""
    with _shared_lock:
        if split_mode not in _shared:
            _shared[split_mode] = Analyzer(split_mode=split_mode)
        return _shared[split_mode]


# Sentences shorter than this are fragments (「※1」, a lone heading number), not facts.
MIN_SENTENCE_CHARS = 8
OPENING, CLOSING = "(（「『【", ")）」』】"


def sentences(text: str) -> list[str]:
    """The sentences of a text: split after a 。 outside brackets (「…といいます。」 inside
    parentheses ends no sentence), with the import's line breaks inside a sentence (PDF lines that
    cut 「活用」 in two) joined again."""
    if "\t" in text:  # a table: each row (「南部地区\t平成 27 年 9 月 19 日…\t44 名」) is one fact
        parts: list[str] = []
        for is_row, block in itertools.groupby(text.split("\n"), key=lambda line: "\t" in line):
            lines = list(block)
            if is_row:
                rows = (" ".join(line.split()) for line in lines)  # a short row: a header
                parts += [row for row in rows if len(row) >= MIN_SENTENCE_CHARS]
            else:  # a short line between rows is a sub-heading
                parts += [p for p in sentences("\n".join(lines)) if len(p) >= MIN_SENTENCE_CHARS]
        return parts
    joined = re.sub(r"\s*\n\s*", "", text)
    parts, start, depth = [], 0, 0
    for i, char in enumerate(joined):
        if char in OPENING:
            depth += 1
        elif char in CLOSING:
            depth = max(0, depth - 1)
        elif char == "。" and depth == 0:
            parts.append(joined[start : i + 1])
            start = i + 1
    parts.append(joined[start:])
    return [s.strip() for s in parts if len(s.strip()) >= MIN_SENTENCE_CHARS] or [text.strip()]
