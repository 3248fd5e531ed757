"""The LINE reminder the day before a booking (bot/bookings/reminders.py, issue 19), against the
local stand-in of the LINE API, with the clock frozen (`now` passed in): one push to the booking's
LINE user id, never twice (claimed first, also by runs at once), a refused push tried again next
hour, and the hourly task on the worker's queue. On SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, date, datetime, time, timedelta

import pytest
from line_support import FakeLineApi, calls_to, line_settings, start_line_api
from sqlalchemy import select, update

from bot.bookings import reminders, reservations, slots
from bot.bookings.slots import JST
from bot.knowledge import load_knowledge
from bot.settings import ROOT, Settings
from bot.storage.db import session_scope
from bot.storage.models import Booking
from bot.supervisor.processes import free_port

KB = load_knowledge(ROOT / "knowledge")
TODAY = date(2027, 2, 1)  # a Monday
TOMORROW = date(2027, 2, 2)
NOW = datetime.combine(TODAY, time(10, 5), JST)  # the day before, during the 10 o'clock run
ALICE, BOB = "U" + "a" * 32, "U" + "b" * 32


@pytest.fixture()
def line_api():
    server, url = start_line_api()
    yield url
    server.shutdown()
    FakeLineApi.reset()


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request, tmp_path, pg_databases, line_api):
    base = Settings(var_dir=tmp_path / "var")
    if request.param == "sqlite":
        yield line_settings(base, line_api, tmp_path)
        return
    with pg_databases("reminders") as url:
        yield line_settings(
            base, line_api, tmp_path, db_url=url.replace("postgresql://", "postgresql+psycopg://")
        )


def slot(settings: Settings, day: date = TOMORROW, start: str = "10:00", capacity: int = 5):
    return slots.add_slot(
        settings.database_url, KB, ward="中原区", counter_id="kumin", day=day, start=start,
        minutes=30, capacity=capacity, by="tanaka", today=TODAY,
    )  # fmt: skip


def book(settings: Settings, who: str, day: date = TOMORROW, start: str = "10:00", **more):
    fields = {"channel": "line", "topic": "印鑑登録", "now": NOW, **more}
    return reservations.book(
        settings.database_url, ward="中原区", counter_id="kumin", day=day, start=start, conversation=who,
        **fields,
    )  # fmt: skip


def reminded(settings: Settings, number: str) -> datetime | None:
    with session_scope(settings.database_url) as session:
        return session.scalar(select(Booking.reminded_at).where(Booking.number == number))


def pushes() -> list[tuple[str, str]]:
    return [(body["to"], body["messages"][0]["text"]) for body in calls_to("/push")]


def test_the_day_before_one_push_reaches_the_residents_line_and_a_second_run_sends_nothing(settings, caplog):
    slot(settings)
    slot(settings, day=TOMORROW + timedelta(days=1))  # the day after tomorrow
    mine = book(settings, ALICE)
    book(settings, "web-0123456789abcdef", channel="widget")  # the widget offers its .ics instead
    cancelled = book(settings, BOB)
    reservations.cancel(settings.database_url, cancelled.number, conversation=BOB)
    later = book(settings, BOB, day=TOMORROW + timedelta(days=1))
    with caplog.at_level(logging.INFO):
        counts = reminders.send_reminders(settings, NOW)
    assert counts == {"due": 1, "sent": 1, "retry": 0, "failed": 0, "taken": 0}
    assert pushes() == [
        (
            ALICE,
            "明日 2月2日（火）10:00〜10:30、中原区役所 区民課でご相談の予約があります"
            f"（予約番号 {mine.number}）。"
            "持ち物: 登録する印鑑、本人確認書類（マイナンバーカード、運転免許証など）。"
            "変更・キャンセルは「予約を確認」から。",
        )
    ]
    assert reminded(settings, mine.number) is not None
    assert reminded(settings, later.number) is None
    assert reminders.send_reminders(settings, NOW + timedelta(hours=1))["due"] == 0  # the next hour
    assert len(calls_to("/push")) == 1
    assert ALICE not in caplog.text and BOB not in caplog.text  # the LINE user id is in no log line
    # the day after tomorrow's booking is reminded on its own day before
    next_day = reminders.send_reminders(settings, NOW + timedelta(days=1))
    assert next_day["sent"] == 1 and pushes()[-1][0] == BOB and "2月3日（水）" in pushes()[-1][1]


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_push_line_refuses_for_a_while_is_tried_again_at_the_next_run(settings, status):
    slot(settings)
    mine = book(settings, ALICE)
    FakeLineApi.push_failures, FakeLineApi.push_status = 1, status
    assert reminders.send_reminders(settings, NOW)["retry"] == 1
    assert reminded(settings, mine.number) is None  # the claim given back
    assert reminders.send_reminders(settings, NOW + timedelta(hours=1))["sent"] == 1
    assert FakeLineApi.statuses == [status, 200] and [to for to, _ in pushes()] == [ALICE, ALICE]
    assert reminders.send_reminders(settings, NOW + timedelta(hours=2))["due"] == 0


def test_a_push_refused_for_good_is_not_tried_again_and_one_line_took_before_is_done(settings):
    slot(settings)
    refused, taken = book(settings, ALICE), book(settings, BOB)
    FakeLineApi.push_failures, FakeLineApi.push_status = 1, 400
    counts = reminders.send_reminders(settings, NOW)
    assert counts["failed"] == 1 and counts["sent"] == 1
    assert reminded(settings, refused.number) is not None and reminded(settings, taken.number) is not None
    with session_scope(settings.database_url) as session:  # BOB's again, as if our answer was lost
        session.execute(update(Booking).where(Booking.number == taken.number).values(reminded_at=None))
    FakeLineApi.push_failures, FakeLineApi.push_status = 1, 409  # LINE: this retry key was taken
    assert reminders.send_reminders(settings, NOW + timedelta(hours=1))["sent"] == 1
    assert reminded(settings, taken.number) is not None


def test_the_retry_key_is_the_same_for_every_try_of_one_reminder(settings):
    slot(settings)
    mine = book(settings, ALICE)
    (item,) = reminders.due(settings, NOW)
    assert item.number == mine.number and reminders.retry_key(item) == reminders.retry_key(item)
    assert len(reminders.retry_key(item)) == 36  # a UUID, as LINE asks


def test_an_unreachable_line_api_gives_the_claim_back(settings):
    slot(settings)
    mine = book(settings, ALICE)
    gone = settings.replace(line_api_base=f"http://127.0.0.1:{free_port()}", line_api_timeout_s=1.0)
    assert reminders.send_reminders(gone, NOW)["retry"] == 1
    assert reminded(settings, mine.number) is None
    assert reminders.send_reminders(settings, NOW + timedelta(hours=1))["sent"] == 1


def test_runs_at_once_remind_each_resident_once(settings):
    slot(settings)
    residents = [f"U{i:032x}" for i in range(4)]
    for who in residents:
        book(settings, who)
    FakeLineApi.delay = 0.1  # pushes overlap with the other runs' claims
    barrier = threading.Barrier(4)
    results: list[dict] = []

    def run() -> None:
        barrier.wait()
        results.append(reminders.send_reminders(settings, NOW))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(to for to, _ in pushes()) == residents  # each exactly once
    assert sum(r["sent"] for r in results) == 4


@pytest.mark.parametrize("hour", [0, 6, 8, 21, 23])
def test_no_push_at_night(settings, hour):
    slot(settings)
    book(settings, ALICE)
    at = datetime.combine(TODAY, time(hour, 0), JST)
    assert reminders.send_reminders(settings, at)["due"] == 0 and pushes() == []


def test_the_days_own_morning_tries_what_the_day_before_could_not_until_the_slot_starts(settings):
    slot(settings, day=TODAY + timedelta(days=1), start="09:00")
    slot(settings, day=TODAY + timedelta(days=1), start="14:00")
    early, late = book(settings, ALICE, start="09:00"), book(settings, BOB, start="14:00")
    made_today = book(settings, "U" + "c" * 32, start="14:00")
    with session_scope(settings.database_url) as session:  # made in the small hours of the slot's day
        session.execute(
            update(Booking)
            .where(Booking.number == made_today.number)
            .values(created_at=datetime.combine(TOMORROW, time(0, 30), JST).astimezone(UTC))
        )
    the_day = datetime.combine(TOMORROW, time(10, 0), JST)  # 09:00 has begun, 14:00 not
    counts = reminders.send_reminders(settings, the_day)
    assert counts["sent"] == 1
    ((to, text),) = pushes()
    assert to == BOB and text.startswith("本日 2月2日（火）14:00〜14:30") and late.number in text
    assert reminded(settings, early.number) is None


def test_without_a_counter_named_service_the_general_things_to_bring_are_said(settings):
    slot(settings)
    book(settings, ALICE, topic=None)
    reminders.send_reminders(settings, NOW)
    ((_, text),) = pushes()
    assert "持ち物: 本人確認書類（マイナンバーカード・運転免許証など）と、ご相談に関係する書類。" in text


def test_the_english_variation_is_filled_too(settings):
    slot(settings)
    mine = book(settings, ALICE)
    (item,) = reminders.due(settings, NOW)
    text = reminders.reminder_text(KB, item, TODAY, "en")
    assert text.startswith("Reminder: you have a consultation booked tomorrow, Tue 2 Feb, 10:00–10:30")
    assert "Citizens' Section" in text and mine.number in text and "Please bring: " in text


def test_without_line_credentials_nothing_is_sent_and_one_warning_is_logged(settings, caplog):
    slot(settings)
    mine = book(settings, ALICE)
    off = settings.replace(line_channel_secret="", line_channel_access_token="")
    reminders._warned_line_off.clear()
    with caplog.at_level(logging.WARNING):
        assert reminders.send_reminders(off, NOW)["sent"] == 0
        assert reminders.send_reminders(off, NOW)["sent"] == 0
    assert caplog.text.count("booking reminders are not sent") == 1
    assert pushes() == [] and reminded(settings, mine.number) is None  # kept for when LINE is on


def test_the_reminder_is_an_hourly_task_of_the_workers_queue(tmp_path):
    from bot.tasks import TaskQueue

    queue = TaskQueue(Settings(var_dir=tmp_path / "var"))
    assert "booking_reminders" in [t.name for t in queue.huey._registry.periodic_tasks]
    check = queue.booking_reminders.task_class().validate_datetime
    assert all(check(datetime(2027, 2, 1, h, 0)) for h in range(24))
    assert not check(datetime(2027, 2, 1, 10, 30))
    queue.booking_reminders.call_local()  # what the worker runs: nothing due, LINE off, no error
