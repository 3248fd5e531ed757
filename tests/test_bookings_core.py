"""The booking core (bot/bookings): slots checked against the counter's hours and holidays, the
last seat to exactly one resident under concurrency on SQLite and PostgreSQL, cancel and change."""

from __future__ import annotations

import threading
from datetime import date, datetime, time, timedelta

import pytest

from bot.bookings import reservations, slots
from bot.bookings.reservations import BookingError
from bot.bookings.slots import JST, SlotError
from bot.knowledge import load_knowledge
from bot.settings import ROOT, Settings

KB = load_knowledge(ROOT / "knowledge")
TODAY = date(2027, 2, 1)  # a Monday
NOW = datetime.combine(TODAY, time(9, 0), JST)
TUESDAY = date(2027, 2, 2)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path, pg_databases):
    if request.param == "sqlite":
        yield Settings(var_dir=tmp_path).database_url
    else:
        with pg_databases("bookings") as url:
            yield url.replace("postgresql://", "postgresql+psycopg://")


def add(database_url: str, day: date = TUESDAY, start: str = "10:00", capacity: int = 1, **more):
    fields = {"ward": "中原区", "counter_id": "kumin", "minutes": 30, "by": "tanaka", "today": TODAY, **more}
    return slots.add_slot(database_url, KB, day=day, start=start, capacity=capacity, **fields)


def test_twenty_residents_at_once_for_the_last_seat_one_gets_it(database_url):
    add(database_url, capacity=1)
    add(database_url, start="10:30", capacity=2)
    results: list[object] = []
    barrier = threading.Barrier(20)

    def one(i: int) -> None:
        barrier.wait()
        try:
            results.append(
                reservations.book(
                    database_url,
                    ward="中原区",
                    counter_id="kumin",
                    day=TUESDAY,
                    start="10:00",
                    conversation=f"web-{i}",
                    now=NOW,
                )
            )
        except BookingError as err:
            results.append(err.reason)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    booked = [r for r in results if isinstance(r, reservations.Reservation)]
    assert len(booked) == 1 and results.count("full") == 19
    (slot,) = [s for s in slots.listing(database_url) if s.start == "10:00"]
    assert slot.booked == 1 and slot.free == 0
    offered = reservations.free_slots(database_url, "中原区", "kumin", now=NOW)
    assert [(s.start, s.free) for s in offered] == [("10:30", 2)]


def test_the_same_conversation_booking_twice_keeps_one_seat(database_url):
    add(database_url, capacity=3)
    first = reservations.book(
        database_url,
        ward="中原区",
        counter_id="kumin",
        day=TUESDAY,
        start="10:00",
        conversation="web-a",
        now=NOW,
    )
    again = reservations.book(
        database_url,
        ward="中原区",
        counter_id="kumin",
        day=TUESDAY,
        start="10:00",
        conversation="web-a",
        now=NOW,
    )
    assert again.number == first.number
    assert slots.listing(database_url)[0].booked == 1


def test_cancel_gives_the_seat_back_and_only_the_owner_may(database_url):
    add(database_url)
    mine = reservations.book(
        database_url,
        ward="中原区",
        counter_id="kumin",
        day=TUESDAY,
        start="10:00",
        conversation="web-a",
        now=NOW,
    )
    with pytest.raises(BookingError) as other:
        reservations.cancel(database_url, mine.number, conversation="web-b")
    assert other.value.reason == "not_yours"
    cancelled = reservations.cancel(database_url, mine.number.lower(), conversation="web-a")
    assert cancelled.status == "cancelled" and cancelled.slot.booked == 0
    with pytest.raises(BookingError) as twice:
        reservations.cancel(database_url, mine.number, conversation="web-a")
    assert twice.value.reason == "not_active"
    assert (
        reservations.book(
            database_url,
            ward="中原区",
            counter_id="kumin",
            day=TUESDAY,
            start="10:00",
            conversation="web-b",
            now=NOW,
        ).status
        == "booked"
    )


