"""Retention purge and a resident's erasure, on SQLite and PostgreSQL, with trackers written by
Rasa's own SQLTrackerStore; then the same through the running stack and the widget's API."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import create_engine, func, select, text
from tracker_support import write_conversations

from bot.bookings import reservations
from bot.business_hours import JST
from bot.retention import KINDS, RetentionError, erase_conversation, is_erase_request, purge
from bot.settings import ROOT, Settings
from bot.storage.db import session_scope
from bot.storage.models import AuditEntry, Booking, BookingSlot, Ticket, TicketMessage, UnresolvedQuestion

CONCIERGE = str(ROOT / ".venv" / "bin" / "concierge")
DAY = 24 * 3600


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request, tmp_path, pg_databases):
    if request.param == "sqlite":
        yield Settings(var_dir=tmp_path / "var")
        return
    with pg_databases("retention") as url:
        yield Settings(
            var_dir=tmp_path / "var",
            db_url=url.replace("postgresql://", "postgresql+psycopg://"),
            tracker_db_url=url,
        )


def _ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


def _ticket(sender: str, status: str, closed_days_ago: float | None, created_days_ago: float = 0) -> Ticket:
    ticket = Ticket(
        ward="中原区", department="区民課", reason="requested", channel="widget", sender=sender,
        status=status, created_at=_ago(created_days_ago),
        closed_at=_ago(closed_days_ago) if closed_days_ago is not None else None,
    )  # fmt: skip
    ticket.messages = [TicketMessage(author="resident", text="[電話番号]に相談したい")]
    return ticket


def _question(days_ago: float) -> UnresolvedQuestion:
    return UnresolvedQuestion(
        ward="中原区", text="[住所]の道路", score=0.1, embedding=b"\0" * 8, created_at=_ago(days_ago)
    )


def _senders(settings: Settings) -> dict[str, int]:
    """Tracker sender id → its number of events."""
    engine = create_engine(settings.tracker_database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT sender_id, count(*) FROM events GROUP BY sender_id")).all()
    finally:
        engine.dispose()
    return dict(rows)


def _fill(settings: Settings) -> None:
    """Something of every kind on both sides of its default retention period."""
    now = time.time()
    write_conversations(
        settings,
        {
            "web-old": [now - 40 * DAY, now - 31 * DAY],  # last event 31 days ago: over 30
            "web-recent": [now - 40 * DAY, now - 1 * DAY],  # began long ago, still going: kept whole
            "web-open": [now - 90 * DAY],  # old, but a hand-off is open on it
        },
    )
    with session_scope(settings.database_url) as session:
        session.add_all([
            _ticket("web-old", "closed", closed_days_ago=400, created_days_ago=401),
            _ticket("web-recent", "closed", closed_days_ago=10, created_days_ago=500),
            _ticket("web-open", "claimed", closed_days_ago=None, created_days_ago=500),
            _question(200), _question(10),
            AuditEntry(user="a", action="login", at=_ago(800)),
            AuditEntry(user="a", action="login", at=_ago(5)),
        ])  # fmt: skip
    logs = settings.log_dir
    logs.mkdir(parents=True, exist_ok=True)
    for name, days in (("old.log", 20), ("rasa-5005/rasa.log", 20), ("web.log", 1)):
        (logs / name).parent.mkdir(parents=True, exist_ok=True)
        (logs / name).write_text("masked log line\n")
        os.utime(logs / name, (now - days * DAY, now - days * DAY))


def _state(settings: Settings) -> dict:
    with session_scope(settings.database_url) as session:
        return {
            "tickets": sorted(session.scalars(select(Ticket.sender))),
            "ticket_messages": session.query(TicketMessage).count(),
            "questions": session.query(UnresolvedQuestion).count(),
            "audit": session.query(AuditEntry).filter(AuditEntry.action != "purge").count(),
            "senders": sorted(_senders(settings)),
            "logs": sorted(str(p.relative_to(settings.log_dir)) for p in settings.log_dir.rglob("*.log")),
        }


def test_purge_deletes_what_is_past_each_kinds_period(settings):
    _fill(settings)
    before = _state(settings)
    expected = {
        "conversations": 1, "closed_tickets": 1, "unresolved_questions": 1, "audit_log": 1, "log_files": 2,
        "answer_conversation_keys": 0, "notice_deliveries": 0, "booking_conversations": 0,
    }  # fmt: skip
    assert purge(settings, dry_run=True) == expected
    assert _state(settings) == before  # a dry run deletes nothing
    assert purge(settings) == expected
    after = _state(settings)
    assert after["senders"] == ["web-open", "web-recent"]
    assert after["tickets"] == ["web-open", "web-recent"]  # the open ticket and the recently closed one
    assert after["ticket_messages"] == 2  # the purged ticket's transcript went with it
    assert after["questions"] == 1 and after["audit"] == 1
    assert after["logs"] == ["web.log"]
    assert _senders(settings)["web-recent"] == 4  # a live conversation is kept whole, not cut
    with session_scope(settings.database_url) as session:
        record = session.query(AuditEntry).filter(AuditEntry.action == "purge").one()
        assert '"closed_tickets": 1' in record.detail  # the purge is accounted for, counts only
    assert purge(settings) == dict.fromkeys(KINDS, 0)  # nothing more to do


def test_purge_older_than_zero_keeps_only_what_an_open_hand_off_needs(settings):
    _fill(settings)
    counts = purge(settings, older_than_days=0)
    assert counts == {
        "conversations": 2, "closed_tickets": 2, "unresolved_questions": 2, "audit_log": 2, "log_files": 3,
        "answer_conversation_keys": 0, "notice_deliveries": 0, "booking_conversations": 0,
    }  # fmt: skip
    after = _state(settings)
    assert after["senders"] == ["web-open"] and after["tickets"] == ["web-open"]
    assert after["questions"] == 0 and after["audit"] == 0 and after["logs"] == []


def test_erase_conversation_removes_one_residents_events_and_closed_tickets(settings):
    _fill(settings)
    assert erase_conversation(settings, "web-recent") == {
        "tracker_events": 4, "closed_tickets": 1, "open_tickets_kept": 0, "answer_events": 0,
        "subscriptions": 0,
        "notice_deliveries": 0, "bookings": 0,
    }  # fmt: skip
    assert sorted(_senders(settings)) == ["web-old", "web-open"]  # nobody else's conversation
    assert erase_conversation(settings, "web-open") == {
        "tracker_events": 2, "closed_tickets": 0, "open_tickets_kept": 1, "answer_events": 0,
        "subscriptions": 0,
        "notice_deliveries": 0, "bookings": 0,
    }  # fmt: skip
    assert _state(settings)["tickets"] == ["web-old", "web-open"]  # staff keep the open hand-off
    assert erase_conversation(settings, "web-never-seen") == {
        "tracker_events": 0, "closed_tickets": 0, "open_tickets_kept": 0, "answer_events": 0,
        "subscriptions": 0,
        "notice_deliveries": 0, "bookings": 0,
    }  # fmt: skip


def test_erasure_deletes_a_line_residents_notice_subscriptions_and_the_purge_keeps_them(settings):
    """Subscriptions live until stopped (no retention period), but go with the resident's erasure."""
    from bot.notices import subscriptions

    leaving, staying = "U" + "a" * 32, "U" + "b" * 32
    subscriptions.subscribe(settings.database_url, leaving, "中原区")  # every topic: five rows
    subscriptions.subscribe(settings.database_url, staying, "幸区", ["bousai"])
    assert purge(settings, older_than_days=0)["conversations"] == 0
    assert subscriptions.current(settings.database_url, leaving).ward == "中原区"  # not purged by age
    assert erase_conversation(settings, leaving)["subscriptions"] == 5
    assert subscriptions.current(settings.database_url, leaving).ward is None
    assert subscriptions.current(settings.database_url, staying).topics == ("bousai",)
    assert erase_conversation(settings, leaving)["subscriptions"] == 0


