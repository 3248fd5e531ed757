import pytest

from bot.privacy import mask

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
