from bot.japanese import default_analyzer, nfkc, to_katakana


def test_nfkc_folds_half_width_and_full_width():
    assert nfkc("ｼﾞｭｳﾐﾝﾋｮｳ") == "ジュウミンヒョウ"
    assert nfkc("ＡＢＣ１２３") == "abc123"


def test_hiragana_to_katakana():
    assert to_katakana("じゅうみんひょう") == "ジュウミンヒョウ"
    assert to_katakana("住民票abc") == "住民票abc"


def test_spellings_meet_on_readings():
    a = default_analyzer()
    assert a.reading("住民票") == a.reading("じゅうみんひょう") == a.reading("ｼﾞｭｳﾐﾝﾋｮｳ") == "ジュウミンヒョウ"


def test_offsets_point_into_the_original_text():
    text = "ｼﾞｭｳﾐﾝﾋｮｳを取りたい"
    for m in default_analyzer().analyze(text):
        assert text[m.start : m.end] == m.surface


def test_content_terms_drop_particles():
    assert default_analyzer().content_terms("住民票の写しがほしい") == ["住民票", "写し", "欲しい"]


def test_long_and_odd_input_is_analysed():
    a = default_analyzer()
    assert a.analyze("") == ()
    assert a.analyze("😀😀")
    long = "住民票の写しがほしいです。" * 2000  # 26,000 characters: above Sudachi's input limit
    morphs = a.analyze(long)
    assert morphs[-1].end == len(long)
