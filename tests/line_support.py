"""LINE test support: a local server standing in for the LINE API, and events signed exactly as
LINE signs them (shared by test_line and test_fuzz)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

SECRET = "test-channel-secret"


class FakeLineApi(BaseHTTPRequestHandler):
    calls: ClassVar[list[tuple[str, dict]]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        FakeLineApi.calls.append((self.path, json.loads(body or b"{}")))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"sentMessages": [{"id": "1", "quoteToken": "q"}]}')

    def log_message(self, *args):
        pass


class FailingLineApi(FakeLineApi):
    """LINE's API answering 500 to everything."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"message": "Internal server error"}')


class SlowLineApi(FakeLineApi):
    """LINE's API taking SLOW_SECONDS to answer (longer than the tests' LINE_API_TIMEOUT)."""

    SLOW_SECONDS = 4

    def do_POST(self):
        time.sleep(self.SLOW_SECONDS)
        with contextlib.suppress(OSError):  # the client gave up long ago
            super().do_POST()


def start_line_api(handler: type[FakeLineApi] = FakeLineApi):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    FakeLineApi.calls = []
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def line_app(settings, line_api: str, timeout_s: float = 10.0):
    """The Flask app with LINE switched on, talking to the stack of `settings`."""
    from web import create_app

    line = {"line_channel_secret": SECRET, "line_channel_access_token": "test-token"}
    return create_app(settings.replace(**line, line_api_base=line_api, line_api_timeout_s=timeout_s))


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
