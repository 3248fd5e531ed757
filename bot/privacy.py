"""Mask personal data before anything is logged or stored.

Patterns own numbers, dates of birth, e-mail, postal codes and street addresses (GiNZA mislabels
those); GiNZA's named-entity recogniser (spaCy `ja_ginza`) finds personal names where it is
installed. GiNZA costs ~25 ms a message, so it runs only where a name may be: Sudachi's dictionary
marks a personal name, a word it does not know, or a word that introduces a name (申します, さん …).
The masked form keeps the kind, e.g. 「[電話番号]」, so staff still see what was said; a label the
resident wrote stays (「口座番号は[口座番号]」), and so do the ward and town of an address
(「中原区小杉町[住所]」): the bot needs them to answer, and they identify no one.

Patterns match the NFKC form of the text (full-width digits and letters, ＋, ＠, ｰ, 〒 spaces …
become one spelling), and what they find is cut out of the original text, which is otherwise kept
as the resident wrote it. Digits may also be kanji numerals (六丁目十番五号, 昭和五十五年). Where a
form is ambiguous the patterns mask it (a full date with its year is masked, as 「[日付]」).

Masking runs on every message before the Rasa server looks at it, so no text may make it slow
(a backtracking address pattern once took days on 60 repeated 区). The work is linear in the
text's length, by construction:
- patterns with open-ended repetition run on RE2 (google-re2), which never backtracks;
- patterns that need look-around (a number is not the middle of a longer one), which RE2 lacks,
  run on Python's re with bounded repetition only, so each start position costs a bounded number
  of steps (tests/test_privacy.py checks both properties of every pattern, and runs each on 100k
  characters built to backtrack);
- GiNZA reads the text in windows of at most NER_WINDOW characters.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import re2

log = logging.getLogger(__name__)

# Patterns see NFKC text: full-width digits, letters, spaces, ＋ ＠ （ ） and － are ASCII there,
# ｰ is ー. Kanji numerals stay as they are.
_KANJI_DIGITS = "〇一二三四五六七八九"
_KANJI_NUMERALS = _KANJI_DIGITS + "十百千"
_N = f"[0-9{_KANJI_NUMERALS}]"  # a numeral, Arabic or kanji
_D = "[0-9]"
_DASH = "\\-‐‑‒–—―−ー"  # every hyphen and dash residents type, and the 長音 used as one
_SEP = f"[ \t{_DASH}]?"  # between the groups of a phone number
_WIDE_SEP = f"[ \t{_DASH}./]{{0,2}}"  # between the groups of マイナンバー and card numbers
_NOT_DIGIT_BEFORE = "(?<![0-9])"
# a group of a phone number, in brackets only when both are there: （044）200-2111 is masked whole,
# and 区役所（044-200-2111） keeps its brackets
_GROUP = r"(?:\([0-9]{1,4}\)|[0-9]{1,4})"
_NOT_DIGIT_AFTER = "(?![0-9])"
# What a masked span becomes while the later patterns run: one private-use character per
# character, which no pattern matches (negated classes list it), so offsets stay as they were.
HOLE = "\ue000"
# After a number, these say it is an amount, a time or a count, not an identifier.
_UNITS = "円|時|分|秒|歳|才|人|枚|回|件|万|億|個|年|ヶ月|か月|カ月|月|日|階|%|割|倍|部|通|本|冊|点|週|km|kg"


@dataclass(frozen=True)
class MaskPattern:
    """One kind of personal data and the compiled pattern that finds it. A pattern with a group
    named `v` masks only that group (the label before it stays); a match without `v`, or one whose
    group `unit` took part (300円, 10時), is left alone."""

    kind: str
    source: str  # the pattern's text (tests compile it with both engines)
    engine: str  # "re2" (linear whatever the pattern) or "re" (look-around, bounded repetition)
    keep: bool = False  # what it finds is no one's data: left as it is, and hidden from later patterns

    @functools.cached_property
    def regex(self):
        return re2.compile(self.source) if self.engine == "re2" else re.compile(self.source)

    @functools.cached_property
    def _groups(self) -> tuple[int | None, int | None]:
        index = self.regex.groupindex
        return index.get("v"), index.get("unit")

    def spans(self, text: str) -> Iterator[tuple[int, int]]:
        """(start, end) of each piece of text this pattern masks."""
        value, unit = self._groups
        for match in self.regex.finditer(text):
            if unit is not None and match.span(unit)[0] >= 0:
                continue
            start, end = match.span(value) if value is not None else match.span()
            if 0 <= start < end:
                yield start, end

    def sub(self, text: str) -> str:
        """The text with what this pattern finds replaced by its kind (no NFKC: see `mask`)."""
        if self.keep:
            return text
        pieces, last = [], 0
        for start, end in self.spans(text):
            pieces += [text[last:start], f"[{self.kind}]"]
            last = end
        return "".join([*pieces, text[last:]])


def _labelled(kind: str, labels: str) -> MaskPattern:
    """A number that follows its label within a few characters: 口座番号は1234567, 保険証の番号は
    一二三四五六七, パスポート番号 TK1234567. At least three numerals; an amount, a time or a count
    (カードで3000円) is not masked."""
    gap = f"[^0-9A-Za-z{_KANJI_NUMERALS}{HOLE}。.!?\\n]{{0,10}}"
    value = f"[A-Za-z]{{0,3}}[{_DASH}]?{_N}(?:[ \t{_DASH}.()]{{0,2}}{_N}){{2,}}"
    return MaskPattern(kind, f"(?:{labels}){gap}(?P<v>{value})(?P<unit>{_UNITS})?", "re2")


# Dates: an era year (昭和55年, S55, 平成元年) or a four-digit one, then month and day.
_ERA = "(?:明治|大正|昭和|平成|令和)"
_YEAR = f"(?:(?:{_ERA}|(?<![A-Za-z])[MTSHR]) ?(?:元|{_N}{{1,3}})|(?<![0-9{_KANJI_NUMERALS}]){_N}{{4}})"
_SHORT_YEAR = f"(?:{_YEAR}|(?<![0-9{_KANJI_NUMERALS}]){_N}{{2}})"
_KANJI_DATE = f"{_YEAR} ?年 ?{_N}{{1,2}} ?月 ?{_N}{{1,3}} ?日"
_NUMERIC_DATE = (
    f"(?:(?<![A-Za-z])[MTSHRmtshr] ?{_D}{{1,2}}|{_NOT_DIGIT_BEFORE}{_D}{{4}})"
    f"[./\\-]{_D}{{1,2}}[./\\-]{_D}{{1,2}}{_NOT_DIGIT_AFTER}|{_NOT_DIGIT_BEFORE}{_D}{{1,2}}/{_D}{{1,2}}/{_D}{{4}}{_NOT_DIGIT_AFTER}"
)
# 生 alone says born (平成2年生) unless it starts another word (2020年生活保護, 年生産量)
_BORN = "(?:生まれ|産まれ|誕生|生(?![活徒命涯協存地鮮産物前後計]))"

# Order matters: longer and more specific patterns first; what one masks, the next ones do not see.
PATTERNS: list[MaskPattern] = [
    MaskPattern(
        "メールアドレス",
        # the local part may be spaced out at its dots too (taro . yamada @ …)
        r"[A-Za-z0-9._%+\-]+(?:[ \t]{0,2}(?:\.|ドット|どっと)[ \t]{0,2}[A-Za-z0-9_%+\-]+)*"
        r"[ \t]{0,3}(?:@|アットマーク|あっとまーく|\(at\)|\[at\]|<at>)[ \t]{0,3}"
        r"[A-Za-z0-9\-]+(?:[ \t]{0,2}(?:\.|ドット|どっと)[ \t]{0,2}[A-Za-z0-9\-]+)+",
        "re2",
    ),
    MaskPattern(
        "生年月日",
        f"(?:生年月日|誕生日|生まれ|産まれ)[はがの:=、 \t]{{0,4}}(?P<v>{_KANJI_DATE}|{_NUMERIC_DATE}"
        f"|{_SHORT_YEAR} ?年(?: ?{_N}{{1,2}} ?月(?: ?{_N}{{1,3}} ?日)?)?|{_N}{{1,2}} ?月 ?{_N}{{1,3}} ?日"
        f"|{_D}{{1,2}}/{_D}{{1,2}}|{_D}{{8}}{_NOT_DIGIT_AFTER})",
        "re",
    ),
    MaskPattern(
        "生年月日",
        f"(?P<v>{_NUMERIC_DATE}|{_SHORT_YEAR} ?年(?: ?{_N}{{1,2}} ?月(?: ?{_N}{{1,3}} ?日)?)?)"
        f" ?[のに]?{_BORN}",
        "re",
    ),
    # a full date with its year and no word of birth: most likely one all the same (an event is
    # asked about as 12月3日), so it is masked, as a date
    MaskPattern("日付", f"{_KANJI_DATE}|{_NUMERIC_DATE}", "re"),
    # the ticket number the bot gave (受付番号12) is no one's personal data: matched, not masked
    MaskPattern("受付番号", f"受付番号[はがの:= \t]{{0,3}}{_D}{{1,9}}{_NOT_DIGIT_AFTER}", "re", keep=True),
    _labelled("マイナンバー", "マイナンバー|個人番号"),
    _labelled("郵便番号", "郵便番号|郵便|〒"),
    _labelled("電話番号", "電話|TEL|Tel|tel|携帯|ケータイ|スマホ|FAX|Fax|fax|ファックス|ファクス|連絡先"),
    _labelled("カード番号", "カード"),
    _labelled("口座番号", "口座"),
    _labelled("保険証番号", "保険証|被保険者|保険者番号"),
    _labelled("年金番号", "基礎年金番号|年金番号|年金手帳"),
    _labelled("受給者番号", "受給者"),
    _labelled("免許証番号", "免許"),
    _labelled("旅券番号", "パスポート|旅券"),
    _labelled("番号", "番号|記号|会員|ID|id|コード|整理券"),
    MaskPattern(  # English labels: account number is 1234567, passport no. TK1234567
        "番号",
        "(?i:number|no\\.|account|card|passport|licen[cs]e|member(?:ship)?|insurance|pension|id)"
        f"[ \t:#=]{{0,3}}(?i:is|was)?[ \t:#=]{{0,3}}"
        f"(?P<v>[A-Za-z]{{0,3}}[{_DASH}]?[0-9](?:[ \t{_DASH}.()]{{0,2}}[0-9]){{2,}})(?P<unit>{_UNITS}|yen)?",
        "re2",
    ),
    MaskPattern(  # before the card and マイナンバー patterns: +81 and ten digits look like those
        "電話番号",
        rf"\+ ?81{_SEP}(?:\(0\))?{_GROUP}{_SEP}{_GROUP}{_SEP}{_D}{{3,4}}{_NOT_DIGIT_AFTER}",
        "re",
    ),
    MaskPattern(
        "カード番号",
        f"{_NOT_DIGIT_BEFORE}(?:{_D}{{4}}{_WIDE_SEP}{_D}{{4}}{_WIDE_SEP}{_D}{{4}}{_WIDE_SEP}{_D}{{2,4}}"
        f"|{_D}{{4}}{_WIDE_SEP}{_D}{{6}}{_WIDE_SEP}{_D}{{4,5}}){_NOT_DIGIT_AFTER}",
        "re",
    ),
    MaskPattern(
        "マイナンバー",
        f"{_NOT_DIGIT_BEFORE}{_D}{{4}}{_WIDE_SEP}{_D}{{4}}{_WIDE_SEP}{_D}{{4}}{_NOT_DIGIT_AFTER}",
        "re",
    ),
    MaskPattern(
        "電話番号",
        rf"{_NOT_DIGIT_BEFORE}(?:\(0{_D}{{0,4}}\)|0{_D}{{0,4}}){_SEP}{_GROUP}{_SEP}{_D}{{3,4}}{_NOT_DIGIT_AFTER}",
        "re",
    ),
    MaskPattern(  # 〇九〇ー一二三四ー五六七八
        "電話番号",
        f"(?<![{_KANJI_NUMERALS}])〇[{_KANJI_DIGITS}]{{1,4}}{_SEP}[{_KANJI_DIGITS}]{{1,4}}{_SEP}"
        f"[{_KANJI_DIGITS}]{{3,4}}(?![{_KANJI_NUMERALS}])",
        "re",
    ),
    MaskPattern(
        "郵便番号",
        # not the end of an address's numbers (小杉町3-600-1201 is an address, masked below)
        f"〒 ?{_D}{{3}}{_SEP}{_D}{{4}}"
        f"|{_NOT_DIGIT_BEFORE}(?<![0-9][{_DASH}]){_D}{{3}}[{_DASH}]{_D}{{4}}{_NOT_DIGIT_AFTER}",
        "re",
    ),
    # nine digits or more with no label: some identifier (an amount says 円 after it)
    MaskPattern("番号", f"[0-9]{{9,}}(?P<unit>{_UNITS})?", "re2"),
    # The numbers of an address after its town (or ward, or 住所は): 今井南町22番1号, 上小田中六丁目
    # 十番五号, 新城5ー6ー7, 小杉町3-600, 登戸1775番地. The town before them stays.
    MaskPattern(
        "住所",
        f"[一-龥ぁ-んァ-ヶ々ヵ] ?(?P<v>{_N}+丁目(?: ?{_N}+(?:番地?|[{_DASH}の]) ?(?:{_N}+(?:号|番地?)?)?)?"
        f"|{_N}+番地(?: ?[の{_DASH}]? ?{_N}+号?)?|{_N}+番 ?{_N}+号?|{_N}+(?:[{_DASH}の]{_N}+){{1,3}}号?)",
        "re2",
    ),
]


def _normalized(text: str) -> tuple[str, list[int] | None]:
    """The NFKC text the patterns read, and for each of its characters the index of the original
    character it came from (None when NFKC changes nothing). Character by character, so every
    piece of the NFKC text maps back to the original exactly."""
    if unicodedata.is_normalized("NFKC", text):
        return text, None
    pieces: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        normal = unicodedata.normalize("NFKC", char) if ord(char) > 0x7F else char
        pieces.append(normal)
        origin += [index] * len(normal)
    return "".join(pieces), origin


def _key(text: str) -> str:
    """What two spellings of one number share: NFKC letters and digits only (044-200-2111 and
    ０４４（２００）２１１１ are one number)."""
    return "".join(c for c in unicodedata.normalize("NFKC", text) if c.isalnum())


def public_numbers(knowledge_dir: Path) -> frozenset[str]:
    """The phone numbers, postal codes and addresses the knowledge publishes (offices, hotlines):
    no one's personal data, and what a staff reply most often quotes. As `mask(keep=…)` takes them."""
    found: set[str] = set()
    for path in sorted(Path(knowledge_dir).glob("*.yml")):  # drafts/ is not published
        normal = unicodedata.normalize("NFKC", path.read_text(encoding="utf-8"))
        for pattern in PATTERNS:
            if pattern.kind in PUBLIC_KINDS:
                found.update(_key(normal[start:end]) for start, end in pattern.spans(normal))
    return frozenset(k for k in found if sum(c.isdigit() for c in k) >= 7)


