"""One notice to 100,000 LINE subscribers (bot/notices/sending.py) through a local stand-in of the
LINE API, on SQLite and on PostgreSQL.

The stand-in is a threaded HTTP server that takes multicasts as LINE does: at most 500 user ids,
a retry key taken once (a repeat is answered 409 and delivers nothing). It counts the requests and
how often each user id was delivered, so duplicates are counted by the receiving side, not by the
sender. 100,000 subscribers of 中原区's 防災 notices, and 20,000 of other wards and topics who must
get nothing. Figures: seconds to plan (recipients, batches with retry keys and the delivery log in
one transaction), seconds to finish, requests, recipients delivered, duplicates (must be 0).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sqlalchemy import insert

from bot.notices import sending, store
from bot.settings import Settings
from bot.storage.db import get_engine
from bot.storage.models import NoticeSubscription

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
SUBSCRIBERS = 100_000
OTHERS = 20_000  # subscribed to other wards or topics


class StandIn:
    """LINE's multicast endpoint on a local port."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.keys: set[str] = set()
        self.delivered: Counter[str] = Counter()
        self.requests = 0
        self.refused = 0
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                key = self.headers.get("X-Line-Retry-Key", "")
                with stand_in.lock:
                    stand_in.requests += 1
                    if len(body.get("to", [])) > 500 or not body.get("messages"):
                        status = 400
                    elif key in stand_in.keys:
                        status = 409
                    else:
                        status = 200
                        stand_in.keys.add(key)
                        stand_in.delivered.update(body["to"])
                    stand_in.refused += status != 200
                answer = b"{}"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _subscribe(database_url: str) -> None:
    rows = [{"line_user_id": f"U{i:032x}", "ward": "中原区", "topic": "bousai"} for i in range(SUBSCRIBERS)]
    rows += [
        {"line_user_id": f"U{SUBSCRIBERS + i:032x}", "ward": "幸区" if i % 2 else "中原区",
         "topic": "bousai" if i % 2 else "event"}
        for i in range(OTHERS)
    ]  # fmt: skip
    with get_engine(database_url).begin() as conn:
        conn.execute(insert(NoticeSubscription), rows)


def _one(settings: Settings) -> dict[str, float | int]:
    stand_in = StandIn()
    try:
        settings = settings.replace(
            line_channel_secret="bench", line_channel_access_token="bench", line_api_base=stand_in.url
        )
        _subscribe(settings.database_url)
        notice = store.create(
            settings.database_url,
            title="避難所開設のお知らせ",
            body="中原区内の避難所を開設しました。",
            wards=["中原区"],
            topic="bousai",
            author="bench",
        )
        report = sending.send(settings, notice.id)
        if report is None:
            raise RuntimeError("the notice was not sent")
        return {
            "plan_s": round(report.plan_s, 2),
            "finish_s": round(report.total_s, 2),
            "requests": stand_in.requests,
            "refused": stand_in.refused,
            "delivered": len(stand_in.delivered),
            "duplicates": sum(stand_in.delivered.values()) - len(stand_in.delivered),
            "wrong_recipients": sum(1 for u in stand_in.delivered if int(u[1:], 16) >= SUBSCRIBERS),
            "notice_delivered": report.delivered,
        }
    finally:
        stand_in.close()


def run() -> dict[str, dict[str, float | int]]:
    """Figures per database: SQLite in a temp folder, and a scratch PostgreSQL database when the
    server at 127.0.0.1:5432 answers."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        out["sqlite"] = _one(Settings(var_dir=Path(tmp)))
    import psycopg

    from bot.storage.scratch import scratch_database

    try:
        with scratch_database(PG_ADMIN, "concierge_bench_notices") as url:
            db = url.replace("postgresql://", "postgresql+psycopg://")
            with tempfile.TemporaryDirectory() as tmp:
                out["postgresql"] = _one(Settings(var_dir=Path(tmp), db_url=db))
    except psycopg.OperationalError as err:  # no PostgreSQL here
        print(f"notices bench: no PostgreSQL ({type(err).__name__}); SQLite only")
    return out


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        print(json.dumps(run(), indent=1))