def _slot(settings: Settings, days_from_today: int, start: str = "10:00") -> int:
    """A slot written as it is stored (the hours' checks are bot/bookings' tests' business)."""
    day = datetime.now(JST).date() + timedelta(days=days_from_today)
    with session_scope(settings.database_url) as session:
        row = BookingSlot(
            ward="中原区", counter_id="kumin", day=day, start=start, minutes=30, capacity=1,
            booked=0, status="open", created_by="tanaka",
        )  # fmt: skip
        session.add(row)
        session.flush()
        return row.id


def _past_booking(settings: Settings, slot_id: int, conversation: str, status: str = "arrived") -> str:
    number = reservations.new_number()
    with session_scope(settings.database_url) as session:
        session.add(
            Booking(number=number, slot_id=slot_id, conversation=conversation, channel="line", status=status)
        )
    return number


def _booking(settings: Settings, number: str) -> Booking:
    with session_scope(settings.database_url) as session:
        row = session.scalars(select(Booking).where(Booking.number == number)).one()
        session.expunge(row)
        return row


def _book(settings: Settings, days_from_today: int, who: str) -> reservations.Reservation:
    slot_id = _slot(settings, days_from_today)
    with session_scope(settings.database_url) as session:
        day = session.get(BookingSlot, slot_id).day
    return reservations.book(
        settings.database_url, ward="中原区", counter_id="kumin", day=day, start="10:00",
        conversation=who, channel="line",
    )  # fmt: skip


