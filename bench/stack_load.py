"""The running concierge under load: cold start, NLU parse latency, REST reply latency at several
concurrencies, sustained throughput, and the memory of each process.

The load comes from wrk (Debian's package) on loopback with bench/wrk_rest.lua: residents with
conversations of a few turns, questions taken from the team's dev set. The node runs as deployed
(docs/deploy.md): nginx in front of two Rasa servers (one per core) and an action server, Rasa's
tracker store and the concierge database on PostgreSQL (a fresh database, dropped afterwards),
Rasa's lock store on Redis.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import requests

from bench.figures import percentile
from bench.kawasaki_retrieval import dev_rows
from bot.internal_auth import actions_token
from bot.settings import ROOT, Settings
from bot.storage.scratch import scratch_database
from bot.supervisor.cluster import Cluster

WRK_SCRIPT = ROOT / "bench" / "wrk_rest.lua"
RASA_PROCESSES, ACTION_PROCESSES = 2, 1  # one Rasa server per core; one action server is enough
SENDERS_PER_THREAD = 200  # a few turns per resident over a run, as in real use
REST_PATH, WIDGET_PATH = "/webhooks/rest/webhook", "/api/message"
REDIS_URL = "redis://127.0.0.1:6379/6"  # the machine's services (deploy/local-services.sh)
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def questions_file(out_dir: Path) -> Path:
    """The dev questions as JSON string literals, one per line (what the wrk script sends)."""
    path = out_dir / "questions.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(json.dumps(r["q"], ensure_ascii=False) + "\n" for r in dev_rows()), encoding="utf-8"
    )
    return path


@contextlib.contextmanager
def cold_started_node(settings: Settings, log_dir: Path) -> Iterator[tuple[Cluster, float]]:
    """Start the node; yield it and the seconds from the first process start to the first answer."""
    node = Cluster(settings, log_dir, rasa_count=RASA_PROCESSES, action_count=ACTION_PROCESSES)
    started = time.monotonic()
    try:
        node.start()
        while True:  # the first answer, as a resident would see it, through nginx
            node.check_alive()
            try:
                resp = requests.post(
                    f"{node.rasa_url}/webhooks/rest/webhook",
                    params={"token": node.rasa_token},
                    json={"sender": f"cold-{uuid.uuid4().hex[:6]}", "message": "住民票の写しがほしい"},
                    timeout=120,
                )
                if resp.ok and "区民課" in json.dumps(resp.json(), ensure_ascii=False):
                    break
            except requests.RequestException:
                pass
            if time.monotonic() - started > 300:
                raise TimeoutError(f"no answer after 300 s; logs in {log_dir}")
            time.sleep(0.2)
        cold = time.monotonic() - started
        node.wait_ready()
        yield node, cold
    finally:
        node.stop()


def nlu_latency(rasa_url: str, token: str, n: int = 200) -> dict[str, float]:
    """POST /model/parse one at a time: the Rasa NLU pipeline alone (tokenizer, featurizers, DIET)."""
    questions = [r["q"] for r in dev_rows()]
    session = requests.Session()
    session.params = {"token": token}
    latencies = []
    for i in range(n + 10):
        t0 = time.perf_counter()
        session.post(f"{rasa_url}/model/parse", json={"text": questions[i % len(questions)]}, timeout=30)
        if i >= 10:
            latencies.append((time.perf_counter() - t0) * 1000)
    return {"nlu_p50_ms": percentile(latencies, 50), "nlu_p95_ms": percentile(latencies, 95)}


def actions_hop(stack: Cluster, token: str, n: int = 40) -> dict[str, float]:
    """One turn's call from Rasa to its actions (the conversation, as Rasa sends it), straight to
    the action server and through nginx: what the hop itself costs."""
    session = requests.Session()
    session.params = {"token": token}
    question = dev_rows()[3]["q"]
    turn = {"sender": "bench-hop", "message": question}
    session.post(f"{stack.rasa_url}{REST_PATH}", json=turn, timeout=30)
    tracker = session.get(f"{stack.rasa_urls[0]}/conversations/bench-hop/tracker", timeout=30).json()
    # as Rasa sends it: the tracker without the domain (selective domain, bot/supervisor/processes.py)
    call = {"next_action": "action_answer", "sender_id": "bench-hop", "tracker": tracker}
    body = json.dumps(call).encode()  # Rasa's aiohttp client escapes non-ASCII too
    headers = {"Authorization": f"Bearer {actions_token(stack.settings)}", "Content-Type": "application/json"}
    figures = {"actions_call_kb": len(body) / 1024}
    for name, port in (("direct", stack.action_ports[0]), ("nginx", stack.actions_lb_port)):
        url, latencies = f"{stack.url(port)}/webhook", []
        for i in range(n + 5):
            t0 = time.perf_counter()
            requests.post(url, data=body, headers=headers, timeout=30).raise_for_status()
            if i >= 5:
                latencies.append((time.perf_counter() - t0) * 1000)
        figures[f"actions_{name}_p50_ms"] = percentile(latencies, 50)
    return figures


def wrk(
    url: str,
    connections: int,
    seconds: int,
    questions: Path,
    prefix: str,
    senders: int = SENDERS_PER_THREAD,
    path: str = REST_PATH,
    token: str = "",
) -> dict:
    """One wrk run against `path` (with the Rasa token for Rasa's REST channel); returns latency
    percentiles (ms), throughput and errors."""
    binary = shutil.which("wrk")
    if not binary:
        raise FileNotFoundError("wrk is not installed (Debian package wrk; `make bench` installs it)")
    threads = min(2, connections)
    cmd = [
        binary, "-c", str(connections), "-t", str(threads), "-d", f"{seconds}s", "--timeout", "30s",
        "-s", str(WRK_SCRIPT), url, "--", str(questions), prefix, str(senders), path, token,
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=seconds + 90).stdout
    raw = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
    errors = sum(v for k, v in raw.items() if k.startswith("errors_")) + raw["apologies"]
    return {
        "p50_ms": raw["p50_us"] / 1000,
        "p95_ms": raw["p95_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "msgs_s": raw["requests"] / (raw["duration_us"] / 1e6),
        "requests": raw["requests"],
        "errors": errors,
        "empty_replies": raw["empty_replies"],
    }


# A client that hangs up mid-reply (wrk closes its connections when a run ends) cancels the
# request; the action server logs that as an error, but nothing went wrong.
HUNG_UP = "sanic.exceptions.ServiceUnavailable: Cancelled"


def server_errors(log_dir: Path) -> int:
    """ERROR records the servers logged during the run, clients hanging up aside. A reply can look
    fine to wrk while an action failed behind it (a lost hand-off ticket), so the logs count too."""
    count = 0
    for log in [*log_dir.glob("rasa-*.log"), *log_dir.glob("actions-*.log"), log_dir / "web.log"]:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines() if log.exists() else []
        for i, line in enumerate(lines):
            if " ERROR " in line and not (i + 1 < len(lines) and lines[i + 1].startswith(HUNG_UP)):
                count += 1
    return count


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children."""
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs) / 2**20
    except psutil.NoSuchProcess:
        return float("nan")


