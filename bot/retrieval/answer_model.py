"""A learned answer model for the Kawasaki knowledge: how likely each candidate is what was asked.

The fused ranking (index.py) is good at putting the right entry among the first ten and poor at
saying how sure it is: a resident's one situation sentence can sit close to one wording of an
unrelated entry (「横浜から川崎に引っ越してきました」 beside 「横浜から犬と一緒に引っ越してきた」).
This model re-scores the first candidates from features of the whole candidate list (gaps to
the best, each channel, how much of the question an entry covers, whether an entry's name or
alias is in the question) with a logistic regression, so the score is a probability: the bot
answers above a threshold and otherwise says it is not sure.

It is trained by `concierge knowledge calibrate` from the knowledge's own wordings, never from
the team's dev questions (bot/retrieval/answer_training.py): each wording is asked of an index
built without it, and whole entries are left out so that the model also sees questions whose
answer is not in the knowledge. The parameters are a small JSON file (no pickle) in the repo.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.japanese import nfkc

MODEL_PATH = Path(__file__).with_name("answer_model.json")

# Candidates the model re-scores: the right entry is among the fused first ten for 0.98 of the
# team's tune questions with the catalogue loaded (MRR@10 0.905 there).
CANDIDATES = 10


def feature_names(encoders: Sequence[str]) -> list[str]:
    dense = [f"{name}_{what}" for name in encoders for what in ("cos", "cos_gap")]
    return [
        *("fused", "fused_gap_best", "fused_gap_next", "rank"),
        *dense,
        *("terms_z", "readings_z", "term_cov", "reading_cov", "n_terms", "n_grams"),
        *("uncovered_idf", "unknown_share"),
        *("name_in_query", "name_share"),
        *("latin", "kana_only"),
    ]


def names_in(query: str, names: Sequence[str]) -> list[str]:
    """The entry names and aliases (two characters or more) a question says, compared on NFKC."""
    text = nfkc(query).lower()
    return [n for n in names if len(n) >= 2 and nfkc(n).lower() in text]


@dataclass(frozen=True)
class CandidateContext:
    """What the features of one query's candidates are computed from (one search's channels)."""

    query: str
    fused: np.ndarray  # per document
    scores: dict[str, np.ndarray]  # channel → per document (raw)
    zscores: dict[str, np.ndarray]  # lexical channel → per document (z-scored)
    term_cov: list[float]  # per candidate
    reading_cov: list[float]  # per candidate
    n_terms: int
    # The rarest word of the question the candidate lacks (log inverse document frequency), and
    # the share of the question's words no entry has at all: 「ドコモの携帯を解約したい」 shares
    # 解約 with the NHK entry, but ドコモ and 携帯 are in no entry — a topic the knowledge lacks.
    uncovered_idf: list[float]  # per candidate
    unknown_share: float
    n_grams: int
    latin: bool
    kana_only: bool


def candidate_features(
    ctx: CandidateContext,
    candidates: Sequence[int],
    names: Sequence[Sequence[str]],
    encoders: Sequence[str],
) -> np.ndarray:
    """One row per candidate (in fused order), columns as in `feature_names(encoders)`."""
    query = nfkc(ctx.query).lower()  # for the share of the question a matched name makes
    fused = [float(ctx.fused[i]) for i in candidates]
    best_cos = {n: max(float(ctx.scores[n][i]) for i in candidates) for n in encoders}
    rows = []
    for pos, i in enumerate(candidates):
        following = fused[pos + 1] if pos + 1 < len(fused) else fused[pos] - 1.0
        dense = []
        for name in encoders:
            cos = float(ctx.scores[name][i])
            dense += [cos, cos - best_cos[name]]
        matched = names_in(ctx.query, names[pos])
        share = max((len(nfkc(n)) for n in matched), default=0) / max(1, len(query))
        rows.append(
            [
                fused[pos],
                fused[pos] - fused[0],
                fused[pos] - following,
                math.log1p(pos),
                *dense,
                float(ctx.zscores["terms"][i]),
                float(ctx.zscores["readings"][i]),
                ctx.term_cov[pos],
                ctx.reading_cov[pos],
                math.log1p(ctx.n_terms),
                math.log1p(ctx.n_grams),
                ctx.uncovered_idf[pos],
                ctx.unknown_share,
                float(bool(matched)),
                share,
                float(ctx.latin),
                float(ctx.kana_only),
            ]
        )
    return np.asarray(rows, dtype=np.float64)


@dataclass(frozen=True)
class AnswerModel:
    """Standardized logistic regression over `features`; `figures` says what it was trained on.

    `scope_coef` is a second logistic regression, over the question's own embeddings (the
    encoders' vectors side by side): is this a question for a public office at all? Weather,
    shops and train times share words with entries but not their kind of question."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    figures: dict
    scope_coef: np.ndarray | None = None
    scope_intercept: float = 0.0

    def probability(self, rows: np.ndarray) -> np.ndarray:
        z = (rows - self.mean) / self.scale @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def in_scope(self, vector: np.ndarray) -> float | None:
        """Probability that a question (its encoders' vectors, concatenated) is a public office's."""
        if self.scope_coef is None or vector.shape[-1] != len(self.scope_coef):
            return None
        return float(1.0 / (1.0 + np.exp(-(vector @ self.scope_coef + self.scope_intercept))))

    def to_json(self) -> dict:
        return {
            "features": list(self.features),
            "mean": self.mean.round(6).tolist(),
            "scale": self.scale.round(6).tolist(),
            "coef": self.coef.round(6).tolist(),
            "intercept": round(self.intercept, 6),
            "scope_coef": None if self.scope_coef is None else self.scope_coef.round(6).tolist(),
            "scope_intercept": round(self.scope_intercept, 6),
            "figures": self.figures,
        }

    @classmethod
    def from_json(cls, raw: dict) -> AnswerModel:
        return cls(
            features=tuple(raw["features"]),
            mean=np.asarray(raw["mean"]),
            scale=np.asarray(raw["scale"]),
            coef=np.asarray(raw["coef"]),
            intercept=float(raw["intercept"]),
            figures=raw.get("figures", {}),
            scope_coef=np.asarray(raw["scope_coef"]) if raw.get("scope_coef") else None,
            scope_intercept=float(raw.get("scope_intercept", 0.0)),
        )

    def save(self, path: Path = MODEL_PATH) -> None:
        path.write_text(json.dumps(self.to_json(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def load_answer_model(path: Path = MODEL_PATH, encoders: Sequence[str] = ()) -> AnswerModel | None:
    """The trained model, or None when there is none or it was trained for other encoders."""
    if not path.exists():
        return None
    model = AnswerModel.from_json(json.loads(path.read_text(encoding="utf-8")))
    if list(model.features) != feature_names(encoders):
        return None
    return model
