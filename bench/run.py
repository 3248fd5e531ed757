"""`make bench`: every speed figure in one run, printed as one table and written flat to
var/bench/latest.json.

    .venv/bin/python -m bench.run [--only masking,retrieval,stack,scale,analytics,notices] [--sustained 60]

Sections: masking on text built to backtrack (patterns and the whole mask at 500–2,000 characters),
retrieval alone (BM25, each dense encoder, hybrid; quality and latency on the team's dev
questions), the running stack under wrk (cold start, NLU parse, REST reply latency at concurrency
1/8/32, sustained throughput, memory per process) and index cost at 1k/10k/100k synthetic entries
with FAISS flat vs HNSW vs IVF, the staff's figures at 10k/100k answer events, and one notice sent
to 100,000 LINE subscribers through a local stand-in of the LINE API. Figures
describe this machine on this run; nothing is asserted.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path

from bench.figures import print_rows
from bot.settings import Settings

SECTIONS = ("masking", "retrieval", "stack", "scale", "analytics", "notices")


def masking_section(flat: dict) -> None:
    from bench.masking import LENGTHS, run

    figures = run()
    print("\n== Masking text built to backtrack (ms; patterns alone, then with Sudachi and GiNZA)")
    print_rows(
        ["repeated", *(f"patterns {n}" for n in LENGTHS), *(f"mask {n}" for n in LENGTHS)],
        [[repr(unit), *(f[f"patterns_ms_{n}"] for n in LENGTHS), *(f[f"mask_ms_{n}"] for n in LENGTHS)]
         for unit, f in figures.items()],
    )  # fmt: skip
    top = max(LENGTHS)
    flat["masking_patterns_max_ms"] = max(f[f"patterns_ms_{top}"] for f in figures.values())
    flat["masking_mask_max_ms"] = max(f[f"mask_ms_{top}"] for f in figures.values())


def retrieval_section(flat: dict) -> None:
    from bench.kawasaki_retrieval import compare

    figures = compare()
    print("\n== Retrieval alone: Kawasaki knowledge, team dev questions (top-1/MRR on those naming an entry)")
    print_rows(
        ["method", "top-1", "MRR@10", "p50 ms", "p95 ms"],
        [[name, f["top1"], f["mrr10"], f["p50_ms"], f["p95_ms"]] for name, f in figures.items()],
    )
    for name, f in figures.items():
        for key, value in f.items():
            flat[f"retrieval_{name}_{key}"] = value
    flat["retrieval_p50_ms"] = figures["hybrid"]["p50_ms"]
    flat["retrieval_p95_ms"] = figures["hybrid"]["p95_ms"]


def stack_section(flat: dict, out: Path, sustained: int, step: int) -> None:
    from bench.stack_load import run

    f = run(out, throughput_s=sustained, step_s=step)
    flat.update(f)
    print("\n== One node as deployed: nginx, 2 Rasa servers, 1 action server, PostgreSQL, Redis; wrk")
    print(f"cold start to first answer: {f['cold_start_s']:.1f} s")
    print(
        f"NLU parse (/model/parse, one at a time): p50 {f['nlu_p50_ms']:.1f} ms  p95 {f['nlu_p95_ms']:.1f} ms"
    )
    print(
        f"Rasa → actions, one turn's call ({f['actions_call_kb']:.0f} KB): p50"
        f" {f['actions_direct_p50_ms']:.1f} ms straight, {f['actions_nginx_p50_ms']:.1f} ms through nginx"
    )
    print_rows(
        ["REST reply", "p50 ms", "p95 ms", "p99 ms", "msgs/s", "errors"],
        [
            [f"concurrency {c} ({step} s)", f[f"rest_p50_ms_c{c}"], f[f"rest_p95_ms_c{c}"],
             f[f"rest_p99_ms_c{c}"], f[f"rest_msgs_s_c{c}"], f[f"rest_errors_c{c}"]]
            for c in (1, 8, 32)
        ]
        + [[f"widget API c8 ({step} s)", f["widget_p50_ms_c8"], f["widget_p95_ms_c8"], f["widget_p99_ms_c8"],
            f["widget_msgs_s_c8"], f["widget_errors_c8"]]]
        + [[f"sustained c8 ({sustained} s)", "", f["throughput_p95_ms"], "", f["throughput_msgs_s"],
            f["throughput_errors"]]],
    )  # fmt: skip
    print("RSS: " + "  ".join(f"{k[4:-3]} {v:.0f} MB" for k, v in f.items() if k.startswith("rss_")))
    print(f"errors in the servers' logs (clients hanging up aside): {f['server_errors']}")


def scale_section(flat: dict, out: Path, sizes: tuple[int, ...]) -> None:
    from bench.scale import run

    f = run(out / "scale", sizes)
    builds = f["builds"]
    print("\n== Index cost by knowledge size (synthetic FAQ entries; BM25 + usem3 + FAISS flat)")
    print_rows(
        ["entries", "texts", "build s", "peak RSS MB", "index MB", "query p50 ms", "query p95 ms"],
        [[n, b["texts"], b["build_s"], b["peak_rss_mb"], b["index_mb"], b["query_p50_ms"], b["query_p95_ms"]]
         for n, b in builds.items()],
    )  # fmt: skip
    sizes_sorted = sorted(builds)
    for small, big in itertools.pairwise(sizes_sorted):
        t = builds[big]["build_s"] / max(builds[small]["build_s"], 0.01)
        m = builds[big]["peak_rss_mb"] / max(builds[small]["peak_rss_mb"], 1)
        print(f"{small} → {big} entries: build time ×{t:.1f}, peak memory ×{m:.1f}")
        flat[f"scale_build_time_growth_{small}_{big}"] = round(t, 2)
        flat[f"scale_peak_rss_growth_{small}_{big}"] = round(m, 2)
    for n, b in builds.items():
        for key, value in b.items():
            flat[f"scale_{n}_{key}"] = value
    largest = max(builds)
    print(f"\nFAISS index types on the {largest} entries' usem3 vectors (200 queries, top 10)")
    print_rows(
        ["index", "build s", "query p50 ms", "recall@10 vs flat"],
        [[name, r["build_s"], r["query_p50_ms"], r["recall_at_10"]] for name, r in f["faiss"].items()],
    )
    for name, r in f["faiss"].items():
        for key, value in r.items():
            flat[f"faiss_{name.rstrip('0123456789') if name.startswith('ivf') else name}_{key}"] = value
    flat["e5_texts_s"] = round(f["e5_texts_s"], 1)
    print(f"e5 embeds {f['e5_texts_s']:.0f} answer texts/s here (usem3-only builds above; e5 adds that cost)")


def analytics_section(flat: dict) -> None:
    from bench.analytics import run

    timings = run()
    print("\n== Staff figures (bot/analytics_figures.py) on SQLite, 30 days of synthetic answer events")
    print_rows(
        ["events", "all wards ms", "one ward ms"],
        [[n, t["all_ms"], t["one_ward_ms"]] for n, t in timings.items()],
    )
    for n, t in timings.items():
        for key, value in t.items():
            flat[f"figures_{n}_{key}"] = value


def notices_section(flat: dict) -> None:
    from bench.notices import SUBSCRIBERS, run

    figures = run()
    print(f"\n== One notice to {SUBSCRIBERS:,} LINE subscribers (multicasts of 500, local LINE stand-in)")
    columns = ["plan_s", "finish_s", "requests", "delivered", "duplicates", "wrong_recipients"]
    print_rows(
        ["database", "plan s", "finish s", "requests", "delivered", "duplicates", "wrong recipients"],
        [[db, *(f[c] for c in columns)] for db, f in figures.items()],
    )
    for db, f in figures.items():
        for key, value in f.items():
            flat[f"notices_{db}_{key}"] = value


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--sustained", type=int, default=60, help="seconds of sustained load")
    parser.add_argument("--step", type=int, default=15, help="seconds per concurrency step")
    parser.add_argument(
        "--sizes", default="1000,10000", help="synthetic knowledge sizes (bench-scale: +100000)"
    )
    args = parser.parse_args()
    out = Settings().var_dir / "bench"
    out.mkdir(parents=True, exist_ok=True)
    latest = out / "latest.json"
    # figures of sections not run this time stay from their last run (each section stamps its time)
    flat: dict[str, object] = json.loads(latest.read_text()) if latest.exists() else {}
    flat.update(cpus=os.cpu_count(), python=platform.python_version())
    started = time.monotonic()
    print(f"make bench on {os.cpu_count()} cores, Python {platform.python_version()}")
    only = set(args.only.split(","))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    if "masking" in only:
        masking_section(flat)
        flat["masking_measured_at"] = stamp
    if "retrieval" in only:
        retrieval_section(flat)
        flat["retrieval_measured_at"] = stamp
    if "stack" in only:
        stack_section(flat, out, args.sustained, args.step)
        flat["stack_measured_at"] = stamp
    if "scale" in only:
        scale_section(flat, out, tuple(int(n) for n in args.sizes.split(",")))
        flat["scale_measured_at"] = stamp
    if "analytics" in only:
        analytics_section(flat)
        flat["analytics_measured_at"] = stamp
    if "notices" in only:
        notices_section(flat)
        flat["notices_measured_at"] = stamp
    flat["bench_seconds"] = round(time.monotonic() - started, 1)
    flat = {k: round(v, 3) if isinstance(v, float) else v for k, v in flat.items()}
    latest.write_text(json.dumps(flat, indent=1, ensure_ascii=False))
    print(f"\n{len(flat)} figures ({flat['bench_seconds']} s this run) → {latest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
