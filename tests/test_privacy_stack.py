"""Done-when 1 of issue 16 through the live stack: messages carrying personal data of every kind,
sent through the REST channel and the widget API, handed off, answered by staff, left unresolved
and turned into a draft, leave none of it raw in any database table, log, file under var/ or the
knowledge folder the stack uses — as typed, in NFKC, or as the run of its digits."""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from pathlib import Path

import psycopg
import pytest
import requests

from bot.console.service import ConsoleService
from bot.escalation import ChannelDelivery, Escalations, RasaDelivery
from bot.regional_issues import RegionalIssues

# [what the resident writes, the personal data in it]; values chosen to appear nowhere in the
# knowledge or the index (checked before anything is sent)
SECRETS = [
    ("昭和48年7月19日生まれです", "昭和48年7月19日"),
    ("生年月日はS48.7.19です", "S48.7.19"),
    ("わたしは1973/07/19生まれ", "1973/07/19"),
    ("口座番号は 8642097 です", "8642097"),
    ("保険証の番号は七五三一九八六です", "七五三一九八六"),
    ("基礎年金番号 4827-391056", "4827-391056"),
    ("パスポート番号はTR8273645", "TR8273645"),
    ("今井南町29番7号に住んでいます", "29番7号"),
    ("上小田中七丁目十三番四号です", "七丁目十三番四号"),
    ("新城8ー3ー6のアパート", "8ー3ー6"),
    ("携帯は090ｰ7364ｰ2918です", "090ｰ7364ｰ2918"),
    ("＋８１ ８０ ６２５１ ９３７４に電話ください", "＋８１ ８０ ６２５１ ９３７４"),
    ("マイナンバーは9372 8164 5028", "9372 8164 5028"),
    ("番号は４７２９－３８１６－５０４７です", "４７２９－３８１６－５０４７"),
    ("郵便番号は2139801です", "2139801"),
    ("〒219－7742", "219－7742"),
    ("メールは hanako.kawasaki @ example.jp です", "hanako.kawasaki @ example.jp"),
    ("jiro＠example．ne．jp に送って", "jiro＠example．ne．jp"),
    ("鈴木花子と申します", "鈴木花子"),
]
STAFF_REPLY = "折り返しは090-5813-2764へ。生年月日は昭和51年3月8日、口座番号5930417で確認しました"
STAFF_RAW = ["090-5813-2764", "昭和51年3月8日", "5930417"]
UNANSWERED = "マンホールのふたの模様について知りたい"


STORED_TABLES = frozenset({"events", "tickets", "ticket_messages", "unresolved_questions", "regional_issues"})


def needles(raw: str) -> set[str]:
    """The forms a leak could take: as typed, NFKC, NFKC without spaces, its digits (6 or more)."""
    normal = unicodedata.normalize("NFKC", raw)
    found = {raw, normal, "".join(normal.split())}
    digits = "".join(c for c in normal if c.isdigit())
    if len(digits) >= 6:
        found.add(digits)
    return found


ALL_NEEDLES = sorted(
    {n for _, raw in SECRETS for n in needles(raw)} | {n for r in STAFF_RAW for n in needles(r)}
)


def _unescaped(text: str) -> str:
    """JSON kept with \\uXXXX escapes (Rasa's events) read as the characters they stand for."""
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m[1], 16)), text)


def _database_dump(url: str, expected: frozenset[str] = frozenset()) -> str:
    """Every row of every table of the stack's database (tracker store and concierge tables)."""
    rows: list[str] = []
    with psycopg.connect(url) as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        ]
        assert expected <= set(tables), tables
        for table in tables:
            rows += [str(row) for row in conn.execute(f'SELECT * FROM "{table}"')]
    return _unescaped("\n".join(rows))


def _files_dump(*folders: Path) -> str:
    texts = []
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            texts.append(_unescaped(path.read_bytes().decode("utf-8", errors="replace")))
    return "\n".join(texts)


