"""Masking where text is stored outside the door: staff replies into the tracker, drafts written
under knowledge/drafts/ (issue 16). The stack-wide check is tests/test_handoff.py."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bot.escalation import ChannelDelivery, Escalations, RasaDelivery
from bot.privacy import public_numbers
from bot.rasa_client import RasaClient
from bot.regional_issues import RegionalIssues
from bot.settings import ROOT
from bot.storage.db import session_scope
from bot.storage.models import RegionalIssue, UnresolvedQuestion

STAFF_REPLY = (
    "田中です。折り返しは090-1234-5678、生年月日は昭和55年4月1日で確認しました。"
    "相談ダイヤルは0570-064-556です"
)


@pytest.fixture()
def fake_rasa():
    """A loopback HTTP server standing in for Rasa's tracker API: records the events appended."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.extend(json.loads(body))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", received
    server.shutdown()


class FakeLine:
    def __init__(self):
        self.pushed: list[str] = []

    def push(self, to, messages):
        self.pushed += [m.text for m in messages]


def _ticket(esc: Escalations, channel: str) -> int:
    return esc.open_ticket(
        ward="中原区", department="区民課", reason="requested", channel=channel, sender="r-1", transcript=[]
    )


def test_a_staff_reply_reaches_the_tracker_masked_with_public_numbers_kept(fake_rasa, tmp_path):
    url, received = fake_rasa
    public = public_numbers(ROOT / "knowledge")
    delivery = RasaDelivery(RasaClient(url), public=public)
    esc = Escalations(f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "spool.jsonl", delivery)
    ticket_id = _ticket(esc, "rest")
    esc.reply(ticket_id, STAFF_REPLY, "staff-a")
    esc.close(ticket_id, notice="終わりました。連絡先 taro@example.com は消去しました")
    texts = [e["text"] for e in received if e["event"] == "bot"]
    assert texts[0] == (
        "[氏名]です。折り返しは[電話番号]、生年月日は[生年月日]で確認しました。相談ダイヤルは0570-064-556です"
    )
    assert texts[1] == "終わりました。連絡先 [メールアドレス] は消去しました"
    stored = esc.get(ticket_id)["messages"][0]["text"]
    assert "090-1234-5678" not in stored and "昭和55年" not in stored


def test_line_residents_get_the_reply_as_written_and_the_tracker_a_masked_copy(fake_rasa, tmp_path):
    """LINE's push API carries the original (stored nowhere here); the tracker copy is masked."""
    url, received = fake_rasa
    line = FakeLine()
    delivery = ChannelDelivery(RasaDelivery(RasaClient(url)), line)
    esc = Escalations(f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "spool.jsonl", delivery)
    esc.reply(_ticket(esc, "line"), STAFF_REPLY, "staff-a")
    assert line.pushed == [STAFF_REPLY]
    (event,) = [e for e in received if e["event"] == "bot"]
    assert "090-1234-5678" not in event["text"] and "[電話番号]" in event["text"]


def test_public_numbers_are_the_knowledges_phone_numbers_and_postal_codes():
    public = public_numbers(ROOT / "knowledge")
    assert "0570064556" in public  # こころの健康相談統一ダイヤル (sensitive.yml)
    assert "09012345678" not in public


def test_a_draft_is_masked_even_from_questions_stored_before_the_masking_knew_the_form(tmp_path):
    """Rows written by an older mask still hold a date of birth or a labelled number: the draft,
    which the deploy guide keeps in git, masks them again."""
    db = f"sqlite:///{tmp_path / 'c.db'}"
    issues = RegionalIssues(db, None, 0.5)
    with session_scope(db) as session:
        issue = RegionalIssue(ward="中原区", label="口座番号1234567・年金", count=1, centroid=b"\0" * 4)
        issue.questions = [
            UnresolvedQuestion(
                ward="中原区",
                text="昭和55年4月1日生まれです。口座番号1234567の年金が止まった",
                score=0.1,
                embedding=b"\0" * 4,
            )
        ]
        session.add(issue)
        session.flush()
        issue_id = issue.id
    written = issues.draft(issue_id, tmp_path / "knowledge").read_text(encoding="utf-8")
    assert "1234567" not in written and "昭和55年" not in written
    assert "[生年月日]" in written and "[口座番号]" in written