def run(out_dir: Path, throughput_s: int = 60, step_s: int = 15) -> dict[str, float]:
    figures: dict[str, float] = {}
    questions = questions_file(out_dir)
    with scratch_database(PG_ADMIN, "concierge_bench") as db:
        concierge_db = db.replace("postgresql://", "postgresql+psycopg://")
        # the widget's per-resident budgets in Redis too, as deployed
        # nginx's per-address limit would count wrk's one address as one flooding resident
        settings = Settings(
            db_url=concierge_db, tracker_db_url=db, lock_store_url=REDIS_URL, rate_limit_storage=REDIS_URL,
            address_rate_per_s=100_000, address_burst=100_000,
        )  # fmt: skip
        logs = out_dir / "logs"
        shutil.rmtree(logs, ignore_errors=True)  # this run's logs only
        with cold_started_node(settings, logs) as (stack, cold):
            figures["cold_start_s"] = cold
            token = stack.rasa_token
            figures.update(nlu_latency(stack.rasa_urls[0], token))
            figures.update(actions_hop(stack, token))
            url = stack.rasa_url
            wrk(url, 8, 5, questions, "warmup", token=token)
            for c in (1, 8, 32):
                result = wrk(url, c, step_s, questions, f"c{c}-{uuid.uuid4().hex[:4]}", token=token)
                for key in ("p50_ms", "p95_ms", "p99_ms", "msgs_s", "errors"):
                    name = key.replace("_ms", "")
                    figures[f"rest_{name}_ms_c{c}" if key.endswith("_ms") else f"rest_{key}_c{c}"] = result[
                        key
                    ]
            # the product's own path: nginx → gunicorn (widget API, rate limits) → nginx → Rasa
            widget = wrk(
                stack.public_url, 8, step_s, questions, f"widget-{uuid.uuid4().hex[:4]}", path=WIDGET_PATH
            )
            for key in ("p50_ms", "p95_ms", "p99_ms", "msgs_s", "errors"):
                figures[f"widget_{key}_c8"] = widget[key]
            sustained = wrk(url, 8, throughput_s, questions, f"sustained-{uuid.uuid4().hex[:4]}", token=token)
            figures["throughput_msgs_s"] = sustained["msgs_s"]
            figures["throughput_errors"] = sustained["errors"]
            figures["throughput_p95_ms"] = sustained["p95_ms"]
            figures["throughput_seconds"] = throughput_s
            for name, proc in stack.procs.items():
                figures[f"rss_{name}_mb"] = rss_mb(proc.pid)
        figures["server_errors"] = server_errors(logs)
    return figures