def _leaks(haystack: str) -> list[str]:
    return [n for n in ALL_NEEDLES if n in haystack]


def _rest(stack, sender: str, text: str) -> list[dict]:
    from bot.rasa_client import RasaClient

    return RasaClient(stack.rasa_url, token=stack.rasa_token).send(sender, text)


def _widget(web_url: str, sender: str, text: str) -> dict:
    resp = requests.post(f"{web_url}/api/message", json={"sender": sender, "message": text}, timeout=60)
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.fixture()
def knowledge_and_var(stack):
    settings = stack.settings
    return Path(settings.knowledge_dir), Path(settings.var_dir)


def test_no_raw_personal_data_anywhere_after_rest_widget_handoff_staff_reply_and_draft(
    stack, stack_settings, web_url, knowledge_and_var, caplog
):
    caplog.set_level(logging.DEBUG)
    knowledge, var = knowledge_and_var
    before = _leaks(
        _database_dump(stack.settings.tracker_db_url) + _files_dump(knowledge, var, stack.log_dir)
    )
    assert before == [], f"the test's values must not be there before it sends them: {before}"

    # every form through both doors, spread over senders (the per-resident limits stay unhit)
    for n, (text, _) in enumerate(SECRETS):
        if n % 2:
            _widget(web_url, f"privacyweb{n:03d}", f"川崎区です。{text}")
        else:
            _rest(stack, f"privacy-rest-{n}", f"幸区です。{text}")
    # a hand-off whose transcript holds them, through the widget
    handed = "privacywebhandoff"
    _widget(web_url, handed, "中原区に住んでいます")
    _widget(web_url, handed, "、".join(text for text, _ in SECRETS[:9]))
    reply = _widget(web_url, handed, "職員と話したい")
    assert "受付番号" in json.dumps(reply, ensure_ascii=False)
    # an unanswered question carrying them: an unresolved question and a regional issue
    unresolved = _rest(
        stack, "privacy-unresolved", f"高津区です。{UNANSWERED}。{'、'.join(t for t, _ in SECRETS[9:])}"
    )
    assert any(m.get("custom", {}).get("unresolved") for m in unresolved), unresolved

    # staff answer the hand-off with personal data in the reply
    escalations = Escalations.from_settings(
        stack_settings, ChannelDelivery(RasaDelivery.from_settings(stack_settings))
    )
    ticket = next(t for t in escalations.list(ward="中原区") if t["sender"] == f"web-{handed}")
    escalations.reply(ticket["id"], STAFF_REPLY, "staff-a")
    shown = requests.post(f"{web_url}/api/messages", json={"sender": handed}, timeout=30).json()["messages"]
    assert [m["text"] for m in shown] == [
        "折り返しは[電話番号]へ。生年月日は[生年月日]、口座番号[口座番号]で確認しました"
    ]
    # and turn the regional issue into a draft under knowledge/drafts/
    issue = next(i for i in RegionalIssues(stack_settings.database_url, None, 0.5).list(ward="高津区"))
    draft = ConsoleService(stack_settings).draft_from_issue(issue["id"])
    assert draft.is_relative_to(knowledge / "drafts") and "[電話番号]" in draft.read_text(encoding="utf-8")

    database = _database_dump(stack.settings.tracker_db_url, STORED_TABLES)
    for kind in (
        "[生年月日]",
        "[口座番号]",
        "[住所]",
        "[電話番号]",
        "[マイナンバー]",
        "[郵便番号]",
        "[メールアドレス]",
    ):
        assert kind in database, kind  # the messages did land, masked
    assert _leaks(database) == [], "raw personal data in the database"
    assert _leaks(_files_dump(var)) == [], "raw personal data under var/"
    assert _leaks(_files_dump(knowledge)) == [], "raw personal data under knowledge/"
    assert _leaks(_files_dump(stack.log_dir)) == [], "raw personal data in the stack's logs"
    assert _leaks(_unescaped(caplog.text)) == [], "raw personal data in the web process's log"
