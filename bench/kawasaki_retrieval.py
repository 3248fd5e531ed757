"""Retrieval alone on the Kawasaki knowledge: index build time and query latency p50/p95.

Queries are the team's dev questions (tests/dev/kawasaki_dev.jsonl), each searched once after a
warm-up; the encoders run single-threaded as in the action server.

    .venv/bin/python bench/kawasaki_retrieval.py
"""

from __future__ import annotations

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
        questions = [json.loads(line)["q"] for line in lines if line.strip()]
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
