"""Train the answer model (answer_model.py) from the knowledge's own wordings (maintenance tool).

No dev question is used: the team's dev set stays a measurement. For each of FOLDS folds an
index is built without some of the entries' question wordings (they become questions whose
answer is still in the knowledge) and without some whole entries (their wordings become
questions whose answer is not there: what the bot must not answer confidently). Every wording was
embedded by the knowledge build already, so questions take their vectors from its cache and a
fold costs BM25 and FAISS.
"""

from __future__ import annotations

import random
import tempfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from bot.japanese import nfkc
from bot.knowledge import load_knowledge
from bot.retrieval.answer_model import CANDIDATES, MODEL_PATH, AnswerModel, feature_names
from bot.retrieval.documents import Document, documents_from
from bot.retrieval.encoders import Encoder
from bot.retrieval.index import EmbeddingCache, Retriever, build_index
from bot.settings import Settings

FOLDS = 5
# Share of the askable entries left out whole in each fold (each entry in at most one fold).
LEFT_OUT = 0.12
# Wordings asked per entry left out whole (its other wordings say nothing new).
ASKED_PER_LEFT_OUT = 3
# Policy chunks are asked by their headings (their only question-like view).
ASKABLE = ("service", "referral", "faq", "policy")
# Regularization of the scope classifier: 5-fold on its examples, C = 0.3 / 1 / 3 rejected 14 / 10 /
# 8 % of the questions inside and accepted 9 / 11 / 13 % of those outside at p < 0.5.
SCOPE_C = 1.0


# Questions no entry answers (weather, shops, private contracts …), written apart from the dev set:
# each asked in one fold, so the model learns that sharing one word with an entry is not enough.
OUT_OF_SCOPE = "calibration/out-of-scope.txt"


@dataclass
class Rows:
    features: list[np.ndarray]
    labels: list[np.ndarray]
    queries: list[tuple[int, str, str | None]]  # (fold, question, expected document or None)


class _CachedEncoder:
    """An encoder that takes vectors from the build cache: every wording was embedded already."""

    def __init__(self, encoder: Encoder, cache: EmbeddingCache) -> None:
        self.name, self.spec = encoder.name, encoder.spec
        self.floor, self.ceiling = encoder.floor, encoder.ceiling
        self._encoder, self._cache = encoder, cache

    def encode(self, texts: list[str], role: str) -> np.ndarray:
        return self._cache.embed(self._encoder, texts, role)


def out_of_scope_questions(folder: Path) -> list[str]:
    path = folder / OUT_OF_SCOPE
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _held_views(doc: Document) -> list[int]:
    """The views that are a resident's wording (not the entry's name line or its English names)."""
    first = 1 if doc.names else 0
    english = {", ".join(doc.names[i:]) for i in range(len(doc.names))}
    return [i for i, v in enumerate(doc.views) if i >= first and v.role == "query" and v.text not in english]


def fold_of(text: str) -> int:
    return zlib.crc32(text.encode()) % FOLDS


def collect(
    settings: Settings, docs: list[Document], negatives: list[str], encoders: list[Encoder], seed: int = 13
) -> Rows:
    """Feature rows and labels of every held-out wording, fold by fold (`encoders` should take
    their vectors from the build cache: see calibrate)."""
    askable = [d for d in docs if d.kind in ASKABLE]
    random.Random(seed).shuffle(askable)
    per_fold = round(len(askable) * LEFT_OUT)
    rows = Rows([], [], [])
    for fold in range(FOLDS):
        left_out = {d.id for d in askable[fold * per_fold : (fold + 1) * per_fold]}
        kept: list[Document] = []
        asked: list[tuple[str, str | None]] = [(q, None) for q in negatives if fold_of(q) == fold]
        for doc in docs:
            held = _held_views(doc) if doc.kind in ASKABLE else []
            if doc.id in left_out:
                asked += [(doc.views[i].text, None) for i in held[:ASKED_PER_LEFT_OUT]]
                continue
            out = [i for i in held if fold_of(doc.views[i].text) == fold]
            if len(out) == len(doc.views):
                out = out[1:]
            asked += [(doc.views[i].text, doc.id) for i in out]
            kept.append(replace(doc, views=tuple(v for i, v in enumerate(doc.views) if i not in out)))
        with tempfile.TemporaryDirectory() as tmp:
            build_index(kept, encoders, Path(tmp), settings.cache_dir)
            retriever = Retriever(Path(tmp), encoders, settings.retrieval_weights)
            for question, expected in asked:
                found = retriever.candidates(question, CANDIDATES)
                rows.features.append(retriever.features(found))
                rows.labels.append(np.array([float(h.doc.id == expected) for h in found.hits]))
                rows.queries.append((fold, question, expected))
    return rows


def fit(rows: Rows, encoders: list[str], c: float = 1.0) -> AnswerModel:
    """Logistic regression over all candidates of all questions (standardized features)."""
    from sklearn.linear_model import LogisticRegression

    x = np.vstack(rows.features)
    y = np.concatenate(rows.labels)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0  # a feature that never varied in training (kana-only) is left at 0
    model = LogisticRegression(C=c, max_iter=2000).fit((x - mean) / scale, y)
    return AnswerModel(
        features=tuple(feature_names(encoders)),
        mean=mean,
        scale=scale,
        coef=model.coef_[0],
        intercept=float(model.intercept_[0]),
        figures={},
    )


