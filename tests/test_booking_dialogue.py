"""Booking in the conversation (issue 19): the booking payloads, the form's turns
(bot/bookings/dialogue.py) on SQLite — asking with quick replies, booking, every refusal with the
next free slots, the database away — seeing, changing and cancelling only one's own bookings, and
the .ics file."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest
from icalendar import Calendar

from bot.bookings import dialogue, reservations, slots
from bot.bookings.calendar import booking_ics
from bot.bookings.dialogue import Context, Found, Message, Say
from bot.bookings.slots import JST
from bot.knowledge import load_knowledge
from bot.payloads import NUMBER_PATTERN, OFFERS, KnowledgeIds, screen
from bot.settings import ROOT, Settings

KB = load_knowledge(ROOT / "knowledge")
IDS = KnowledgeIds(ROOT / "knowledge")
TODAY = date(2027, 2, 1)  # a Monday
NOW = datetime.combine(TODAY, time(9, 0), JST)
TUESDAY, WEDNESDAY = date(2027, 2, 2), date(2027, 2, 3)
ME, OTHER = "web-resident-1", "web-resident-2"
DOWN = "postgresql+psycopg://postgres@127.0.0.1:1/none"  # nothing listens there


@pytest.fixture()
def database_url(tmp_path) -> str:
    return Settings(var_dir=tmp_path).database_url


def add(database_url: str, day: date = TUESDAY, start: str = "10:00", capacity: int = 1):
    return slots.add_slot(
        database_url, KB, ward="中原区", counter_id="kumin", day=day, start=start, capacity=capacity,
        by="tanaka", today=TODAY,
    )  # fmt: skip


def ctx(database_url: str, conversation: str = ME, **more) -> Context:
    fields = {"channel": "widget", "lang": "ja", "now": NOW, **more}
    return Context(database_url=database_url, kb=KB, conversation=conversation, **fields)


def book_message(**entities: str) -> Message:
    return Message("book", entities, OFFERS["book"].payload(**entities))


def full(day: date = TUESDAY, start: str = "10:00", **more: str) -> Message:
    return book_message(ward="中原区", counter="kumin", date=day.isoformat(), time=start, **more)


def names(says: list[Say]) -> list[str]:
    return [s.response for s in says]


def offered(says: list[Say]) -> list[str]:
    return [b["payload"] for s in says for b in s.buttons]


# ---- payloads ---------------------------------------------------------------------------------


def test_the_booking_number_pattern_is_the_numbers_alphabet_and_length():
    expected = f"[{reservations.NUMBER_ALPHABET}]{{{reservations.NUMBER_LENGTH}}}"
    assert expected == NUMBER_PATTERN


def test_booking_payloads_are_screened():
    good = '/book{"ward": "中原区", "counter": "kumin", "date": "2027-02-02", "time": "10:00"}'
    assert screen(good, IDS) == good
    assert screen('/book{"ward": "中原区", "counter": "kumin"}', IDS)
    assert screen("/book", IDS) == "/book"
    assert screen("/my_bookings", IDS) == "/my_bookings"
    assert screen('/cancel_booking{"number": "ACDE3467"}', IDS)
    assert screen("/stop_booking", IDS) == "/stop_booking"
    refused = [
        '/book{"ward": "中原区", "counter": "kumin", "date": "2027-2-2"}',  # not YYYY-MM-DD
        '/book{"counter": "kumin", "time": "10:00:00"}',
        '/book{"counter": "kumin", "time": "10:00\\n"}',
        '/book{"counter": "no-such-counter"}',
        '/book{"ward": "横浜市"}',
        '/book{"counter": "kumin", "name": "山田"}',  # an entity never offered
        '/book{"counter": "kumin", "date": 20270202}',
        '/cancel_booking{"number": "ABCDEFGH"}',  # B is not in the alphabet
        '/cancel_booking{"number": "acde3467"}',
        '/cancel_booking{"number": "ACDE34679"}',
        '/book{"change": "ACDE346"}',
    ]
    assert [p for p in refused if screen(p, IDS) is not None] == []


# ---- the form -----------------------------------------------------------------------------------


def test_a_full_payload_books_at_once_with_the_number_what_to_bring_and_the_card(database_url):
    add(database_url)
    turn = dialogue.step(ctx(database_url), {}, full())
    assert turn.done and turn.booked is not None and set(turn.slots.values()) == {None}
    (done,) = turn.says
    assert done.response == "utter_booking_done"
    assert done.values["number"] == turn.booked.number
    assert done.values["when"] == "2月2日（火）10:00〜10:30"
    assert done.values["office"] == "中原区役所" and done.values["counter"] == "区民課"
    assert done.custom["booking"]["number"] == turn.booked.number
    assert offered([done]) == ["/my_bookings"]
    stored = reservations.find(database_url, turn.booked.number)
    assert stored.conversation == ME and stored.channel == "widget" and stored.status == "booked"


def test_what_to_bring_comes_from_the_entry_the_resident_was_answered_with(database_url):
    add(database_url)
    start = dialogue.step(
        ctx(database_url, last_counter="kumin", last_topic="住民票の写しの交付"),
        {},
        Message("request_booking", {}, "予約したい"),
    )
    (propose,) = start.says
    assert propose.response == "utter_booking_propose"
    assert propose.values["topic"] == "住民票の写しの交付" and propose.values["counter"] == "区民課"
    this = propose.buttons[0]["payload"]
    assert screen(this, IDS) == this and '"counter": "kumin"' in this
    # この窓口で予約 → the days; a day → the times; a time → booked, with the topic's bring list
    days = dialogue.step(
        ctx(database_url, last_counter="kumin", last_topic="住民票の写しの交付", known_ward="中原区"),
        start.slots,
        book_message(counter="kumin", ward="中原区"),
    )
    assert days.says[0].response == "utter_booking_which_day"
    assert days.slots["booking_topic"] == "住民票の写しの交付"
    day_payload = days.says[0].buttons[0]["payload"]
    day = {"ward": "中原区", "counter": "kumin", "date": "2027-02-02"}
    times = dialogue.step(ctx(database_url), days.slots, Message("book", day, day_payload))
    assert times.says[0].response == "utter_booking_which_time"
    assert [b["title"] for b in times.says[0].buttons] == ["10:00〜10:30"]
    done = dialogue.step(ctx(database_url), times.slots, full())
    assert "本人確認書類" in done.says[0].values["bring"]
    assert reservations.find(database_url, done.booked.number).topic == "住民票の写しの交付"


def test_the_days_offered_are_those_with_free_slots_within_line_limits(database_url):
    for i in range(15):  # three weeks of weekdays from Tuesday on; Feb 11 is a public holiday
        day = date(2027, 2, 2 + i)
        try:
            add(database_url, day=day)
        except slots.SlotError:
            continue
    reservations.book(database_url, ward="中原区", counter_id="kumin", day=TUESDAY, start="10:00",
                      conversation=OTHER, now=NOW)  # fmt: skip
    turn = dialogue.step(ctx(database_url), {}, book_message(ward="中原区", counter="kumin"))
    (ask,) = turn.says
    assert ask.response == "utter_booking_which_day" and len(ask.buttons) <= 13
    titles = [b["title"] for b in ask.buttons]
    assert titles[0] == "2月3日（水）" and "2月2日（火）" not in titles and "2月11日（木）" not in titles
    assert titles[-1] == "予約をやめる" and all(len(t) <= 20 for t in titles)
    assert all(screen(p, IDS) == p for p in offered(turn.says))


def test_a_ward_is_asked_when_none_is_known(database_url):
    add(database_url)
    turn = dialogue.step(ctx(database_url), {}, book_message(counter="kumin"))
    assert names(turn.says) == ["utter_booking_which_ward"]
    assert '/book{"ward": "中原区", "counter": "kumin"}' in offered(turn.says)


def test_a_typed_time_is_confirmed_and_yes_is_the_full_payload(database_url):
    add(database_url)
    state = {"booking_counter": "kumin", "booking_ward": "中原区", "booking_date": "2027-02-02"}
    turn = dialogue.step(ctx(database_url), state, Message("inform_ward", {}, "１０時でお願いします"))
    (ask,) = turn.says
    assert ask.response == "utter_booking_confirm" and ask.values["when"] == "2月2日（火）10:00"
    yes, no, stop = (b["payload"] for b in ask.buttons)
    assert yes == full().text and '"time"' not in no and stop == "/stop_booking"
    assert not turn.done and turn.requested == "booking_time" and turn.slots["booking_time"] == "10:00"
    assert reservations.of_conversation(database_url, ME, now=NOW) == []  # nothing booked before はい
    again = dialogue.step(ctx(database_url), turn.slots, Message("deny", {}, "いいえ"))
    assert names(again.says) == ["utter_booking_which_time"] and again.slots["booking_time"] is None
    typed_yes = dialogue.step(ctx(database_url), turn.slots, Message("greet", {}, "はい。"))
    assert typed_yes.booked is not None and typed_yes.booked.slot.start == "10:00"


def test_something_typed_where_a_choice_was_asked_gets_the_choices_again(database_url):
    add(database_url)
    state = {"booking_counter": "kumin", "booking_ward": "中原区"}
    turn = dialogue.step(ctx(database_url), state, Message("nlu_fallback", {}, "よくわからない"))
    assert names(turn.says) == ["utter_booking_choose", "utter_booking_which_day"] and not turn.done


def test_a_question_typed_where_a_choice_was_asked_stops_the_form_and_is_answered(database_url):
    from bot.answering.composer import Answer

    add(database_url)
    answer = Answer(text="印鑑登録は区民課です", counter_id="kumin")
    found = ctx(database_url, find=lambda text, ward: Found(answer, "kumin", "印鑑登録"))
    state = {"booking_counter": "kumin", "booking_ward": "中原区"}
    turn = dialogue.step(found, state, Message("ask_procedure", {}, "印鑑登録はどこ"))
    assert turn.done and names(turn.says) == ["utter_booking_stopped", ""] and turn.says[1].answer is answer


def test_the_topic_is_asked_and_answered_to_find_the_counter(database_url):
    add(database_url)
    from bot.answering.composer import Answer

    answer = Answer(text="住民票は区民課です", counter="区民課", counter_id="kumin", ward="中原区")
    asked: list[str] = []

    def find(text: str, ward: str | None) -> Found:
        asked.append(text)
        return Found(answer, "kumin", "住民票の写しの交付")

    start = dialogue.step(ctx(database_url, find=find), {}, Message("request_booking", {}, "予約したい"))
    assert names(start.says) == ["utter_booking_ask_topic"] and not start.done
    turn = dialogue.step(
        ctx(database_url, find=find), start.slots, Message("ask_procedure", {}, "住民票がほしい")
    )
    assert asked == ["住民票がほしい"]
    assert turn.says[0].answer is answer and turn.says[1].response == "utter_booking_propose"
    assert turn.says[1].values["topic"] == "住民票の写しの交付"  # the entry's title, not the words typed
    tapped = dialogue.step(ctx(database_url), turn.slots, book_message(ward="中原区", counter="kumin"))
    assert tapped.slots["booking_topic"] == "住民票の写しの交付"  # kept for the booking and its bring list


def test_a_counter_named_in_the_request_is_taken(database_url):
    add(database_url)
    turn = dialogue.step(
        ctx(database_url, known_ward="中原区"), {}, Message("request_booking", {}, "区民課に予約したい")
    )
    assert names(turn.says) == ["utter_booking_which_day"]


def test_a_counter_that_takes_no_bookings_is_said_plainly_with_its_hours(database_url):
    add(database_url)
    turn = dialogue.step(ctx(database_url), {}, book_message(ward="中原区", counter="hoken-nenkin"))
    assert turn.done and names(turn.says) == ["utter_booking_not_bookable"]
    assert "8:30" in turn.says[0].values["hours"] and turn.says[0].values["counter"] == "保険年金課"


def test_a_full_slot_offers_the_next_free_slots_that_book_at_once(database_url):
    add(database_url)
    add(database_url, start="10:30")
    add(database_url, day=WEDNESDAY, start="14:00", capacity=3)
    dialogue.step(ctx(database_url, conversation=OTHER), {}, full())
    turn = dialogue.step(ctx(database_url), {}, full())
    assert turn.done and turn.booked is None
    (said,) = turn.says
    assert said.response == "utter_booking_full"
    assert [b["title"] for b in said.buttons] == ["2月2日（火）10:30", "2月3日（水）14:00"]
    assert offered(turn.says)[0] == full(start="10:30").text
    again = dialogue.step(ctx(database_url), {}, full(start="10:30"))
    assert again.booked is not None


@pytest.mark.parametrize(
    ("day", "start", "response"),
    [
        (date(2027, 1, 29), "10:00", "utter_booking_past"),
        (TUESDAY, "11:00", "utter_booking_no_slot"),
        (TUESDAY, "18:00", "utter_booking_outside_hours"),
        (date(2027, 2, 6), "10:00", "utter_booking_outside_hours"),  # a 1st Saturday: closed
    ],
)
def test_bad_times_are_refused_with_the_reason(database_url, day, start, response):
    add(database_url)
    turn = dialogue.step(ctx(database_url), {}, full(day, start))
    assert turn.done and turn.booked is None
    assert turn.says[0].response == response
    assert offered(turn.says) == [full().text]
    assert reservations.of_conversation(database_url, ME, now=NOW) == []


def test_a_closed_slot_and_no_other_free_slot(database_url):
    slot = add(database_url)
    slots.close(database_url, slot.id)
    turn = dialogue.step(ctx(database_url), {}, full())
    assert names(turn.says) == ["utter_booking_closed", "utter_booking_no_other"]


def test_a_past_day_from_a_partial_payload_shows_the_free_days(database_url):
    add(database_url)
    turn = dialogue.step(
        ctx(database_url), {}, book_message(ward="中原区", counter="kumin", date="2027-01-29")
    )
    assert names(turn.says) == ["utter_booking_past", "utter_booking_which_day"] and not turn.done


def test_the_database_away_is_a_polite_try_again_later():
    turn = dialogue.step(ctx(DOWN), {}, full())
    assert turn.done and names(turn.says) == ["utter_booking_unavailable"]
    assert names(dialogue.manage(ctx(DOWN), Message("my_bookings", {}, "予約を確認"))) == [
        "utter_booking_unavailable"
    ]


def test_leaving_the_form(database_url):
    turn = dialogue.step(
        ctx(database_url), {"booking_counter": "kumin"}, Message("stop_booking", {}, "/stop_booking")
    )
    assert turn.done and names(turn.says) == ["utter_booking_stopped"] and set(turn.slots.values()) == {None}
    person = dialogue.step(
        ctx(database_url), {"booking_counter": "kumin"}, Message("request_human", {}, "人と話したい")
    )
    assert names(person.says) == ["utter_booking_stopped"] and offered(person.says) == ["/request_human"]


# ---- seeing, changing, cancelling ---------------------------------------------------------------


def test_my_bookings_lists_only_this_conversations_with_change_and_cancel(database_url):
    add(database_url, capacity=2)
    add(database_url, start="10:30")
    mine = dialogue.step(ctx(database_url), {}, full()).booked
    theirs = dialogue.step(ctx(database_url, conversation=OTHER), {}, full(start="10:30")).booked
    (listed,) = dialogue.manage(ctx(database_url), Message("my_bookings", {}, "予約を確認"))
    assert listed.response == "utter_bookings_list"
    assert mine.number in listed.values["lines"] and theirs.number not in listed.values["lines"]
    assert offered([listed]) == [
        f'/book{{"ward": "中原区", "counter": "kumin", "change": "{mine.number}"}}',
        f'/cancel_booking{{"number": "{mine.number}"}}',
    ]
    assert all(screen(p, IDS) == p for p in offered([listed]))
    (none,) = dialogue.manage(ctx(database_url, conversation="web-nobody"), Message("my_bookings", {}, "x"))
    assert none.response == "utter_bookings_none"


def test_cancelling_only_ones_own_booking(database_url):
    add(database_url)
    theirs = dialogue.step(ctx(database_url, conversation=OTHER), {}, full()).booked
    (refused,) = dialogue.manage(
        ctx(database_url), Message("cancel_booking", {"number": theirs.number}, "/x")
    )
    (unknown,) = dialogue.manage(ctx(database_url), Message("cancel_booking", {"number": "ACDE3467"}, "/x"))
    assert refused.response == unknown.response == "utter_booking_not_found"  # nothing revealed
    assert refused.values == {} and reservations.find(database_url, theirs.number).status == "booked"
    (gone,) = dialogue.manage(
        ctx(database_url, conversation=OTHER), Message("cancel_booking", {"number": theirs.number}, "/x")
    )
    assert gone.response == "utter_booking_cancelled" and gone.values["when"] == "2月2日（火）10:00〜10:30"
    assert reservations.find(database_url, theirs.number).status == "cancelled"
    (again,) = dialogue.manage(
        ctx(database_url, conversation=OTHER), Message("cancel_booking", {"number": theirs.number}, "/x")
    )
    assert again.response == "utter_booking_not_active"


def test_cancel_without_a_number_asks_which(database_url):
    add(database_url)
    add(database_url, start="10:30")
    first = dialogue.step(ctx(database_url), {}, full()).booked
    second = dialogue.step(ctx(database_url), {}, full(start="10:30")).booked
    (which,) = dialogue.manage(ctx(database_url), Message("cancel_booking", {}, "予約を取り消したい"))
    assert which.response == "utter_bookings_which_cancel"
    assert offered([which]) == [OFFERS["cancel_booking"].payload(number=r.number) for r in (first, second)]
    assert [b["title"] for b in which.buttons] == [f"{first.number}を取消", f"{second.number}を取消"]


def test_changing_a_booking_books_the_new_time_then_cancels_the_old(database_url):
    add(database_url)
    add(database_url, day=WEDNESDAY, start="14:00")
    old = dialogue.step(ctx(database_url), {}, full()).booked
    (which,) = dialogue.manage(ctx(database_url), Message("change_booking", {}, "予約を変更したい"))
    assert which.response == "utter_bookings_which_change"
    pick = dialogue.step(
        ctx(database_url), {}, book_message(ward="中原区", counter="kumin", change=old.number)
    )
    assert pick.says[0].response == "utter_booking_which_day" and pick.slots["booking_change"] == old.number
    assert offered(pick.says)[0] == OFFERS["book"].payload(
        ward="中原区", counter="kumin", change=old.number, date="2027-02-03"
    )
    done = dialogue.step(ctx(database_url), pick.slots, full(WEDNESDAY, "14:00", change=old.number))
    assert names(done.says) == ["utter_booking_changed", "utter_booking_done"]
    assert reservations.find(database_url, old.number).status == "cancelled"
    assert [r.number for r in reservations.of_conversation(database_url, ME, now=NOW)] == [done.booked.number]
    # someone else's booking number in a change payload changes nothing and says nothing of it
    other = dialogue.step(
        ctx(database_url, conversation=OTHER), {}, full(WEDNESDAY, "14:00", change=done.booked.number)
    )
    assert names(other.says) == ["utter_booking_not_found"]
    assert reservations.find(database_url, done.booked.number).status == "booked"


# ---- the .ics -----------------------------------------------------------------------------------


def test_the_ics_holds_the_booking_in_tokyo_time(database_url):
    add(database_url)
    booked = reservations.book(database_url, ward="中原区", counter_id="kumin", day=TUESDAY, start="10:00",
                               conversation=ME, topic="住民票の写しの交付", now=NOW)  # fmt: skip
    parsed = Calendar.from_ical(booking_ics(booked, KB))
    (event,) = parsed.walk("VEVENT")
    assert str(event["UID"]).startswith(f"booking-{booked.number}@")
    start, end = event.decoded("DTSTART"), event.decoded("DTEND")
    assert start == datetime(2027, 2, 2, 10, 0, tzinfo=JST) and end == datetime(
        2027, 2, 2, 10, 30, tzinfo=JST
    )
    assert str(start.tzinfo) == "Asia/Tokyo"
    assert str(event["SUMMARY"]) == f"区民課 相談予約（{booked.number}）"
    assert str(event["LOCATION"]) == "中原区役所 川崎市中原区小杉町3-245"
    assert booked.number in str(event["DESCRIPTION"]) and "本人確認書類" in str(event["DESCRIPTION"])
    assert parsed.walk("VTIMEZONE")  # calendars that need the zone get it


def test_a_typed_day_is_read(database_url):
    add(database_url, day=WEDNESDAY)
    state = {"booking_counter": "kumin", "booking_ward": "中原区"}
    turn = dialogue.step(ctx(database_url), state, Message("nlu_fallback", {}, "２月３日がいいです"))
    assert names(turn.says) == ["utter_booking_which_time"] and turn.slots["booking_date"] == "2027-02-03"
    assert dialogue.typed_date("1月5日", NOW) == "2028-01-05"  # a month gone by is next year's
    assert dialogue.typed_date("2027-02-30", NOW) is None
    assert [dialogue.typed_time(t) for t in ("10時半", "9:05", "14時15分", "25時", "十時")] == [
        "10:30", "09:05", "14:15", None, None,
    ]  # fmt: skip
