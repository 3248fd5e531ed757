import re
import re._constants as sre
import time
import unicodedata
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.privacy import HOLE, PATTERNS, MaskPattern, mask

CASES = yaml.safe_load((Path(__file__).parent / "data" / "masking_cases.yml").read_text(encoding="utf-8"))
KEEP = CASES.pop("keep")
TABLE = [(kind, *map(str, case)) for kind, cases in CASES.items() for case in cases]


def _digit_runs(text: str) -> list[str]:
    """Runs of three or more digits (after NFKC, kanji numerals as digits) a leak would show."""
    kanji = str.maketrans("〇一二三四五六七八九", "0123456789")
    digits = unicodedata.normalize("NFKC", text).translate(kanji)
    return re.findall(r"[0-9]{3,}", digits)


def test_the_table_has_eight_real_looking_cases_per_kind():
    assert all(len(cases) >= 8 for cases in CASES.values())
    assert len(KEEP) >= 8


@pytest.mark.parametrize(("kind", "text", "raw", "masked_as"), [(*c, None)[:4] for c in TABLE], ids=str)
def test_each_form_is_masked_with_its_kind(kind, text, raw, masked_as):
    """Half/full width, kanji numerals, spaces and labels: the data goes, its kind shows, and no
    NFKC form or run of its digits stays behind."""
    masked = mask(text)
    assert f"[{masked_as or kind}]" in masked, masked
    assert raw not in masked and unicodedata.normalize("NFKC", raw) not in masked, masked
    leaked = [run for run in _digit_runs(raw) if run in "".join(_digit_runs(masked))]
    assert not leaked, masked


@pytest.mark.parametrize("text", KEEP)
def test_what_the_bot_needs_to_answer_is_left_alone(text):
    """Ward, office and counter names, towns without numbers, event dates, times and amounts."""
    assert mask(text) == text


def test_the_original_text_is_kept_where_nothing_is_masked():
    """Patterns read the NFKC form; the rest of the message stays as typed (half-width kana too)."""
    text = "ｼﾞｭｳﾐﾝﾋｮｳ ＡＢＣ　電話は０９０－１２３４－５６７８、㍼の頃から①"
    assert mask(text, names=False) == "ｼﾞｭｳﾐﾝﾋｮｳ ＡＢＣ　電話は[電話番号]、㍼の頃から①"


def test_brackets_around_a_phone_number_stay_when_they_are_not_part_of_it():
    masked = mask("保険年金課（044-744-3113）まで、または（044）744-3113へ", names=False)
    assert masked == "保険年金課（[電話番号]）まで、または[電話番号]へ"


def test_a_character_that_nfkc_expands_is_masked_whole():
    """㍼ is 昭和 in NFKC: a date of birth that starts with it is masked from the ㍼ on."""
    assert mask("㍼55年4月1日生まれ", names=False) == "[生年月日]生まれ"


def test_a_staff_typed_label_keeps_the_context_but_not_the_value():
    masked = mask("口座番号は1234567、保険証は12-345678", names=False)
    assert masked == "口座番号は[口座番号]、保険証は[保険証番号]"


def test_names_found_by_ginza_and_numbers_by_patterns():
    masked = mask(
        "川崎市中原区小杉町3-245に住む山田太郎です。電話は090-1234-5678、マイナンバーは123456789012"
    )
    # the ward and town stay (the bot answers with them); the numbers that find the house go
    assert masked == (
        "川崎市中原区小杉町[住所]に住む[氏名]です。電話は[電話番号]、マイナンバーは[マイナンバー]"
    )


def test_masking_from_many_threads_at_once():
    """The action server masks in worker threads; GiNZA's Sudachi tokenizer may not be entered by
    two threads at once ("RuntimeError: Already borrowed" under load, seen in `make bench`)."""
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"山田太郎と申します。{i}番の件で職員と話したい" for i in range(64)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        masked = list(pool.map(mask, texts))
    assert all("山田" not in m and "[氏名]" in m for m in masked)


# Texts built to make a backtracking engine slow, at the residents' message cap: repeated place
# suffixes, digits and separators, kana, e-mail look-alikes and mixes. The old address pattern took
# 0.78 s on 32 characters of 市区 and 31 s on 40 (ten times longer every four characters).
ADVERSARIAL_UNITS = [
    "区", "市区", "県市区町村", "東京都", "区1", "区1-", "丁目1-", "1番地", "1", "1-", "1 ", "１－",
    "(0", "+81-", "〒1", "あ", "ア", "あ区", "中原区新丸子東1-", "a", "a@", "a@b.", "a.", "ａ＠",
]  # fmt: skip
CAP = 2000


