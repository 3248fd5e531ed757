"""Policy facts to the sentence: which sentence of a reform-policy chunk answers a question.

A question like 「コンビニ交付はいつから？」 wants one sentence of a long chunk (the one with the
date), not the chunk's opening. Chunks are split into sentences (each is also a retrieval view);
the answer quotes the sentence that shares the most content words with the question, preferring
one that holds what the question asks for: a date (いつ・何年), a figure (何%・何か所), a body or
role (誰・どこが).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from bot.japanese import default_analyzer, nfkc, sentences
from bot.retrieval.index import coverage

# Weight of a sentence's cosine with the question against its share of the question's words
# (tuned on the tune part of tests/dev/policy_facts.jsonl; see the note in issue 13).
DENSE_WEIGHT = 1.0
# A sentence this short quotes its neighbour too (「この取組により…」 needs what came before).
SHORT_SENTENCE_CHARS = 30

# What the question asks for, by the words residents use (matched on NFKC text: containment only).
QUESTION_CUES: dict[str, tuple[str, ...]] = {
    "date": ("いつ", "何年", "何月", "何日", "時期", "年度", "when", "what year"),
    "figure": ("何%", "何パーセント", "割合", "何割", "何人", "何名", "何歳", "年齢", "何か所", "何箇所",
               "何カ所", "何ヶ所", "いくつ", "何件", "何回", "何度", "いくら", "何円", "金額", "どのくらい",
               "どれくらい", "どれだけ", "の数", "数は", "how many", "how much", "percent"),
    "body": ("誰", "だれ", "どこ", "どの組織", "どの部署", "どの課", "どの分野", "who", "which office"),
}  # fmt: skip
# What a sentence holds (knowledge text, not resident text).
SENTENCE_HOLDS: dict[str, re.Pattern[str]] = {
    # the import left spaces inside dates and figures (「平成 19 年 10 月」)
    "date": re.compile(r"(?:平成|令和|昭和|H) ?(?:\d{1,2}|元) ?年|\d{4} ?年|\d{1,2} ?年度|\d{1,2} ?[月日]"),
    "figure": re.compile(
        r"\d+(?:\.\d+)? ?(?:%|割|人|名|か所|箇所|カ所|ヶ所|件|区|館|課|万|億|倍|年間|か月|グループ)"
    ),
    "body": re.compile(
        r"区長|市長|副区長|局長|課長|部長|会長|委員|教授|審議会|会議|センター|職員|区役所|本庁|局|課"
    ),
}


# Words of the asking, not of the topic (Sudachi's normalized forms): 「何に努める」「誰ですか」
# 「〜とされていますか」 hold 何, 誰, 為る, 居る, which a sentence need not share.
ASKING_TERMS = frozenset(
    {"何", "誰", "いつ", "どう", "どの", "どこ", "こと", "事", "為る", "居る", "有る", "成る"}
)


def question_terms(question: str) -> set[str]:
    """The question's content words that say what it is about."""
    return set(default_analyzer().content_terms(question)) - ASKING_TERMS


_NUMBER = re.compile(r"\d+")


def numbers_held(question: str, text: str) -> float:
    """The share of the numbers a question names (第1回, 平成27年) that the text holds too, 1.0 when
    it names none: 「第1回会合はいつ」 is not answered by the row of the 第3回, however many other
    words the two share."""
    wanted = set(_NUMBER.findall(nfkc(question)))
    if not wanted:
        return 1.0
    return len(wanted & set(_NUMBER.findall(nfkc(text)))) / len(wanted)


def asked_for(question: str) -> set[str]:
    """The kinds of fact a question asks for (none for 「〜について教えて」)."""
    norm = nfkc(question)
    return {kind for kind, cues in QUESTION_CUES.items() if any(cue in norm for cue in cues)}


def sentence_scores(question: str, text: str, cosines: Mapping[str, float] | None = None) -> list[float]:
    """How well each of the text's sentences answers the question: the share of the question's
    content words it holds, 0.5 for each kind of fact asked for that it holds (a date for いつ),
    and DENSE_WEIGHT × its cosine with the question (the index's own sentence vectors), which
    finds the sentence when the question paraphrases it."""
    analyzer = default_analyzer()
    wanted = asked_for(question)
    terms = question_terms(question)
    cosines = cosines or {}

    def score(sentence: str) -> float:
        overlap = coverage(terms, set(analyzer.content_terms(sentence))) * numbers_held(question, sentence)
        holds = sum(1 for kind in wanted if SENTENCE_HOLDS[kind].search(nfkc(sentence)))
        return overlap + 0.5 * holds + DENSE_WEIGHT * cosines.get(sentence, 0.0)

    return [score(sentence) for sentence in sentences(text)]


def best_sentence(question: str, text: str, cosines: Mapping[str, float] | None = None) -> str:
    """The sentence (with its neighbour when it is short) that answers the question best."""
    parts = sentences(text)
    scores = sentence_scores(question, text, cosines)
    best = max(range(len(parts)), key=lambda i: (scores[i], -i))
    return _with_neighbour(parts, best)


def _with_neighbour(parts: Sequence[str], i: int) -> str:
    if len(parts[i]) >= SHORT_SENTENCE_CHARS:
        return parts[i]
    if i + 1 < len(parts):
        return parts[i] + parts[i + 1]
    return (parts[i - 1] + parts[i]) if i > 0 else parts[i]


def holds_asked_fact(question: str, text: str) -> bool:
    """Whether a text holds what the question asks for (a date, a figure, a body); True when the
    question asks for none of these."""
    wanted = asked_for(question)
    return not wanted or any(SENTENCE_HOLDS[kind].search(nfkc(text)) for kind in wanted)