PUBLIC_KINDS = frozenset({"電話番号", "郵便番号"})  # an address number says little without its town


def _mask_patterns(text: str, keep: frozenset[str] = frozenset()) -> str:
    """The original text with every span a pattern finds in its NFKC form replaced by the kind,
    but for the public numbers in `keep` (see public_numbers)."""
    normal, origin = _normalized(text)
    work = normal
    found: list[tuple[int, int, str]] = []
    for pattern in PATTERNS:
        spans = list(pattern.spans(work))
        if not spans:
            continue
        pieces, last = [], 0
        for start, end in spans:
            pieces += [work[last:start], HOLE * (end - start)]
            last = end
            if not pattern.keep and not (keep and _key(work[start:end]) in keep):
                found.append((start, end, pattern.kind))
        work = "".join([*pieces, work[last:]])
    if not found:
        return text
    if origin is not None:  # back to the original's offsets (one NFKC piece may come from one char)
        found = [(origin[s], origin[e - 1] + 1, kind) for s, e, kind in found]
    pieces, last = [], 0
    for start, end, kind in sorted(found):
        if start < last:  # two pieces of one original character
            continue
        pieces += [text[last:start], f"[{kind}]"]
        last = end
    return "".join([*pieces, text[last:]])


# GiNZA sometimes takes 幸区 or 高津区 for a person; names never end like places do.
PLACE_SUFFIXES = ("区", "市", "町", "村", "駅", "丁目")
# ...and the wards' names without 区: 「中原に住んでいます」 must keep its ward for the answer
PLACE_NAMES = frozenset({"川崎", "幸", "中原", "高津", "宮前", "多摩", "麻生"})


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