def test_change_takes_the_new_seat_before_giving_back_the_old(database_url):
    add(database_url)
    add(database_url, start="11:00")
    mine = reservations.book(
        database_url,
        ward="中原区",
        counter_id="kumin",
        day=TUESDAY,
        start="10:00",
        conversation="web-a",
        now=NOW,
    )
    reservations.book(
        database_url,
        ward="中原区",
        counter_id="kumin",
        day=TUESDAY,
        start="11:00",
        conversation="web-b",
        now=NOW,
    )
    with pytest.raises(BookingError) as full:
        reservations.change(
            database_url, mine.number, conversation="web-a", day=TUESDAY, start="11:00", now=NOW
        )
    assert full.value.reason == "full"
    assert reservations.find(database_url, mine.number).status == "booked"  # the old one stands
    add(database_url, start="11:30")
    moved = reservations.change(
        database_url, mine.number, conversation="web-a", day=TUESDAY, start="11:30", now=NOW
    )
    assert moved.slot.start == "11:30" and reservations.find(database_url, mine.number).status == "cancelled"
    assert [r.slot.start for r in reservations.of_conversation(database_url, "web-a", now=NOW)] == ["11:30"]


def test_bad_bookings_say_why(database_url):
    add(database_url)
    slot_id = slots.listing(database_url)[0].id
    book = dict(ward="中原区", counter_id="kumin", conversation="web-a", now=NOW)
    for day, start, reason in ((TODAY - timedelta(days=1), "10:00", "past"), (TUESDAY, "13:00", "no_slot")):
        with pytest.raises(BookingError) as err:
            reservations.book(database_url, day=day, start=start, **book)
        assert err.value.reason == reason
    assert slots.close(database_url, slot_id) and not slots.close(database_url, slot_id)
    with pytest.raises(BookingError) as closed:
        reservations.book(database_url, day=TUESDAY, start="10:00", **book)
    assert closed.value.reason == "closed"
    assert reservations.takes_bookings(database_url, "中原区", "kumin", now=NOW)
    assert not reservations.takes_bookings(database_url, "中原区", "eisei", now=NOW)


@pytest.mark.parametrize(
    ("day", "start", "minutes", "words"),
    [
        (date(2027, 2, 11), "10:00", 30, "受付時間外"),  # 建国記念の日
        (date(2027, 1, 2), "10:00", 30, "過去"),  # before TODAY
        (date(2027, 12, 29), "10:00", 30, "受付時間外"),  # the year-end closure
        (date(2027, 2, 6), "10:00", 30, "受付時間外"),  # the 1st Saturday: closed
        (TUESDAY, "16:45", 30, "受付時間外"),  # ends after 17:00
        (TUESDAY, "8:00", 30, "受付時間外"),  # before opening
        (TUESDAY, "25:00", 30, "時刻"),
        (TUESDAY, "10:00", 5, "長さ"),
    ],
)
def test_slots_outside_the_counters_hours_are_refused(tmp_path, day, start, minutes, words):
    url = Settings(var_dir=tmp_path).database_url
    with pytest.raises(SlotError) as err:
        add(url, day=day, start=start, minutes=minutes)
    assert words in str(err.value)


def test_a_second_saturday_morning_is_bookable_and_a_duplicate_is_refused(tmp_path):
    url = Settings(var_dir=tmp_path).database_url
    add(url, day=date(2027, 2, 13), start="09:00")  # 2nd Saturday, 8:30–12:30
    with pytest.raises(SlotError) as twice:
        add(url, day=date(2027, 2, 13), start="9:00")
    assert "すでに" in str(twice.value)
    with pytest.raises(SlotError):
        add(url, counter_id="no-such-counter")


def test_a_weekly_pattern_skips_holidays_and_exceptions(tmp_path):
    url = Settings(var_dir=tmp_path).database_url
    result = slots.add_weekly(
        url,
        KB,
        ward="中原区",
        counter_id="kumin",
        weekdays=["thu"],
        start="10:00",
        first=date(2027, 2, 1),
        last=date(2027, 3, 31),
        exceptions=[date(2027, 3, 4)],
        by="tanaka",
        today=TODAY,
    )
    days = [s.day for s in result.added]
    assert len(days) == 6  # 8 Thursdays: one excepted, one a public holiday (建国記念の日)
    assert date(2027, 3, 4) not in days and date(2027, 2, 11) not in days
    assert (date(2027, 3, 4), "除外日") in result.skipped
    assert any(day == date(2027, 2, 11) and "受付時間外" in why for day, why in result.skipped)
    holiday = slots.add_weekly(
        url,
        KB,
        ward="中原区",
        counter_id="kumin",
        weekdays=["thu"],
        start="10:00",
        first=date(2027, 4, 29),
        last=date(2027, 4, 29),
        by="tanaka",
        today=TODAY,
    )
    assert holiday.added == [] and "受付時間外" in holiday.skipped[0][1]  # 昭和の日
