"""Retrieval alone on the Kawasaki knowledge: index build time and query latency p50/p95.

Queries are the team's dev questions (tests/dev/kawasaki_dev.jsonl), each searched once after a
warm-up; the encoders run single-threaded as in the action server.

    .venv/bin/python bench/kawasaki_retrieval.py [--tune]

--tune grid-searches the channel weights on the same questions (top-1 entry, then MRR).
"""

from __future__ import annotations

import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bot.knowledge import load_knowledge
from bot.retrieval.documents import documents_from
from bot.retrieval.encoders import make_encoder
from bot.retrieval.index import Retriever, build_index
from bot.settings import ROOT, get_settings


def tune(retriever: Retriever, rows: list[dict], places_of) -> None:
    ids = [d.id for d in retriever.docs]
    channels = [retriever.channels(r["q"], places_of(r["q"])) for r in rows]

    def score(weights: dict[str, float]) -> tuple[float, float]:
        top1 = mrr = 0.0
        for row, ch in zip(rows, channels, strict=True):
            ranked = [ids[i] for i in np.argsort(-retriever.fuse(ch, weights))[:10]]
            top1 += ranked[0] == row["entry"]
            mrr += 1 / (ranked.index(row["entry"]) + 1) if row["entry"] in ranked else 0.0
        return top1 / len(rows), mrr / len(rows)

    grid = itertools.product([0.4, 0.8, 1.2], [0.2, 0.4, 0.8], [1, 2, 3], [0.5, 1.0], [0.5, 1.0])
    results = []
    for terms, readings, kana, e5, usem3 in grid:
        weights = {"terms": terms, "readings": readings, "kana_readings": kana, "e5": e5, "usem3": usem3}
        results.append((score(weights), weights))
    results.sort(key=lambda r: r[0], reverse=True)
    print(f"current weights: top-1 {score({})[0]:.3f}  MRR {score({})[1]:.3f}")
    for (top1, mrr), weights in results[:3]:
        print(f"top-1 {top1:.3f}  MRR {mrr:.3f}  {json.dumps(weights)}")


def main() -> int:
    settings = get_settings()
    encoders = [make_encoder(spec, settings.encoder_threads) for spec in settings.encoders]
    docs = documents_from(load_knowledge(settings.knowledge_dir))
    with tempfile.TemporaryDirectory() as tmp:
        cold_cache = Path(tmp) / "cache"
        started = time.perf_counter()
        build_index(docs, encoders, Path(tmp) / "index", cache_dir=cold_cache)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        build_index(docs, encoders, Path(tmp) / "index", cache_dir=cold_cache)
        warm = time.perf_counter() - started
        retriever = Retriever(Path(tmp) / "index", encoders, settings.retrieval_weights)
        lines = (ROOT / "tests" / "dev" / "kawasaki_dev.jsonl").read_text(encoding="utf-8").splitlines()
        rows = [json.loads(line) for line in lines if line.strip()]
        questions = [row["q"] for row in rows]
        if "--tune" in sys.argv:
            from bot.places import Gazetteer

            gazetteer = Gazetteer(load_knowledge(settings.knowledge_dir))
            tune(retriever, rows, gazetteer.names_in)
            return 0
        for q in questions[:10]:
            retriever.search(q, k=5)
        latencies = []
        for q in questions:
            t0 = time.perf_counter()
            retriever.search(q, k=5)
            latencies.append((time.perf_counter() - t0) * 1000)
    print(f"Kawasaki knowledge: {len(docs)} documents, encoders {', '.join(e.name for e in encoders)}")
    print(f"index build: {cold:.1f}s from scratch, {warm:.2f}s with nothing changed")
    print(
        f"retrieval latency over {len(latencies)} questions: p50 {statistics.median(latencies):.1f} ms  "
        f"p95 {float(np.percentile(latencies, 95)):.1f} ms  max {max(latencies):.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