def repeated(unit: str, length: int = CAP) -> str:
    return (unit * (length // len(unit) + 1))[:length]


@pytest.mark.parametrize("unit", ADVERSARIAL_UNITS)
def test_every_pattern_stays_fast_on_text_built_to_backtrack(unit):
    """A hang detector with a generous bound (each pattern takes well under a millisecond here)."""
    text = repeated(unit)
    for pattern in PATTERNS:
        started = time.perf_counter()
        pattern.sub(text)
        assert time.perf_counter() - started < 0.5, f"{pattern.kind} on {unit!r}×{CAP // len(unit)}"


HUGE = 100_000


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: p.kind)
def test_every_pattern_finishes_on_100k_characters_built_to_backtrack(pattern):
    """Each pattern over 100,000 characters of every adversarial unit (and NFKC's forms of them).
    Linear work takes well under a second for all of them; a backtracking pattern would not finish.
    The bound is for a hang, not a benchmark: 20 s for the whole set on a shared machine."""
    started = time.perf_counter()
    for unit in ADVERSARIAL_UNITS:
        for text in {repeated(unit, HUGE), unicodedata.normalize("NFKC", repeated(unit, HUGE))}:
            list(pattern.spans(text))
    assert time.perf_counter() - started < 20


def test_the_whole_pattern_pass_finishes_on_100k_characters():
    """NFKC, every pattern and the mapping back, on 100,000 characters that NFKC changes."""
    started = time.perf_counter()
    for unit in ("区１－", "１２３４　", "ａ＠", "〒１", "ｰ1", "昭和１年"):
        masked = mask(repeated(unit, HUGE), names=False)
        assert HOLE not in masked
    assert time.perf_counter() - started < 30


@pytest.mark.parametrize("unit", ["市区", "区1-", "a@", "中原区新丸子東1-", "山田"])
def test_a_whole_message_at_the_cap_is_masked_in_bounded_time(unit):
    """Names too: GiNZA reads the text window by window (about half a second for 2,000 characters)."""
    started = time.perf_counter()
    mask(repeated(unit))
    assert time.perf_counter() - started < 10


def _repeat_bounds(parsed) -> list[int]:
    """The upper bound of every repetition in a parsed Python pattern (MAXREPEAT when open-ended)."""
    bounds: list[int] = []
    for op, arg in parsed:
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            bounds.append(arg[1])
            bounds += _repeat_bounds(arg[2])
        elif op is sre.BRANCH:
            for alternative in arg[1]:
                bounds += _repeat_bounds(alternative)
        elif op in (sre.SUBPATTERN, sre.ASSERT, sre.ASSERT_NOT, sre.ATOMIC_GROUP):
            bounds += _repeat_bounds(arg[-1])
    return bounds


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: p.kind)
def test_open_ended_repetition_runs_only_on_re2(pattern):
    """Python's re backtracks: a pattern it runs must bound every repetition (then each start position
    costs a bounded number of steps). RE2 is linear whatever the pattern."""
    bounds = _repeat_bounds(re._parser.parse(pattern.source))
    if pattern.engine == "re":
        assert bounds and max(bounds) < sre.MAXREPEAT, pattern.source
    else:
        assert type(pattern.regex).__module__.startswith("re2")


# Short texts shaped like addresses, numbers and e-mail, made of pieces that reach the patterns'
# corners (and white space that the two engines could read differently).
def _joined(pieces: list[str], size: int) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(pieces), max_size=size).map("".join)


PLACE = _joined(
    ["区", "市", "町", "村", "県", "都", "中原", "あ", "ア", "の", "番号は", "口座", "生まれ", "昭和"], 5
)
GAP = st.sampled_from(["", " ", "\u3000", "\t", "-", "ー", "の"])
DIGITS = st.sampled_from(["", "1", "１", "23", "０４５", "六", "二十", "〇九〇"])
JOINT = st.sampled_from(
    ["", "-", "－", "ー", "の", "丁目", "番地", "番", "号", " ", "\u3000", "年", "月", "日", "."]
)
NUMBER = st.tuples(DIGITS, JOINT, DIGITS, JOINT, DIGITS, JOINT).map("".join)
MAIL = _joined(["a", "Ｂ", "1", ".", "．", "-", "_", "@", "＠", "example", " ", "アットマーク", "ドット"], 7)
SHORT_TEXT = st.one_of(
    st.tuples(PLACE, GAP, NUMBER, GAP, PLACE).map("".join),
    st.tuples(MAIL, GAP, PLACE).map("".join),
)


@settings(max_examples=500, deadline=None, derandomize=True)
@given(SHORT_TEXT)
def test_re2_patterns_mask_exactly_what_pythons_re_would(text):
    """RE2 keeps the leftmost-first semantics of the patterns (compared on texts short enough for
    Python's backtracking to finish)."""
    for pattern in PATTERNS:
        if pattern.engine == "re2":
            backtracking = MaskPattern(pattern.kind, pattern.source, "re")
            assert list(pattern.spans(text)) == list(backtracking.spans(text)), pattern.kind


def test_long_texts_have_names_masked_to_the_end():
    """GiNZA reads long texts window by window: a name after the first window is masked too."""
    text = "住民票の写しがほしいです。" * 300 + "山田太郎と申します。"
    assert len(text) > 3000
    masked = mask(text)
    assert masked.endswith("[氏名]と申します。") and masked.startswith("住民票の写しがほしいです。")
