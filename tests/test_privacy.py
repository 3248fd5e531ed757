import re
import re._constants as sre
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.privacy import PATTERNS, mask

KINDS = {
    "マイナンバー": [
        "123456789012",
        "1234 5678 9012",
        "1234-5678-9012",
        "１２３４５６７８９０１２",
        "１２３４－５６７８－９０１２",
        "1234　5678　9012",
    ],
    "電話番号": [
        "090-1234-5678",
        "09012345678",
        "０９０－１２３４－５６７８",
        "080 1234 5678",
        "044-200-2111",
        "(044)200-2111",
        "03-1234-5678",
        "+81-90-1234-5678",
        "0120-123-456",
    ],
    "メールアドレス": ["taro.yamada@example.co.jp", "hanako+city@mail.example.com", "ｔａｒｏ＠example.com"],
    "郵便番号": ["〒211-0063", "〒２１１－００６３", "211-0063"],
    "カード番号": ["4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111111"],
    "住所": ["宮前平2丁目20番5号", "中原区新丸子東1-2-3", "登戸1775番地", "川崎市中原区小杉町3-245"],
}


@pytest.mark.parametrize(("kind", "raw"), [(k, v) for k, vs in KINDS.items() for v in vs])
def test_each_form_is_masked_with_its_kind(kind, raw):
    masked = mask(f"わたしの{raw}です", names=False)
    assert f"[{kind}]" in masked, masked
    digits = [c for c in raw if c.isdigit()]
    assert not any(c.isdigit() for c in masked) or len(digits) == 0, masked


@pytest.mark.parametrize(
    "text",
    [
        "住民票がほしい",
        "幸区",
        "高津区です",
        "<script>alert(1)</script>",
        "平成28年1月から",
        "2016年2月",
        "午後5時まで",
        "第2・第4土曜日 8:30〜12:30",
        "犬を2匹飼っています",
    ],
)
def test_ordinary_text_is_left_alone(text):
    assert mask(text) == text


def test_names_found_by_ginza_and_numbers_by_patterns():
    masked = mask(
        "川崎市中原区小杉町3-245に住む山田太郎です。電話は090-1234-5678、マイナンバーは123456789012"
    )
    assert masked == "[住所]に住む[氏名]です。電話は[電話番号]、マイナンバーは[マイナンバー]"


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


PLACE = _joined(["区", "市", "町", "村", "県", "都", "中原", "あ", "ア", "の"], 5)
GAP = st.sampled_from(["", " ", "\u3000", "\t", "-", "ー", "の"])
DIGITS = st.sampled_from(["", "1", "１", "23", "０４５"])
JOINT = st.sampled_from(["", "-", "－", "ー", "の", "丁目", "番地", "番", "号", " ", "\u3000"])
NUMBER = st.tuples(DIGITS, JOINT, DIGITS, JOINT, DIGITS, JOINT).map("".join)
MAIL = _joined(["a", "Ｂ", "1", ".", "．", "-", "_", "@", "＠", "example", " "], 7)
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
            expected = re.compile(pattern.source).sub(f"[{pattern.kind}]", text)
            assert pattern.sub(text) == expected, pattern.kind


def test_long_texts_have_names_masked_to_the_end():
    """GiNZA reads long texts window by window: a name after the first window is masked too."""
    text = "住民票の写しがほしいです。" * 300 + "山田太郎と申します。"
    assert len(text) > 3000
    masked = mask(text)
    assert masked.endswith("[氏名]と申します。") and masked.startswith("住民票の写しがほしいです。")
