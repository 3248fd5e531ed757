"""LocalgovFAQ (Amagasaki) retrieval benchmark: BM25 vs dense vs hybrid, side by side.

Reads the collection from shared/benchmarks/localgovfaq (never copied into the project).
Relevant = grade >= 1. Tune weights with --split dev --tune or --learn; report on the test split.

    .venv/bin/python bench/localgovfaq.py [--split test] [--hits FILE] [--tune | --learn]

--hits FILE scores the JSON lines that `concierge retrieve` printed, instead of searching here.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from bot.retrieval.encoders import make_encoder
from bot.retrieval.faq_collection import faq_retriever
from bot.retrieval.index import zscore
from bot.settings import ROOT, Settings

DATA = ROOT.parent / "shared" / "benchmarks" / "localgovfaq"


def metrics(rankings: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    hit1 = hit10 = mrr = 0.0
    for qid, ranked in rankings.items():
        relevant = {d for d, g in qrels.get(qid, {}).items() if g >= 1}
        ranks = [r for r, d in enumerate(ranked[:10], 1) if d in relevant]
        hit1 += bool(ranks and ranks[0] == 1)
        hit10 += bool(ranks)
        mrr += 1.0 / ranks[0] if ranks else 0.0
    n = max(1, len(rankings))
    return {"hit@1": hit1 / n, "hit@10": hit10 / n, "mrr@10": mrr / n}


def load(data: Path, split: str) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    queries = json.loads((data / "queries.json").read_text(encoding="utf-8"))
    qrels = json.loads((data / "qrels.json").read_text(encoding="utf-8"))
    ids = json.loads((data / "split.json").read_text(encoding="utf-8"))[split]
    return {q: queries[q] for q in ids if q in qrels}, qrels


# The hand-tuned fusion before the field channels (grid search on dev, in-sample MRR@10 0.666):
# its top LEARN_POOL entries per query are the candidates the pairwise model learns to order.
POOL_WEIGHTS = {"usem3": 0.5, "e5": 0.75, "terms": 0.25, "readings": 0.0}
# Candidates per query and folds. On dev (3 shuffles of 5 folds, all channels) pools of 20 / 50 / 100
# gave MRR@10 0.676 / 0.671 / 0.674 and C of 0.01 / 1 gave 0.674 / 0.671: 50 and 1, the middle.
LEARN_POOL, LEARN_FOLDS, LEARN_C = 50, 5, 1.0


def _zscores(ch, names: list[str]) -> np.ndarray:
    """(documents, channels): each channel z-scored over the documents, as Retriever.fuse does."""
    return np.stack([zscore(np.asarray(ch.scores[n], dtype=np.float64)) for n in names], axis=1)


def fit_pairwise(feats: list[np.ndarray], labels: list[np.ndarray]) -> np.ndarray:
    """Linear weights w with w·(relevant − irrelevant) > 0 as often as possible (logistic loss over
    every relevant/irrelevant pair of a query's candidates): the fused score stays a weighted sum of
    z-scores, so Retriever.fuse applies it unchanged."""
    from sklearn.linear_model import LogisticRegression

    diffs = [
        (f[y][:, None, :] - f[~y][None, :, :]).reshape(-1, f.shape[1])
        for f, y in zip(feats, labels, strict=True)
        if y.any() and (~y).any()
    ]
    x = np.vstack([*diffs, *(-d for d in diffs)])
    y = np.concatenate([np.ones(sum(map(len, diffs))), np.zeros(sum(map(len, diffs)))])
    return LogisticRegression(C=LEARN_C, fit_intercept=False, max_iter=2000).fit(x, y).coef_[0]


def learn(retriever, per_query: dict, qrels: dict, doc_ids: list[str], names: list[str]) -> dict[str, float]:
    """Pairwise logistic regression over every channel's z-score: 5-fold figures, then weights from
    all of dev (what settings.faq_retrieval_weights holds)."""
    qids = list(per_query)
    feats, labels = [], []
    for qid in qids:
        ch = per_query[qid]
        pool = np.argsort(-retriever.fuse(ch, {n: 0.0 for n in names} | POOL_WEIGHTS))[:LEARN_POOL]
        relevant = {d for d, g in qrels.get(qid, {}).items() if g >= 1}
        z = _zscores(ch, names)
        feats.append(z[pool])
        labels.append(np.array([doc_ids[i] in relevant for i in pool]))
    order = np.random.default_rng(0).permutation(len(qids))
    rankings = {}
    for k in range(LEARN_FOLDS):
        held = set(order[k::LEARN_FOLDS].tolist())
        train = [i for i in range(len(qids)) if i not in held]
        w = fit_pairwise([feats[i] for i in train], [labels[i] for i in train])
        for i in held:
            fused = _zscores(per_query[qids[i]], names) @ w
            rankings[qids[i]] = [doc_ids[j] for j in np.argsort(-fused)[:10]]
    m = metrics(rankings, qrels)
    print(f"pairwise LR, {LEARN_FOLDS}-fold on dev: " + "  ".join(f"{k} {v:.3f}" for k, v in m.items()))
    w = fit_pairwise(feats, labels)
    weights = {n: round(float(v), 3) for n, v in zip(names, w, strict=True)}
    print(f"weights from all of dev: {json.dumps(weights)}")
    return weights


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--split", default="test", choices=["dev", "test"])
    parser.add_argument("--hits", type=Path, help="score `concierge retrieve` output instead")
    parser.add_argument("--tune", action="store_true", help="grid-search channel weights (dev only)")
    parser.add_argument(
        "--learn", action="store_true", help="fit fusion weights by pairwise logistic regression (dev only)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if not (args.data / "corpus.json").exists():
        print(f"LocalgovFAQ not found at {args.data}", file=sys.stderr)
        return 2
    queries, qrels = load(args.data, args.split)

    if args.hits:
        rows = [json.loads(line) for line in args.hits.read_text(encoding="utf-8").splitlines() if line]
        rankings = {r["id"]: r["hits"] for r in rows if r["id"] in queries}
        m = metrics(rankings, qrels)
        print(
            f"concierge retrieve on {args.split} ({len(rankings)} queries): "
            + "  ".join(f"{k} {v:.3f}" for k, v in m.items())
        )
        return 0

    settings = Settings()
    encoders = [make_encoder(spec, settings.encoder_threads) for spec in settings.encoders]
    started = time.perf_counter()
    retriever = faq_retriever(
        args.data / "corpus.json", encoders, settings.var_dir, settings.faq_retrieval_weights
    )
    build_s = time.perf_counter() - started
    doc_ids = [d.ref for d in retriever.docs]

    latencies, per_query = [], {}
    for qid, text in queries.items():
        t0 = time.perf_counter()
        retriever.search(text, k=10)
        latencies.append((time.perf_counter() - t0) * 1000)
        per_query[qid] = retriever.channels(text)

    def rank(weights: dict[str, float]) -> dict[str, list[str]]:
        out = {}
        for qid, ch in per_query.items():
            fused = retriever.fuse(ch, weights)
            out[qid] = [doc_ids[i] for i in np.argsort(-fused)[:10]]
        return out

    enc_names = list(retriever.encoders)
    channel_names = list(next(iter(per_query.values())).scores)
    zero_dense = {n: 0.0 for n in channel_names}  # every channel off, field channels too
    configs = {
        "bm25 (normalized forms)": {**zero_dense, "dense": 0.0, "terms": 1.0, "readings": 0.0},
        **{f"dense {n}": {**zero_dense, n: 1.0, "terms": 0.0, "readings": 0.0} for n in enc_names},
        "dense (all encoders)": {**zero_dense, **{n: 1.0 for n in enc_names}},
        "hybrid (old 4 channels)": {**zero_dense, **POOL_WEIGHTS},
        "hybrid (settings)": {},
    }
    figures: dict[str, dict[str, float]] = {}
    print(
        f"LocalgovFAQ {args.split}: {len(queries)} queries, {len(doc_ids)} FAQ entries; "
        f"index load/build {build_s:.1f}s"
    )
    print(f"{'channels':28} {'Hit@1':>6} {'Hit@10':>7} {'MRR@10':>7}")
    for name, weights in configs.items():
        m = figures[name] = metrics(rank(weights), qrels)
        print(f"{name:28} {m['hit@1']:6.3f} {m['hit@10']:7.3f} {m['mrr@10']:7.3f}")
    p50, p95 = statistics.median(latencies), float(np.percentile(latencies, 95))
    print(f"query latency (hybrid search, top 10): p50 {p50:.1f} ms  p95 {p95:.1f} ms")

    if args.tune:
        if args.split != "dev":
            print("tuning is only allowed on dev", file=sys.stderr)
            return 2
        grid = [0.0, 0.25, 0.5, 0.75, 1.0, 1.5]
        best = (0.0, {})
        for combo in itertools.product(grid, repeat=len(enc_names) + 2):
            if not any(combo):
                continue
            weights = {**zero_dense, **dict(zip([*enc_names, "terms", "readings"], combo, strict=True))}
            score = metrics(rank(weights), qrels)["mrr@10"]
            if score > best[0]:
                best = (score, weights)
        print(f"best on dev: MRR@10 {best[0]:.3f} with {json.dumps(best[1])}")
    if args.learn:
        if args.split != "dev":
            print("learning is only allowed on dev", file=sys.stderr)
            return 2
        learn(retriever, per_query, qrels, doc_ids, channel_names)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {"split": args.split, "figures": figures, "build_s": build_s, "p50_ms": p50, "p95_ms": p95},
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
