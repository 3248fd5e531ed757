"""Retrieval alone on the Kawasaki knowledge: BM25 vs dense (each encoder) vs hybrid, side by side.

For each method: top-1 entry accuracy and MRR@10 on the team's dev questions
(tests/dev/kawasaki_dev.jsonl, those that name an entry) and query latency p50/p95 over all of them
(one search each after a warm-up; encoders single-threaded as in the action server). Uses the built
index under var/index (`make index`).

    .venv/bin/python -m bench.kawasaki_retrieval [--tune]

--tune grid-searches the channel weights on the tune part of the questions only (top-1 entry, then
MRR) and prints the best weights' figures on the held-out part beside them.
"""

from __future__ import annotations

import itertools
import json
import sys
import time

import numpy as np

from bench.figures import percentile, print_rows
from bot.answering.places import Gazetteer
from bot.knowledge import load_knowledge
from bot.retrieval.answer_model import load_answer_model
from bot.retrieval.encoders import make_encoder
from bot.retrieval.index import Retriever
from bot.settings import ROOT, Settings

DEV = ROOT / "tests" / "dev" / "kawasaki_dev.jsonl"


def dev_rows() -> list[dict]:
    return [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines() if line.strip()]


def tune(retriever: Retriever, rows: list[dict], places_of) -> None:
    """Weights chosen on the tune part; the held-out part only reports them."""
    from bot.evaluation import HELD_OUT, part_of

    ids = [d.id for d in retriever.docs]
    rows = [r for r in rows if r.get("entry")]
    channels = [retriever.channels(r["q"], places_of(r["q"])) for r in rows]
    tune_part = [i for i, r in enumerate(rows) if part_of(r) != HELD_OUT]
    held_out = [i for i, r in enumerate(rows) if part_of(r) == HELD_OUT]

    def score(weights: dict[str, float], which: list[int] = tune_part) -> tuple[float, float]:
        top1 = mrr = 0.0
        for i in which:
            row, ch = rows[i], channels[i]
            ranked = [ids[j] for j in np.argsort(-retriever.fuse(ch, weights))[:10]]
            top1 += ranked[0] == row["entry"]
            mrr += 1 / (ranked.index(row["entry"]) + 1) if row["entry"] in ranked else 0.0
        return top1 / max(1, len(which)), mrr / max(1, len(which))

    grid = itertools.product([0.4, 0.8, 1.2], [0.2, 0.4, 0.8], [1, 2, 3], [0.5, 1.0], [0.5, 1.0])
    results = []
    for terms, readings, kana, e5, usem3 in grid:
        weights = {"terms": terms, "readings": readings, "kana_readings": kana, "e5": e5, "usem3": usem3}
        results.append((score(weights), weights))
    results.sort(key=lambda r: r[0], reverse=True)
    def line(weights: dict[str, float]) -> str:
        (t1, m), (h1, hm) = score(weights), score(weights, held_out)
        return f"tune top-1 {t1:.3f} MRR {m:.3f}; held-out top-1 {h1:.3f} MRR {hm:.3f}"

    print(f"current weights: {line({})}")
    for _, weights in results[:3]:
        print(f"{line(weights)}  {json.dumps(weights)}")


def measure(retriever: Retriever, rows: list[dict], places_of) -> dict[str, float]:
    for row in rows[:10]:  # warm-up
        retriever.search(row["q"], k=10, places=places_of(row["q"]))
    latencies, top1, rr, judged = [], 0, 0.0, 0
    for row in rows:
        t0 = time.perf_counter()
        hits = retriever.search(row["q"], k=10, places=places_of(row["q"]))
        latencies.append((time.perf_counter() - t0) * 1000)
        if row.get("entry"):
            judged += 1
            ranked = [h.doc.id for h in hits]
            top1 += bool(ranked) and ranked[0] == row["entry"]
            rr += 1 / (ranked.index(row["entry"]) + 1) if row["entry"] in ranked else 0.0
    return {
        "top1": round(top1 / judged, 3),
        "mrr10": round(rr / judged, 3),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p95_ms": round(percentile(latencies, 95), 2),
    }


def compare() -> dict[str, dict[str, float]]:
    """Each method's quality and latency on the same index and questions."""
    settings = Settings()
    encoders = [make_encoder(spec, settings.encoder_threads) for spec in settings.encoders]
    rows = dev_rows()
    places_of = Gazetteer(load_knowledge(settings.knowledge_dir)).names_in
    index, weights = settings.index_dir, settings.retrieval_weights
    # no query cache: every question is embedded, as the first time a resident asks it
    methods = {"bm25": Retriever(index, [], weights, query_cache=0)}
    for enc in encoders:
        methods[f"dense_{enc.name}"] = Retriever(index, [enc], lexical=False, query_cache=0)
    if len(encoders) > 1:
        methods["dense_all"] = Retriever(index, encoders, lexical=False, query_cache=0)
    methods["hybrid"] = Retriever(index, encoders, weights, query_cache=0)
    model = load_answer_model(encoders=[e.name for e in encoders])
    if model:  # what the bot runs: the first ten re-ranked by the answer model
        methods["hybrid+model"] = Retriever(index, encoders, weights, query_cache=0, answer_model=model)
    return {name: measure(r, rows, places_of) for name, r in methods.items()}


def main() -> int:
    if "--tune" in sys.argv:
        settings = Settings()
        encoders = [make_encoder(spec, settings.encoder_threads) for spec in settings.encoders]
        retriever = Retriever(settings.index_dir, encoders, settings.retrieval_weights)
        rows = [r for r in dev_rows() if r.get("entry")]
        tune(retriever, rows, Gazetteer(load_knowledge(settings.knowledge_dir)).names_in)
        return 0
    figures = compare()
    print_rows(
        ["method", "top-1", "MRR@10", "p50 ms", "p95 ms"],
        [[name, f["top1"], f["mrr10"], f["p50_ms"], f["p95_ms"]] for name, f in figures.items()],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