def test_erasure_cancels_a_residents_coming_bookings_and_unlinks_all_of_them(settings):
    alice, bob = "U" + "a" * 32, "U" + "b" * 32
    coming = _book(settings, 7, alice)
    kept = _book(settings, 8, bob)
    visited = _past_booking(settings, _slot(settings, -3), alice)
    counts = erase_conversation(settings, alice)
    assert counts["bookings"] == 2 and counts["tracker_events"] == 0
    after = _booking(settings, coming.number)
    assert (after.status, after.conversation, after.cancelled_by) == ("cancelled", None, "resident")
    assert reservations.find(settings.database_url, coming.number).slot.booked == 0  # the seat is back
    assert (_booking(settings, visited).status, _booking(settings, visited).conversation) == ("arrived", None)
    assert reservations.of_conversation(settings.database_url, alice) == []
    assert _booking(settings, kept.number).conversation == bob  # nobody else's
    slot = reservations.find(settings.database_url, coming.number).slot
    again = reservations.book(
        settings.database_url, ward="中原区", counter_id="kumin", day=slot.day, start=slot.start,
        conversation="web-someone-else",
    )  # fmt: skip
    assert again.status == "booked"  # the freed seat is bookable
    assert erase_conversation(settings, alice)["bookings"] == 0
    with session_scope(settings.database_url) as session:
        assert session.scalar(select(func.count()).select_from(Booking)) == 4  # rows stay, for the counts


def test_the_purge_unlinks_bookings_whose_day_is_past_their_period(settings):
    old = _past_booking(settings, _slot(settings, -31), "U" + "a" * 32)
    recent = _past_booking(settings, _slot(settings, -29), "web-recent-visitor", status="no_show")
    coming = _book(settings, 5, "U" + "c" * 32)
    assert purge(settings, dry_run=True)["booking_conversations"] == 1
    assert _booking(settings, old).conversation is not None  # a dry run changes nothing
    assert purge(settings)["booking_conversations"] == 1
    assert _booking(settings, old).conversation is None and _booking(settings, old).status == "arrived"
    assert _booking(settings, recent).conversation == "web-recent-visitor"
    assert purge(settings)["booking_conversations"] == 0
    assert purge(settings.replace(retention_bookings_days=20))["booking_conversations"] == 1
    assert purge(settings, older_than_days=0)["booking_conversations"] == 0  # days not yet past: kept
    assert _booking(settings, coming.number).conversation == "U" + "c" * 32  # the reminder's address


def test_nothing_stored_yet_is_nothing_to_delete_and_creates_no_tracker_file(tmp_path):
    settings = Settings(var_dir=tmp_path / "var")
    assert purge(settings) == dict.fromkeys(KINDS, 0)
    assert erase_conversation(settings, "web-someone")["tracker_events"] == 0
    assert not (tmp_path / "var" / "rasa_tracker.db").exists()
    with pytest.raises(ValueError):
        erase_conversation(settings, "")
    with pytest.raises(ValueError):
        purge(settings, older_than_days=-1)


def test_a_locked_database_fails_loudly_and_changes_nothing(tmp_path):
    settings = Settings(var_dir=tmp_path / "var", sqlite_busy_timeout_ms=200)
    _fill(settings)
    before = _state(settings)
    holder = sqlite3.connect(settings.var_dir / "concierge.db")
    holder.execute("BEGIN EXCLUSIVE")  # another writer holds the concierge database
    try:
        with pytest.raises(RetentionError):
            purge(settings, older_than_days=0)
        with pytest.raises(RetentionError):
            erase_conversation(settings, "web-recent")
    finally:
        holder.rollback()
        holder.close()
    assert _state(settings) == before
    tracker = sqlite3.connect(settings.var_dir / "rasa_tracker.db")
    tracker.execute("BEGIN EXCLUSIVE")  # now Rasa's tracker store is busy
    try:
        with pytest.raises(RetentionError):
            erase_conversation(settings, "web-recent")
    finally:
        tracker.rollback()
        tracker.close()
    assert "web-recent" in _senders(settings)


