"""Hand-off, regional issues and privacy through the live REST path (Rasa + actions + PostgreSQL)."""

from __future__ import annotations

import json
import os
import subprocess
import time

import psycopg
import requests

from bot.escalation import Escalations
from bot.rasa_client import RasaClient
from bot.settings import ROOT

CONCIERGE = str(ROOT / ".venv" / "bin" / "concierge")


def _say(stack, sender: str, text: str) -> list[dict]:
    resp = requests.post(
        f"{stack.rasa_url}/webhooks/rest/webhook",
        params={"token": stack.rasa_token}, json={"sender": sender, "message": text}, timeout=60
    )
    resp.raise_for_status()
    return resp.json()


def _texts(messages: list[dict]) -> str:
    return "\n".join(m.get("text") or "" for m in messages)


def _cli(stack, *args: str) -> str:
    env = stack.settings.replace(rasa_url=stack.rasa_url).child_env()
    done = subprocess.run([CONCIERGE, *args], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_handoff_ticket_pause_staff_reply_and_resume(stack):
    sender = "handoff-1"
    _say(stack, sender, "中原区に住んでいます")
    said = _say(stack, sender, "担当の職員さんと話したい")
    reply = _texts(said)
    assert "受付番号" in reply and "ボットに戻る" in reply
    buttons = [b for m in said for b in m.get("buttons") or []]
    assert {"title": "ボットに戻る", "payload": "ボットに戻る"} in buttons  # a tap, not a phrase to type
    tickets = [
        json.loads(line) for line in _cli(stack, "escalations", "--ward", "中原区", "--json").splitlines()
    ]
    ticket = next(t for t in tickets if t["sender"] == sender)
    assert ticket["status"] == "new" and ticket["channel"] == "rest"
    assert _say(stack, sender, "まだですか？") == []  # the bot stays quiet while staff have it
    _cli(stack, "escalations", "reply", str(ticket["id"]), "区民課の担当です。ご用件を伺います。")
    staff = RasaClient(stack.rasa_url, token=stack.rasa_token).staff_messages(sender)
    assert [m["text"] for m in staff] == ["区民課の担当です。ご用件を伺います。"]
    _cli(stack, "escalations", "close", str(ticket["id"]))
    assert "区民課" in _texts(_say(stack, sender, "住民票はどこで取れる？"))


def test_resident_can_leave_the_handoff(stack):
    sender = "handoff-2"
    _say(stack, sender, "職員と話したい")
    assert "受付番号" in _texts(_say(stack, sender, "幸区"))
    assert "ボットとの会話に戻りました" in _texts(_say(stack, sender, "ボットに戻る"))
    assert "保険年金課" in _texts(_say(stack, sender, "国保 加入"))


def test_paraphrases_from_one_ward_make_one_regional_issue(stack):
    for n, text in enumerate(
        [
            # a topic the knowledge lacks (空き家 and 騒音 have referrals now)
            "マンホールのふたの模様について知りたい",
            "マンホールの蓋のデザインの由来を教えて",
            "マンホールのふたの絵柄について知りたい",
        ]
    ):
        reply = _say(stack, f"issue-{n}", f"多摩区に住んでいます。{text}")
        assert any(m.get("custom", {}).get("unresolved") for m in reply), _texts(reply)
    _say(stack, "issue-x", "多摩区です。商店街のシャッターが閉まったままの店が増えて寂しい")
    issues = [
        json.loads(line) for line in _cli(stack, "regional-issues", "--ward", "多摩区", "--json").splitlines()
    ]
    assert [i["count"] for i in issues] == [3, 1]
    assert "マンホール" in issues[0]["label"]


def test_personal_data_is_masked_everywhere(stack):
    secret = (
        "マイナンバーは1234 5678 9012、電話は090-8765-4321、メールはtaro@example.com です。職員と話したい"
    )
    _say(stack, "privacy-1", "宮前区に住んでいます")
    _say(stack, "privacy-1", secret)
    _say(stack, "privacy-2", "麻生区です。" + secret.replace("職員と話したい", "わからないことがあります"))
    raw = ["1234 5678 9012", "123456789012", "090-8765-4321", "09087654321", "taro@example.com", "山田太郎"]
    settings = stack.settings
    with psycopg.connect(settings.tracker_db_url) as conn:
        dump = "\n".join(str(row) for row in conn.execute("SELECT * FROM events").fetchall())
        dump += "\n".join(str(row) for row in conn.execute("SELECT * FROM ticket_messages").fetchall())
        dump += "\n".join(str(row) for row in conn.execute("SELECT * FROM unresolved_questions").fetchall())
    assert "[マイナンバー]" in dump
    logs = "\n".join(p.read_text(errors="replace") for p in stack.log_dir.glob("*.log"))
    for value in raw:
        assert value not in dump and value not in logs, value


def test_action_server_down_gets_an_apology_and_tickets_survive(stack):
    _say(stack, "crash-1", "川崎区に住んでいます")
    assert "受付番号" in _texts(_say(stack, "crash-1", "職員と話したい"))
    proc = stack.procs["actions"]
    os.killpg(proc.pid, 9)
    proc.wait(timeout=10)
    try:
        reply = _texts(_say(stack, "crash-2", "住民票がほしい"))
        assert "申し訳ありません" in reply
    finally:
        stack.start_actions()
        stack.wait_ready()
    tickets = Escalations.from_settings(stack.settings).list(ward="川崎区")
    assert any(t["sender"] == "crash-1" for t in tickets)
    time.sleep(0.1)
    assert "区民課" in _texts(_say(stack, "crash-3", "住民票がほしい"))


def test_sensitive_topic_gives_the_specialist_contact_first(stack):
    reply = _say(stack, "care-1", "子どもへの虐待を見かけました。どうすればいいですか")
    text = _texts(reply)
    assert "189" in text and "出典:" in text
    assert any(b.get("title") == "担当者と話したい" for m in reply for b in m.get("buttons") or [])


def test_two_failures_in_a_row_offer_a_person(stack):
    first = _texts(_say(stack, "miss-1", "川崎区です。マンホールのふたの模様について知りたい"))
    assert "職員がご相談を承ります" not in first
    second = _say(stack, "miss-1", "商店街のシャッターが閉まったままの店が増えて寂しい")
    assert "職員がご相談を承ります" in _texts(second)


def test_an_english_resident_is_handed_off_in_english(stack):
    sender = f"english-{time.time_ns()}"
    asked = _say(stack, sender, "I want to talk to a person")
    assert "Please choose your ward" in _texts(asked)
    ward = next(b for m in asked for b in m.get("buttons") or [] if b["title"] == "幸区")
    said = _say(stack, sender, ward["payload"])  # a button: the language of the typed message stays
    reply = _texts(said)
    assert "Your request number is" in reply and "幸区" in reply and "受付番号" not in reply
    assert any(b.get("payload") == "ボットに戻る" for m in said for b in m.get("buttons") or [])
    japanese = _texts(_say(stack, f"japanese-{time.time_ns()}", "担当の職員さんと話したい"))
    assert "お住まいの区を選んでください" in japanese
