"""LINE test support: a local server standing in for the LINE API (able to refuse, to be slow),
events signed exactly as LINE signs them, and the task worker that handles them (shared by
test_line and test_fuzz)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

from bot.supervisor.processes import Processes, tasks_command, worker_env

SECRET = "test-channel-secret"


class FakeLineApi(BaseHTTPRequestHandler):
    """LINE's API on a local port. Every request is recorded in `calls` (path, body, status). What
    it answers can be changed while it runs (the worker calling it is another process):
    `reply_status` for replies, `push_failures` pushes answered `push_status` before one is taken,
    and `delay` seconds before any answer. `reset()` restores the defaults.

    Multicasts behave like LINE's: a retry key already taken is answered 409 (and delivers nothing);
    `multicast_failures` multicasts are answered `multicast_status` (with `retry_after` as
    Retry-After, when set) before one is taken; a taken multicast is answered `multicast_delay`
    seconds later (only the next `slow_multicasts` of them when that is set), so a client that gives
    up sooner never hears that LINE took it; and with `hold_at` = N, the Nth taken multicast is not
    answered until `release` is set (`held` is set when it is reached), so a test can kill the
    sender with a batch in flight."""

    calls: ClassVar[list[tuple[str, dict]]] = []
    statuses: ClassVar[list[int]] = []
    reply_status: ClassVar[int] = 200
    push_status: ClassVar[int] = 500
    push_failures: ClassVar[int] = 0
    delay: ClassVar[float] = 0.0
    taken_keys: ClassVar[set[str]] = set()
    multicast_status: ClassVar[int] = 500
    multicast_failures: ClassVar[int] = 0
    retry_after: ClassVar[int | None] = None
    multicast_delay: ClassVar[float] = 0.0
    slow_multicasts: ClassVar[int | None] = None
    hold_at: ClassVar[int | None] = None
    held: ClassVar[threading.Event] = threading.Event()
    release: ClassVar[threading.Event] = threading.Event()
    lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def reset(cls) -> None:
        FakeLineApi.calls, FakeLineApi.statuses = [], []
        FakeLineApi.reply_status, FakeLineApi.push_status = 200, 500
        FakeLineApi.push_failures, FakeLineApi.delay = 0, 0.0
        FakeLineApi.taken_keys = set()
        FakeLineApi.multicast_status, FakeLineApi.multicast_failures = 500, 0
        FakeLineApi.retry_after, FakeLineApi.multicast_delay, FakeLineApi.slow_multicasts = None, 0.0, None
        FakeLineApi.hold_at = None
        FakeLineApi.held.clear()
        FakeLineApi.release.set()  # whatever a previous test held goes on
        FakeLineApi.release = threading.Event()
        FakeLineApi.held = threading.Event()

    def status_for(self, path: str) -> int:
        if path.endswith("/reply"):
            return FakeLineApi.reply_status
        if path.endswith("/push") and FakeLineApi.push_failures > 0:
            FakeLineApi.push_failures -= 1
            return FakeLineApi.push_status
        return 200

    def multicast(self, body: dict) -> None:
        """Take the multicast (or not) at once, as LINE does; answer after the delay, if any."""
        cls = FakeLineApi
        key = self.headers.get("X-Line-Retry-Key")
        hold = slow = False
        with cls.lock:
            if key and key in cls.taken_keys:
                status = 409
            elif cls.multicast_failures > 0:
                cls.multicast_failures -= 1
                status = cls.multicast_status
            else:
                status = 200
                if key:
                    cls.taken_keys.add(key)
                hold = cls.hold_at is not None and len(cls.taken_keys) == cls.hold_at
                slow = cls.slow_multicasts is None or cls.slow_multicasts > 0
                if cls.slow_multicasts:
                    cls.slow_multicasts -= 1
            cls.calls.append((self.path, body))
            cls.statuses.append(status)
            release = cls.release
        if hold:
            cls.held.set()
            release.wait(30)
        if slow and cls.multicast_delay:
            time.sleep(cls.multicast_delay)
        headers = {"Retry-After": str(cls.retry_after)} if status == 429 and cls.retry_after else {}
        answer = b"{}" if status == 200 else b'{"message": "refused by the stand-in"}'
        self.answer(status, answer, headers)

    def answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        with contextlib.suppress(OSError):  # a client that gave up (too slow) is gone
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.endswith("/multicast"):
            self.multicast(json.loads(body or b"{}"))
            return
        if FakeLineApi.delay:
            time.sleep(FakeLineApi.delay)
        status = self.status_for(self.path)
        FakeLineApi.calls.append((self.path, json.loads(body or b"{}")))
        FakeLineApi.statuses.append(status)
        with contextlib.suppress(OSError):  # a client that gave up (too slow) is gone
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            if status == 200:
                self.wfile.write(b'{"sentMessages": [{"id": "1", "quoteToken": "q"}]}')
            else:
                self.wfile.write(b'{"message": "refused by the stand-in"}')

    def log_message(self, *args):
        pass


def start_line_api(handler: type[FakeLineApi] = FakeLineApi):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    FakeLineApi.reset()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def line_settings(settings, line_api: str, queue_dir: Path, timeout_s: float = 10.0, **more):
    """`settings` with LINE switched on against `line_api`, a task queue of their own in
    `queue_dir` (not the stack's, whose worker has no LINE credentials) and short push retries."""
    line = {
        "line_channel_secret": SECRET,
        "line_channel_access_token": "test-token",
        "line_api_base": line_api,
        "line_api_timeout_s": timeout_s,
        "task_queue_url": f"sqlite:///{queue_dir / 'tasks.db'}",
        "line_push_attempts": 3,
        "line_push_retry_s": 0.2,
    }
    return settings.replace(**{**line, **more})


def line_app(settings, line_api: str | None = None, timeout_s: float = 10.0, queue_dir: Path | None = None):
    """The Flask app with LINE switched on (`settings` from line_settings, or the stack's settings
    and the LINE API's URL)."""
    from web import create_app

    if line_api is not None:
        settings = line_settings(settings, line_api, queue_dir or Path(tempfile.mkdtemp()), timeout_s)
    return create_app(settings)


class LineWorker(Processes):
    """`concierge tasks worker` for LINE settings, as its own process (logs in `log_dir`)."""

    def start(self) -> LineWorker:
        self.spawn("tasks", tasks_command(), worker_env(self.settings))
        return self

    @property
    def log(self) -> str:
        return (self.log_dir / "tasks.log").read_text(errors="replace")


@contextlib.contextmanager
def line_worker(settings, log_dir: Path) -> Iterator[LineWorker]:
    worker = LineWorker(settings, log_dir).start()
    try:
        yield worker
    finally:
        worker.stop()


def wait_for(check, timeout: float = 60.0, what: str = "the LINE worker"):
    """Poll `check()` until it is truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"{what} did not get there in {timeout:.0f}s (calls: {FakeLineApi.calls!r:.500})")


def calls_to(path_end: str) -> list[dict]:
    """Bodies of the recorded calls to .../reply or .../push."""
    return [body for path, body in FakeLineApi.calls if path.endswith(path_end)]


def multicast_deliveries() -> Counter[str]:
    """How many times each user id was in a multicast LINE took (answered 200; a 409 delivers
    nothing)."""
    taken = Counter()
    for (path, body), status in zip(FakeLineApi.calls, FakeLineApi.statuses, strict=True):
        if path.endswith("/multicast") and status == 200:
            taken.update(body["to"])
    return taken


def signature(body: bytes) -> str:
    """X-Line-Signature: base64 of HMAC-SHA256 of the body with the channel secret."""
    return base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()


def signed(events: list[dict]) -> tuple[bytes, dict]:
    body = json.dumps({"destination": "Uxxxxxxxx", "events": events}, ensure_ascii=False).encode()
    return body, {"X-Line-Signature": signature(body), "Content-Type": "application/json"}


def event(kind: str, user: str, **extra) -> dict:
    return {
        "type": kind,
        "mode": "active",
        "timestamp": int(time.time() * 1000),
        "source": {"type": "user", "userId": user},
        "webhookEventId": uuid.uuid4().hex,
        "deliveryContext": {"isRedelivery": False},
        "replyToken": uuid.uuid4().hex,
        **extra,
    }


def text_event(user: str, text: str) -> dict:
    return event("message", user, message={"type": "text", "id": "1", "text": text, "quoteToken": "q"})