def _looks_like_a_latin_name(text: str) -> bool:
    """GiNZA takes English words for names ("Where can", "There is", "script"): a name in Latin
    letters is capitalised word by word (Taro Yamada, YAMADA Taro)."""
    words = text.split()
    if not words or (len(words) == 1 and words[0] in _NOT_NAMES):
        return False
    return all(w[0].isupper() for w in words)


# Capitalised words that open English questions, which GiNZA may take for a name on their own.
_NOT_NAMES = frozenset(
    {"Where", "What", "When", "Which", "Who", "How", "Why", "There", "Is", "Can", "Do", "I", "My"}
)


def _person_spans(nlp, text: str) -> Iterator[tuple[int, int]]:
    for offset, end in _windows(text):
        with _GINZA_LOCK:
            doc = nlp(text[offset:end])
        for e in doc.ents:
            if (
                e.label_ == "Person"
                and not e.text.endswith(PLACE_SUFFIXES)
                and e.text not in PLACE_NAMES
                and not (e.text.isascii() and not _looks_like_a_latin_name(e.text))
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


def mask(text: str, names: bool = True, keep: frozenset[str] = frozenset()) -> str:
    """Text with personal data replaced by its kind, e.g. 「[マイナンバー]」, in time linear in its
    length (see the module's docstring). `keep`: public numbers left as they are (public_numbers)."""
    if names:
        _ginza()  # loaded once per process
    if not text:
        return text
    text = _mask_patterns(text, keep)
    return _mask_names(text) if names else text
