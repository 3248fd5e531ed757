"""The learned answer model: its features, its training from the knowledge's own wordings, and
the scope classifier that keeps questions for no public office from being answered."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bot.retrieval.answer_model import (
    MODEL_PATH,
    CandidateContext,
    candidate_features,
    feature_names,
    load_answer_model,
)
from bot.retrieval.answer_training import _held_views, calibrate
from bot.retrieval.documents import Document, View
from bot.retrieval.encoders import make_encoder
from bot.retrieval.index import Retriever
from bot.retrieval.maintenance import build_from_knowledge
from bot.settings import Settings

MORE_SERVICES = """
- id: inkan
  name: 印鑑登録証明書の交付
  aliases: [印鑑証明, 印鑑登録証明]
  questions:
    - 印鑑証明がほしい
    - 車を買うので実印の証明が要る
    - 家の契約で印鑑証明を出してと言われた
    - 印鑑証明書はどこで取れますか
  counter: kumin
  offices: [区役所]
  source: seed / 第4章 1(2)
- id: koseki
  name: 戸籍証明書の交付
  aliases: [戸籍謄本, 戸籍抄本]
  questions:
    - 戸籍謄本がほしい
    - 相続の手続きで戸籍が必要になった
    - 本籍地の戸籍を取りたい
    - 戸籍の証明書はどこで
  counter: kumin
  offices: [区役所]
  source: seed / 第4章 1(2)
- id: koen
  name: 公園の利用の相談
  aliases: [公園の使用, 公園の占用]
  questions: [公園でイベントをしたい, 公園の広場を借りたい, 公園にキッチンカーを出したい, 公園で撮影をしたい]
  counter: doro-koen
  offices: [区役所]
  source: seed / 第2章 2(1)ア
"""

OUT_OF_SCOPE = [
    "明日の天気は？",
    "週末は雨が降りますか",
    "駅前でおいしいパン屋を教えて",
    "映画の上映時間を知りたい",
    "携帯の料金プランを変えたい",
    "ネット通販の配達が遅れている",
    "おすすめの美容院はどこ",
    "サッカーの試合結果は",
    "新幹線の切符を予約したい",
    "スマホの画面を修理したい",
    "今日の為替レートは",
    "人気の居酒屋を知りたい",
]


def test_features_say_whether_the_question_names_an_entry_and_what_it_lacks():
    ctx = CandidateContext(
        query="印鑑証明がほしい",
        fused=np.array([2.0, 1.0]),
        scores={"usem3": np.array([0.8, 0.6]), "terms": np.zeros(2), "readings": np.zeros(2)},
        zscores={"terms": np.array([1.0, -1.0]), "readings": np.array([1.0, -1.0])},
        term_cov=[1.0, 0.5],
        reading_cov=[1.0, 0.2],
        n_terms=2,
        n_grams=6,
        uncovered_idf=[0.0, 1.5],
        unknown_share=0.0,
        latin=False,
        kana_only=False,
    )
    rows = candidate_features(ctx, [0, 1], [("印鑑証明",), ("戸籍謄本",)], ["usem3"])
    names = feature_names(["usem3"])
    assert rows.shape == (2, len(names))
    column = dict(zip(names, rows.T, strict=True))
    assert list(column["name_in_query"]) == [1.0, 0.0]
    assert list(column["fused_gap_best"]) == [0.0, -1.0]
    assert list(column["uncovered_idf"]) == [0.0, 1.5]
    assert list(column["usem3_cos_gap"]) == [0.0, -0.8 + 0.6]


def test_training_holds_out_wordings_not_names():
    doc = Document(
        "service:x",
        "service",
        "X",
        views=(
            View("X エックス", "query"),
            View("Xがほしい", "query"),
            View("X, ex", "query"),
            View("説明", "passage"),
        ),
        names=("X", "エックス", "X", "ex"),
    )
    assert _held_views(doc) == [1]


def test_the_committed_model_fits_the_default_encoders():
    model = load_answer_model(MODEL_PATH, list(Settings().encoders))
    assert model is not None and model.scope_coef is not None
    assert model.figures["questions"] > 1000  # trained on the whole knowledge
    assert load_answer_model(MODEL_PATH, ["usem3"]) is None  # other encoders: no model, not garbage


def test_calibrate_trains_a_model_that_ranks_and_knows_its_scope(small_knowledge, tmp_path, settings_for):
    services = small_knowledge / "services.yml"
    services.write_text(services.read_text(encoding="utf-8") + MORE_SERVICES, encoding="utf-8")
    (small_knowledge / "calibration").mkdir()
    (small_knowledge / "calibration" / "out-of-scope.txt").write_text("\n".join(OUT_OF_SCOPE), "utf-8")
    settings = settings_for(small_knowledge, tmp_path / "var")
    encoders = [make_encoder("usem3")]
    build_from_knowledge(settings, encoders)
    model_path = tmp_path / "model.json"

    report = calibrate(settings, encoders, model_path)

    assert "cross-validated" in report and Path(model_path).exists()
    model = load_answer_model(model_path, ["usem3"])
    assert model is not None and model.figures["questions"] > len(OUT_OF_SCOPE)
    retriever = Retriever(settings.index_dir, encoders, answer_model=model)
    hits = retriever.search("印鑑証明を一通取りたい", k=3)
    assert hits[0].doc.id == "service:inkan"
    probabilities = [h.probability for h in hits]
    assert all(p is not None and 0.0 <= p <= 1.0 for p in probabilities)
    assert probabilities == sorted(probabilities, reverse=True)
    assert retriever.in_scope("戸籍謄本を取りたい") > retriever.in_scope("おすすめのラーメン屋を教えて")
    assert retriever.in_scope("じゅうみんひょう") is None  # kana-only and English: never learnt
    assert retriever.in_scope("Where can I get a residence certificate?") is None