def test_an_unreachable_tracker_store_is_an_error_not_a_silent_zero(tmp_path):
    settings = Settings(var_dir=tmp_path / "var", tracker_db_url="postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(RetentionError):
        purge(settings)


def test_cli_purge_prints_counts_and_dry_run_deletes_nothing(settings):
    _fill(settings)
    env = settings.child_env()
    dry = subprocess.run(
        [CONCIERGE, "purge", "--dry-run"], capture_output=True, text=True, env=env, timeout=120
    )
    assert dry.returncode == 0, dry.stderr
    assert "conversations: would delete 1" in dry.stdout and "log_files: would delete 2" in dry.stdout
    assert len(_senders(settings)) == 3
    done = subprocess.run(
        [CONCIERGE, "purge", "--older-than", "0"], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "conversations: deleted 2" in done.stdout and "closed_tickets: deleted 2" in done.stdout
    assert sorted(_senders(settings)) == ["web-open"]
    bad = subprocess.run([CONCIERGE, "purge", "--older-than", "-3"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "DAYS" in bad.stderr


def test_retention_periods_come_from_the_settings(tmp_path):
    settings = Settings(var_dir=tmp_path / "var", retention_conversations_days=100)
    now = time.time()
    write_conversations(settings, {"web-a": [now - 40 * DAY], "web-b": [now - 101 * DAY]})
    assert purge(settings)["conversations"] == 1
    assert list(_senders(settings)) == ["web-a"]
    with pytest.raises(ValueError):
        Settings(retention_logs_days=-1)


def test_the_task_worker_purges_daily_at_three_in_japan(tmp_path):
    """The purge is a periodic task on the queue the task worker consumes (bot/tasks.py)."""
    from bot.tasks import TaskQueue

    settings = Settings(var_dir=tmp_path / "var")
    queue = TaskQueue(settings)
    periodic = [t.name for t in queue.huey._registry.periodic_tasks]
    # the worker's schedule (notices: every minute; booking reminders: hourly)
    assert periodic == ["purge", "notice_sweep_periodic", "booking_reminders"]
    at = datetime(2026, 12, 3, 18, 0)  # 03:00 JST, in the queue's UTC clock
    assert queue.daily_purge.task_class().validate_datetime(at)
    assert not queue.daily_purge.task_class().validate_datetime(at + timedelta(hours=1))
    later = TaskQueue(Settings(var_dir=tmp_path / "var", purge_hour_jst=5)).daily_purge
    assert later.task_class().validate_datetime(datetime(2026, 12, 3, 20, 0))
    now = time.time()
    write_conversations(settings, {"web-old": [now - 31 * DAY], "web-new": [now - DAY]})
    queue.daily_purge.call_local()  # what the worker runs when the time comes
    assert list(_senders(settings)) == ["web-new"]


# ---- through the running stack (Rasa + action server on PostgreSQL) and the widget's API ----


def _widget(web_url: str, sender: str, message: str) -> requests.Response:
    return requests.post(f"{web_url}/api/message", json={"sender": sender, "message": message}, timeout=60)


def test_delete_conversation_through_the_widget_erases_the_tracker(stack, stack_settings, web_url):
    sender = "erase-me-1234"
    session = requests.post(f"{web_url}/api/session", json={"sender": sender, "ward": "中原区"}, timeout=30)
    assert session.ok  # Rasa's HTTP API: the one call with the sender id in its path (loopback only)
    assert _widget(web_url, sender, "住民票の写しがほしい").ok
    assert _senders(stack_settings).get(f"web-{sender}", 0) > 0
    other = "keep-me-5678"
    assert _widget(web_url, other, "住民票の写しがほしい").ok
    resp = _widget(web_url, sender, "会話を削除")
    assert resp.status_code == 200
    said = resp.json()["messages"]
    assert said[0]["text"] == "この会話の記録を削除しました。ご利用ありがとうございました。"
    assert said[0]["custom"] == {"erased": True}
    senders = _senders(stack_settings)
    assert f"web-{sender}" not in senders and f"web-{other}" in senders
    english = _widget(web_url, other, "Delete conversation")
    assert english.json()["messages"][0]["text"].startswith("This conversation has been deleted")
    assert f"web-{other}" not in _senders(stack_settings)
    # the sender id, the key to a conversation, is in none of the servers' logs
    logs = "".join(p.read_text(errors="replace") for p in stack.log_dir.rglob("*.log"))
    assert sender not in logs and other not in logs


def test_purge_older_than_zero_on_the_stack_leaves_nothing_behind(stack, stack_settings, web_url):
    from bot.escalation import Escalations, RasaDelivery

    _widget(web_url, "purge-me-0001", "住民票の写しがほしい")
    _widget(web_url, "purge-me-0002", "中原区に住んでいます")
    _widget(web_url, "purge-me-0002", "職員と話したい")
    escalations = Escalations.from_settings(stack_settings, RasaDelivery.from_settings(stack_settings))
    ticket = escalations.open_ticket_of("web-purge-me-0002")
    assert ticket is not None
    escalations.close(ticket["id"], "案内済み")
    with session_scope(stack_settings.database_url) as session:
        session.add(_question(0))
    env = stack_settings.child_env()
    done = subprocess.run(
        [CONCIERGE, "purge", "--older-than", "0"], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    with session_scope(stack_settings.database_url) as session:
        assert session.query(Ticket).filter(Ticket.status == "closed").count() == 0
        assert session.query(UnresolvedQuestion).count() == 0
        open_senders = {t.sender for t in session.query(Ticket).filter(Ticket.status != "closed")}
    assert set(_senders(stack_settings)) <= open_senders  # only conversations staff are still on
    assert "web-purge-me-0001" not in _senders(stack_settings)
    # and the bot answers a purged resident afresh
    again = _widget(web_url, "purge-me-0001", "住民票の写しがほしい").json()["messages"]
    assert "区民課" in "".join(m.get("text") or "" for m in again)


# ---- the widget's API, without a Rasa server ----


@pytest.fixture()
def widget_app(tmp_path):
    from web import create_app

    settings = Settings(var_dir=tmp_path / "var", rasa_url="http://127.0.0.1:9", sqlite_busy_timeout_ms=200)
    return settings, create_app(settings).test_client()


@pytest.mark.parametrize(
    ("message", "erase"),
    [("会話を削除", True), ("会話を削除。", True), ("会話を削除して！", True), ("Delete conversation", True),
     ("ｄｅｌｅｔｅ　ｃｏｎｖｅｒｓａｔｉｏｎ", True), ("会話を削除するには？", False), ("会話", False)],
)  # fmt: skip
def test_only_the_whole_request_counts_as_erasure(message, erase):
    assert is_erase_request(message) is erase


def test_the_web_process_erases_even_when_rasa_is_down(widget_app):
    settings, client = widget_app
    write_conversations(settings, {"web-resident-01": [time.time()], "web-resident-02": [time.time()]})
    resp = client.post("/api/message", json={"sender": "resident-01", "message": "会話を削除"})
    assert resp.status_code == 200
    assert resp.json["messages"] == [
        {"text": "この会話の記録を削除しました。ご利用ありがとうございました。", "custom": {"erased": True}}
    ]
    assert list(_senders(settings)) == ["web-resident-02"]
    # anything else still goes to Rasa, which is down here
    assert client.post("/api/message", json={"sender": "resident-02", "message": "住民票"}).status_code == 503


def test_an_open_hand_off_is_said_to_stay_with_staff(widget_app):
    settings, client = widget_app
    write_conversations(settings, {"web-resident-03": [time.time()]})
    with session_scope(settings.database_url) as session:
        session.add(_ticket("web-resident-03", "new", closed_days_ago=None))
    said = client.post("/api/message", json={"sender": "resident-03", "message": "delete my conversation"})
    assert said.json["messages"][0]["text"].startswith("This conversation has been deleted. The request you")
    assert _senders(settings) == {}


def test_a_busy_tracker_store_gets_a_polite_failure(widget_app):
    settings, client = widget_app
    write_conversations(settings, {"web-resident-04": [time.time()]})
    holder = sqlite3.connect(settings.var_dir / "rasa_tracker.db")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        resp = client.post("/api/message", json={"sender": "resident-04", "message": "会話を削除"})
    finally:
        holder.rollback()
        holder.close()
    assert resp.status_code == 503 and resp.json["error"] == "erase_failed"
    assert "削除できませんでした" in resp.json["messages"][0]["text"]
    assert "web-resident-04" in _senders(settings)


def test_staff_replies_are_asked_for_with_the_sender_in_the_body_not_the_url(widget_app):
    _, client = widget_app
    assert client.get("/api/messages?sender=resident-05&after=0").status_code == 405
    assert client.post("/api/messages", json={"after": 0}).status_code == 400
    down = client.post("/api/messages", json={"sender": "resident-05", "after": 0})
    assert down.status_code == 503 and down.json["messages"] == []
    assert "GET" not in client.options("/api/messages").headers["Access-Control-Allow-Methods"]
    assert "POST" not in client.options("/api/notices").headers["Access-Control-Allow-Methods"]
