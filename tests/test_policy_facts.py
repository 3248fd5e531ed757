"""Policy facts to the sentence: splitting chunks and choosing the sentence that answers."""

from __future__ import annotations

import functools
import re

from bot.answering.policy_facts import asked_for, best_sentence, sentence_scores, sentences
from bot.knowledge import load_knowledge
from bot.settings import ROOT

TEXT = (
    "本市では区役所の機能強化に取り組んできました。なお、平成26年の改正地方自治法では、総合区を設置"
    "できることなどが新た\nに規定されました(以下「新制度」といいます。)。総合区長は議会の同意を得て選任"
    "される特別職です。"
)


def test_sentences_end_at_a_full_stop_outside_brackets_and_rejoin_broken_lines():
    assert sentences(TEXT) == [
        "本市では区役所の機能強化に取り組んできました。",
        "なお、平成26年の改正地方自治法では、総合区を設置できることなどが新たに規定されました"
        "(以下「新制度」といいます。)。",
        "総合区長は議会の同意を得て選任される特別職です。",
    ]


def test_the_sentence_holding_what_is_asked_for_is_chosen():
    assert asked_for("総合区はいつできたの？") == {"date"}
    assert asked_for("総合区長は誰が選ぶ") == {"body"}
    assert "平成26年" in best_sentence("総合区はいつ法律で決まったの？", TEXT)
    assert "総合区長は議会の同意" in best_sentence("総合区長はどうやって選ばれる", TEXT)


def test_every_policy_chunk_splits_into_sentences():
    kb = load_knowledge(ROOT / "knowledge")
    for chunk in kb.policy.values():
        parts = sentences(chunk.text)
        assert parts and all(len(p) >= 8 for p in parts), chunk.id
        flat = re.sub(r"\s+", "", chunk.text)
        assert all(re.sub(r"\s+", "", p) in flat for p in parts), chunk.id  # nothing invented


def test_an_faq_summary_gets_the_policy_sentence_that_holds_the_asked_date():
    from bot.answering.composer import AnswerComposer, PolicyQuote
    from bot.retrieval.documents import documents_from
    from bot.retrieval.index import Hit

    kb = load_knowledge(ROOT / "knowledge")
    faq = next(iter(kb.faqs.values()))
    doc = next(d for d in documents_from(kb) if d.id == f"faq:{faq.id}")
    chunk = next(c for c in kb.policy.values() if "平成" in c.text)
    question = "それはいつからですか"
    quote = PolicyQuote(chunk, best_sentence(question, chunk.text))
    answer = AnswerComposer(kb, 0.5).compose(Hit(doc, 1.0, 0.9, {}), None, None, "ja", question, quote)
    lines = answer.text.splitlines()
    assert lines[0] == faq.answer.splitlines()[0]
    assert any(line.startswith(f"{chunk.cite}「{chunk.heading}」より:") for line in lines)
    assert "平成" in answer.text.split("より:", 1)[1]
    assert lines[-1].startswith("出典: ") and lines[-1].endswith(" ほか")  # short; the card lists all


def test_a_table_row_is_a_sentence_of_its_own():
    table = (
        "日時\t場所\t参加者数\n南部地区\t平成 27 年 9 月 19 日（土）\t会議室\t44 名\n"
        "北部地区\t平成 27 年 9 月 27 日（日）\tホール\t47 名"
    )
    assert sentences(table)[1:] == [
        "南部地区 平成 27 年 9 月 19 日（土） 会議室 44 名",
        "北部地区 平成 27 年 9 月 27 日（日） ホール 47 名",
    ]
    assert "北部地区" in best_sentence("北部地区の回には何人来ましたか", table)


def test_the_sentence_vectors_decide_when_the_question_shares_no_word():
    question = "選び方は？"  # no content word of either sentence
    plain = sentence_scores(question, TEXT)
    assert plain[0] == plain[2]  # words alone cannot tell
    cosines = {sentences(TEXT)[2]: 0.8, sentences(TEXT)[0]: 0.2}
    assert "総合区長は議会の同意" in best_sentence(question, TEXT, cosines)


def test_a_policy_sentence_answers_what_the_scope_gate_turns_away():
    """The scope classifier learnt from residents' procedure questions and judges this one out
    of scope; the table row that holds its words (under 「(2) かわさき改革カフェ」) answers it."""
    concierge = _real_concierge()
    question = "改革カフェの中部地区の回の参加者は何名"
    assert concierge.retriever.in_scope(question) < concierge.settings.scope_min
    answer = concierge.answer(question)
    assert not answer.unresolved and answer.entry.startswith("policy:")
    assert "中部地区" in answer.text and "48 名" in answer.text and "出典" in answer.text
    assert concierge.answer("猫カフェ 川崎").unresolved  # three words, one shared: not enough


def test_numbers_the_question_names_must_be_in_the_sentence():
    from bot.answering.policy_facts import numbers_held

    assert numbers_held("第1回会合はいつ", "第1回 平成27年6月8日") == 1.0
    assert numbers_held("第1回会合はいつ", "第3回 平成27年9月4日") == 0.0
    assert numbers_held("部会はいつ開かれた", "第3回 平成27年9月4日") == 1.0  # names none
    assert numbers_held("第１回", "第1回") == 1.0  # full-width digits read as NFKC
    rows = "第1回\t平成27年6月8日\t区役所のあり方\n第3回\t平成27年9月4日\t区民会議のあり方"
    assert best_sentence("区のあり方検討部会の第1回はいつ", rows).startswith("第1回")


def test_which_and_how_many_are_asked_for():
    assert asked_for("拠点の数はどう変わりましたか") == {"figure"}
    assert asked_for("参加した職員は何名？") == {"figure"}
    assert asked_for("どこからの提言で始まったの") == {"body"}


def test_a_policy_chunk_the_answer_model_is_sure_of_answers_with_its_sentence(monkeypatch):
    """Long questions about the policy's history score low on the blended confidence and share
    too few of their words with any one sentence, though the answer model is sure of the chunk;
    its sentence holding the figure answers."""

    concierge = _real_concierge()
    question = "区役所が管理している庁舎などの建物のうち、竣工してから25年以上たっているものは今どのくらいの割合になっているのでしょうか"  # noqa: E501
    best = concierge.retriever.search(question, k=3)[0]
    assert best.doc.kind == "policy" and best.confidence < concierge.settings.answer_min_score
    answer = concierge.answer(question)
    assert not answer.unresolved and "約70%" in answer.text and "出典" in answer.text
    strict = concierge.settings.replace(policy_min_probability=2.0)
    monkeypatch.setattr(concierge, "settings", strict)
    assert concierge.answer(question).unresolved  # without the rule the gates turn it away


def test_a_service_reply_gets_the_fact_of_the_policy_chunk_ranked_close_behind_it():
    """The 道路公園センター counter wins 「拠点の数はどう変わった」; the policy chunk the answer
    model ranked close behind it holds the figure, quoted beside the counter."""
    answer = _real_concierge().answer("公園の維持管理の拠点の数は道路公園センターでどう変わった")
    assert answer.entry == "service:doro-koen-fuguai"
    assert "4ヶ所から7ヶ所" in answer.text


@functools.cache
def _real_concierge():
    """The concierge over the real knowledge and index (built by `make test` before the tests)."""
    from bot.answering.concierge import Concierge
    from bot.settings import Settings

    return Concierge(Settings())