def outcomes(model: AnswerModel, rows: Rows, threshold: float, index: list[int] | None = None) -> dict:
    """Right / confidently wrong / abstained over the questions (all, or those in `index`)."""
    tally = {"right": 0, "wrong": 0, "abstained": 0, "no_answer_asked": 0, "no_answer_answered": 0}
    for q in index if index is not None else range(len(rows.queries)):
        p = model.probability(rows.features[q])
        best = int(np.argmax(p))
        answerable = rows.queries[q][2] is not None
        tally["no_answer_asked"] += not answerable
        if p[best] < threshold:
            tally["abstained"] += 1
        elif rows.labels[q][best]:
            tally["right"] += 1
        else:
            tally["wrong"] += 1
            tally["no_answer_answered"] += not answerable
    n = max(1, len(index) if index is not None else len(rows.queries))
    return {k: round(v / n, 3) for k, v in tally.items()}


def cross_validated(rows: Rows, encoders: list[str], thresholds: list[float]) -> dict[float, dict]:
    """Figures of models trained on four folds and measured on the fifth, per threshold."""
    totals: dict[float, list[dict]] = {t: [] for t in thresholds}
    for fold in range(FOLDS):
        train = [i for i, q in enumerate(rows.queries) if q[0] != fold]
        test = [i for i, q in enumerate(rows.queries) if q[0] == fold]
        part = Rows([rows.features[i] for i in train], [rows.labels[i] for i in train], [])
        model = fit(part, encoders)
        for t in thresholds:
            totals[t].append(outcomes(model, rows, t, test))
    return {t: {k: round(float(np.mean([r[k] for r in rs])), 3) for k in rs[0]} for t, rs in totals.items()}


def scope_examples(
    docs: list[Document], negatives: list[str], encoders: list[Encoder]
) -> tuple[np.ndarray, np.ndarray]:
    """Question vectors (the encoders' side by side) and labels for the scope classifier: the
    entries' wordings, names and aliases (both languages) are questions for a public office; the
    out-of-scope list is not."""
    inside = [d.views[i].text for d in docs if d.kind in ASKABLE for i in _held_views(d)]
    inside += sorted({name for d in docs for name in d.names})
    texts = [nfkc(t) for t in inside + negatives]
    vectors = np.hstack([e.encode(texts, "query") for e in encoders])
    return vectors, np.array([1.0] * len(inside) + [0.0] * len(negatives))


def fit_scope(vectors: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, float, dict]:
    """Logistic regression (classes balanced: 200 questions outside, thousands inside), with its
    5-fold cross-validated error rates at the threshold the bot uses."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    def model() -> LogisticRegression:
        return LogisticRegression(C=SCOPE_C, max_iter=3000, class_weight="balanced")

    predicted = cross_val_predict(model(), vectors, labels, cv=FOLDS, method="predict_proba")[:, 1]
    figures = {
        f"p < {t}": {
            "inside_rejected": round(float(np.mean(predicted[labels == 1] < t)), 3),
            "outside_accepted": round(float(np.mean(predicted[labels == 0] >= t)), 3),
        }
        for t in (0.2, 0.3, 0.5)
    }
    fitted = model().fit(vectors, labels)
    return fitted.coef_[0], float(fitted.intercept_[0]), figures


def calibrate(settings: Settings, encoders: list[Encoder], model_path: Path = MODEL_PATH) -> str:
    """Collect, cross-validate, fit on everything and write the model; returns the report."""
    docs = documents_from(load_knowledge(settings.knowledge_dir))
    negatives = out_of_scope_questions(settings.knowledge_dir)
    caches = [EmbeddingCache(settings.cache_dir / f"{e.name}.npz") for e in encoders]
    cached: list[Encoder] = [_CachedEncoder(e, c) for e, c in zip(encoders, caches, strict=True)]
    scope_coef, scope_intercept, scope_figures = fit_scope(*scope_examples(docs, negatives, cached))
    rows = collect(settings, docs, negatives, cached)
    for cache in caches:  # keep what was embedded here (the normalized scope examples)
        cache.save()
    names = [e.name for e in encoders]
    thresholds = [0.2, 0.3, 0.4, 0.5, 0.6]
    figures = cross_validated(rows, names, thresholds)
    answerable = sum(q[2] is not None for q in rows.queries)
    model = fit(rows, names)
    model = replace(
        model,
        scope_coef=scope_coef,
        scope_intercept=scope_intercept,
        figures={
            "questions": len(rows.queries),
            "answerable": answerable,
            "cross_validated": {str(t): f for t, f in figures.items()},
            "scope_cross_validated": scope_figures,
        },
    )
    model.save(model_path)
    lines = [f"{len(rows.queries)} questions ({answerable} answerable), {FOLDS}-fold cross-validated:"]
    lines += [f"  p ≥ {t}: {f}" for t, f in figures.items()]
    lines.append("scope classifier, 5-fold cross-validated:")
    lines += [f"  {t}: {f}" for t, f in scope_figures.items()]
    lines.append(f"written to {model_path}")
    return "\n".join(lines)
