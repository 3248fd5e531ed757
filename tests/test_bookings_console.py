"""The console's booking pages (issue 19), in the real app on SQLite with the knowledge's counters and
the console's clock frozen on a Monday: publishing slots and the reasons a day is refused, each
role's wards, the day view with arrived / no-show, and a staff cancellation whose message goes out
through the staff-reply delivery (a recording stand-in here; the Rasa tracker in the Chromium test)."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from datetime import UTC, date, datetime, time
from html import unescape

import pytest
from console_support import FormsAndIds
from console_support import logged_in as _client

from bot.bookings import reservations, slots
from bot.bookings.slots import JST
from bot.console.accounts import add_user, audit_log
from bot.escalation import NOT_DELIVERED_LINE, Addressee, ChannelDelivery, DeliveryError, RasaDelivery
from bot.settings import ROOT, Settings
from web import console_text, create_app

PASSWORD = "correct-horse-battery"
TODAY = date(2027, 2, 1)  # a Monday; 2027-02-11 and 02-23 are public holidays
TUESDAY = date(2027, 2, 2)
PHONE = "090-1234-5678"


class Clock:
    """The console's clock (app.extensions["clock"]), set to a Japan time a test can move."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment.astimezone(UTC)


class RecordingDelivery:
    """Stands in for the console's ChannelDelivery (its escalations' delivery): what was sent to
    whom, or DeliveryError as when the bot's server or LINE cannot be reached."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str | None, str, int, str]] = []
        self.fail = False

    def send(self, target, text: str) -> None:
        if self.fail:
            raise DeliveryError(NOT_DELIVERED_LINE)
        self.sent.append((target.sender, target.channel, target.kind, target.id, text))

    def resume(self, ticket, text: str) -> None:  # pragma: no cover - tickets only
        raise AssertionError("not used by bookings")


@pytest.fixture()
def console(tmp_path):
    settings = Settings(
        knowledge_dir=ROOT / "knowledge", var_dir=tmp_path / "var", db_url=f"sqlite:///{tmp_path / 'b.db'}"
    )
    app = create_app(settings)
    app.extensions["clock"] = Clock(datetime.combine(TODAY, time(9, 0), JST))
    app.extensions["console"].escalations.delivery = RecordingDelivery()
    for name, role in (("tanaka", "ward_staff"), ("ito", "editor"), ("kato", "admin")):
        add_user(settings.database_url, name, role, PASSWORD, ["中原区"] if role == "ward_staff" else None)
    return app, settings


def _post(client, url: str, **data):
    return client.post(url, data={"csrf_token": client.token, **data})


def _text(resp) -> str:
    return unescape(resp.get_data(as_text=True))


def _actions(settings) -> set[tuple[str, str, str]]:
    return {(r["user"], r["action"], r["target"]) for r in audit_log(settings.database_url)}


def _slot(app, settings, ward="中原区", day=TUESDAY, start="10:00", capacity=1):
    kb = app.extensions["console"].knowledge()
    return slots.add_slot(
        settings.database_url, kb, ward=ward, counter_id="kumin", day=day, start=start, capacity=capacity,
        by="kato", today=TODAY,
    )  # fmt: skip


def _book(settings, ward="中原区", day=TUESDAY, start="10:00", conversation=None, channel="widget"):
    return reservations.book(
        settings.database_url, ward=ward, counter_id="kumin", day=day, start=start,
        conversation=conversation or f"web-{uuid.uuid4().hex[:8]}", channel=channel, topic="住民票の写し",
        now=datetime.combine(TODAY, time(9, 0), JST),
    )  # fmt: skip


ONE = {"ward": "中原区", "counter": "kumin", "day": "2027-02-02", "start": "10:00", "minutes": "30",
       "capacity": "2"}  # fmt: skip


def test_ward_staff_publish_and_see_their_wards_only(console):
    app, settings = console
    tanaka = _client(app, "tanaka")
    page = _text(tanaka.get("/staff/bookings/slots"))
    assert '<option value="中原区" selected>' in page and 'value="幸区"' not in page
    assert _post(tanaka, "/staff/bookings/slots", **{**ONE, "ward": "幸区"}).status_code == 403
    weekly = {**ONE, "ward": "幸区", "weekdays": ["tue"], "first": "2027-02-01", "last": "2027-02-28"}
    assert _post(tanaka, "/staff/bookings/slots/weekly", **weekly).status_code == 403
    assert slots.listing(settings.database_url) == []
    done = _post(tanaka, "/staff/bookings/slots", **ONE)
    assert done.status_code == 302 and done.headers["Location"].endswith("/staff/bookings/slots")
    (mine,) = slots.listing(settings.database_url)
    assert (mine.ward, mine.counter_id, mine.day, mine.start, mine.capacity) == ("中原区", "kumin", TUESDAY,
                                                                                 "10:00", 2)  # fmt: skip
    assert ("tanaka", "slot-add", f"slot:{mine.id}") in _actions(settings)
    page = _text(tanaka.get("/staff/bookings/slots"))
    assert "2月2日（火） 10:00〜10:30（定員2人）の予約枠を公開しました。" in page
    assert "0／2" in page and "受付中" in page
    ito = _client(app, "ito")  # an editor publishes for any ward
    assert _post(ito, "/staff/bookings/slots", **{**ONE, "ward": "幸区"}).status_code == 302
    saiwai = next(s for s in slots.listing(settings.database_url) if s.ward == "幸区")
    theirs = _book(settings, ward="幸区")
    listing = _text(tanaka.get("/staff/bookings/slots")).split("これからの予約枠")[1]
    assert "幸区" not in listing and "中原区役所 区民課" in listing
    assert _post(tanaka, f"/staff/bookings/slots/{saiwai.id}/close").status_code == 404
    assert tanaka.get("/staff/bookings?day=2027-02-02&ward=幸区").status_code == 404
    assert theirs.number not in _text(tanaka.get("/staff/bookings?day=2027-02-02"))
    assert theirs.number in _text(ito.get("/staff/bookings?day=2027-02-02"))
    assert tanaka.get(f"/staff/bookings/2027-02-02/{theirs.id}/cancel").status_code == 404
    assert _post(tanaka, f"/staff/bookings/2027-02-02/{theirs.id}/cancel", message="x").status_code == 404
    assert _post(tanaka, f"/staff/bookings/2027-02-02/{theirs.id}/mark", status="arrived").status_code == 404
    assert reservations.find(settings.database_url, theirs.number).status == "booked"
    assert _post(ito, f"/staff/bookings/slots/{saiwai.id}/close").status_code == 302
    assert slots.get(settings.database_url, saiwai.id).status == "closed"
    assert ("ito", "slot-close", f"slot:{saiwai.id}") in _actions(settings)
    assert "締切" in _text(ito.get("/staff/bookings/slots"))
    assert tanaka.post("/staff/bookings/slots", data=ONE).status_code == 400  # no CSRF token


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"day": "2027-02-11"}, "2027-02-11 10:00〜10:30 は区民課の受付時間外です（土日・祝日・年末年始"),
        ({"start": "16:45"}, "2027-02-02 16:45〜17:15 は区民課の受付時間外です"),
        ({"day": "2027-02-06"}, "2027-02-06 10:00〜10:30 は区民課の受付時間外です"),  # a Saturday
        ({"day": "2027-12-29"}, "2027-12-29 10:00〜10:30 は区民課の受付時間外です"),  # the year-end closure
        ({"day": "2027-01-29"}, "過去の日付には予約枠を作れません。"),
        ({"day": ""}, "日付を選んでください。"),
        ({"start": "十時"}, "時刻は 9:30 のように入力してください。"),
        ({"capacity": "0"}, "定員は1〜50人で指定してください。"),
        ({"capacity": "二"}, "長さ（分）と定員は数字で入力してください。"),
        ({"minutes": "5"}, "長さは10〜180分で指定してください。"),
        ({"counter": "no-such"}, "窓口を一覧から選んでください。"),
    ],
)
def test_a_slot_that_cannot_be_offered_is_refused_with_the_reason_and_the_input_kept(
    console, change, message
):
    app, settings = console
    tanaka = _client(app, "tanaka")
    resp = _post(tanaka, "/staff/bookings/slots", **{**ONE, **change})
    page = _text(resp)
    assert resp.status_code == 400, page
    assert re.search(r'<p class="error" role="alert" id="one-problem">' + re.escape(message), page)
    day, start = change.get("day", ONE["day"]), change.get("start", ONE["start"])
    assert f'id="s-day" name="day" value="{day}"' in page and f'name="start" value="{start}"' in page
    capacity = change.get("capacity", "2")
    assert f'class="minutes" value="{capacity}"></span>' in page
    assert slots.listing(settings.database_url) == []


def test_a_broken_knowledge_file_is_said_not_a_server_error(console, monkeypatch):
    from bot.knowledge import KnowledgeError

    app, settings = console
    tanaka = _client(app, "tanaka")

    def broken():
        raise KnowledgeError("counters.yml:1: not a list")

    monkeypatch.setattr(app.extensions["console"], "knowledge", broken)
    page = _text(tanaka.get("/staff/bookings/slots"))
    assert console_text.SLOT_PROBLEM["no_knowledge"] in page
    resp = _post(tanaka, "/staff/bookings/slots", **ONE)
    assert resp.status_code == 503 and 'id="one-problem">窓口の一覧（ナレッジ）を' in _text(resp)
    assert 'name="day" value="2027-02-02"' in _text(resp)  # what was typed is kept
    assert slots.listing(settings.database_url) == []


def test_the_same_slot_twice_is_refused(console):
    app, _ = console
    tanaka = _client(app, "tanaka")
    assert _post(tanaka, "/staff/bookings/slots", **ONE).status_code == 302
    again = _post(tanaka, "/staff/bookings/slots", **ONE)
    assert again.status_code == 400 and "2027-02-02 10:00 の予約枠はすでにあります。" in _text(again)


def test_a_weekly_pattern_reports_every_day_it_skipped_and_why(console):
    app, settings = console
    tanaka = _client(app, "tanaka")
    weekly = {"ward": "中原区", "counter": "kumin", "weekdays": ["tue", "thu"], "start": "10:00",
              "minutes": "30", "capacity": "3", "first": "2027-02-01", "last": "2027-02-28",
              "exceptions": "2027-02-16"}  # fmt: skip
    resp = _post(tanaka, "/staff/bookings/slots/weekly", **weekly)
    page = _text(resp)
    assert resp.status_code == 200
    added = [(s.day, s.capacity) for s in slots.listing(settings.database_url)]
    assert added == [(date(2027, 2, d), 3) for d in (2, 4, 9, 18, 25)]
    assert "5件の枠を公開しました。作らなかった日は3日です。" in page
    skipped = dict(re.findall(r"<tr><td>(\d+月\d+日（.）)</td><td>([^<]+)</td></tr>", page))
    assert skipped["2月11日（木）"].startswith(
        "2027-02-11 10:00〜10:30 は区民課の受付時間外です"
    )  # 建国記念の日
    assert skipped["2月23日（火）"].startswith(
        "2027-02-23 10:00〜10:30 は区民課の受付時間外です"
    )  # 天皇誕生日
    assert skipped["2月16日（火）"] == "除外日"
    assert 'value="tue" checked' in page and 'value="2027-02-16"' in page  # the form keeps the pattern
    assert ("tanaka", "slot-pattern", "中原区:kumin") in _actions(settings)
    year_end = {**weekly, "weekdays": ["mon", "tue", "wed", "thu", "fri"], "first": "2027-12-27",
                "last": "2028-01-05", "exceptions": ""}  # fmt: skip
    page = _text(_post(tanaka, "/staff/bookings/slots/weekly", **year_end))
    skipped = re.findall(r"<tr><td>(\d+月\d+日)（.）</td>", page)
    assert skipped == ["12月29日", "12月30日", "12月31日", "1月3日"]  # the year-end closure, never offered
    assert "4件の枠を公開しました。" in page


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"exceptions": "2月16日"}, "除外する日は 2027-02-11 の形で"),
        ({"weekdays": []}, "曜日を mon,tue … sun で指定してください。"),
        ({"last": "2027-01-31"}, "終わりの日は始まりの日以降にしてください。"),
        ({"first": ""}, "日付を選んでください。"),
    ],
)
def test_a_weekly_pattern_with_a_mistake_publishes_nothing(console, change, message):
    app, settings = console
    tanaka = _client(app, "tanaka")
    weekly = {"ward": "中原区", "counter": "kumin", "weekdays": ["tue"], "start": "10:00", "minutes": "30",
              "capacity": "1", "first": "2027-02-01", "last": "2027-02-28", "exceptions": ""}  # fmt: skip
    resp = _post(tanaka, "/staff/bookings/slots/weekly", **{**weekly, **change})
    assert resp.status_code == 400 and f'id="weekly-problem">{message}' in _text(resp)
    assert slots.listing(settings.database_url) == []


def test_the_day_view_lists_a_booking_and_staff_mark_it_from_its_day(console):
    app, settings = console
    _slot(app, settings, capacity=2)
    booking = _book(settings)
    tanaka = _client(app, "tanaka")
    assert "この日の予約はありません。" in _text(tanaka.get("/staff/bookings"))  # today (JST) by default
    page = _text(tanaka.get("/staff/bookings?day=2027-02-02"))
    row = re.search(rf"<tr>.*?{booking.number}.*?</tr>", page, re.S).group(0)
    assert "10:00〜10:30" in row and "住民票の写し" in row and "ウェブ" in row and "予約中" in row
    assert "中原区役所 区民課" in page and "キャンセル…" in row
    assert "来庁" not in row  # not before its day
    url = f"/staff/bookings/2027-02-02/{booking.id}/mark"
    assert _post(tanaka, url, status="arrived").status_code == 302
    assert reservations.find(settings.database_url, booking.number).status == "booked"
    assert console_text.BOOKING_PROBLEM["not_yet"] in _text(tanaka.get("/staff/bookings?day=2027-02-02"))
    app.extensions["clock"].moment = datetime.combine(TUESDAY, time(10, 5), JST)
    tanaka = _client(app, "tanaka")  # a day later: the session has timed out
    assert _post(tanaka, url, status="gone").status_code == 400
    assert _post(tanaka, url, status="arrived").status_code == 302
    assert reservations.find(settings.database_url, booking.number).status == "arrived"
    page = _text(tanaka.get("/staff/bookings"))  # now today
    assert f"予約番号 {booking.number} を「来庁済み」にしました。" in page and "来庁済み" in page
    assert _post(tanaka, url, status="no_show").status_code == 302  # a mistake is corrected
    assert reservations.find(settings.database_url, booking.number).status == "no_show"
    assert ("tanaka", "booking-mark", f"booking:{booking.id}") in _actions(settings)
    row = re.search(rf"<tr>.*?{booking.number}.*?</tr>", _text(tanaka.get("/staff/bookings")), re.S).group(0)
    assert "来庁なし" in row and "キャンセル…" not in row  # no longer live: not cancellable
    assert tanaka.get("/staff/bookings?day=someday").status_code == 400
    assert _post(tanaka, f"/staff/bookings/2027-02-03/{booking.id}/mark", status="arrived").status_code == 404


def test_a_staff_cancel_delivers_the_message_frees_the_seat_and_is_audited(console):
    app, settings = console
    slot = _slot(app, settings, capacity=1)
    booking = _book(settings, conversation="U" + "a" * 32, channel="line")
    delivery = app.extensions["console"].escalations.delivery
    ito = _client(app, "ito")
    url = f"/staff/bookings/2027-02-02/{booking.id}/cancel"
    form = _text(ito.get(url))
    draft = re.search(r'<textarea id="c-message"[^>]*>(.*?)</textarea>', form, re.S).group(1)
    assert f"予約番号 {booking.number}、2月2日（火） 10:00〜10:30、中原区役所 区民課" in draft
    assert "LINE" in form
    empty = _post(ito, url, message="  ")
    assert empty.status_code == 400 and "住民へのメッセージを入力してください。" in _text(empty)
    message = f"担当者の急病のため、予約をお受けできなくなりました。お問い合わせは {PHONE} の田中まで。"
    delivery.fail = True  # LINE down: nothing changes, the message is kept to try again
    failed = _post(ito, url, message=message)
    assert failed.status_code == 502 and "LINEに送信できませんでした" in _text(failed)
    assert f">{message}</textarea>" in _text(failed)
    assert reservations.find(settings.database_url, booking.number).status == "booked"
    assert slots.get(settings.database_url, slot.id).booked == 1 and delivery.sent == []
    delivery.fail = False
    done = _post(ito, url, message=message)
    assert done.status_code == 302 and done.headers["Location"].endswith("/staff/bookings?day=2027-02-02")
    assert delivery.sent == [("U" + "a" * 32, "line", "booking", booking.id, message)]  # as typed, on LINE
    cancelled = reservations.find(settings.database_url, booking.number)
    assert (cancelled.status, cancelled.cancelled_by) == ("cancelled", "ito")
    assert PHONE not in cancelled.staff_message and "[電話番号]" in cancelled.staff_message  # stored masked
    assert slots.get(settings.database_url, slot.id).booked == 0  # the seat is free again
    assert reservations.free_slots(
        settings.database_url, "中原区", "kumin", now=datetime.combine(TODAY, time(9), JST)
    )
    assert ("ito", "booking-cancel", f"booking:{booking.id}") in _actions(settings)
    assert PHONE not in str(audit_log(settings.database_url))
    page = _text(ito.get("/staff/bookings?day=2027-02-02"))
    assert f"予約番号 {booking.number} をキャンセルしました。住民にメッセージを送りました。" in page
    row = re.search(rf'<tr class="cancelled">.*?{booking.number}.*?</tr>', page, re.S).group(0)
    assert "キャンセル（職員 ito）" in row and "キャンセル…" not in row  # still listed, as cancelled
    again = _post(ito, url, message=message)  # the back button and resend
    assert again.status_code == 302 and len(delivery.sent) == 1
    other = _book(settings)  # somebody else takes the freed seat
    assert ito.post(f"/staff/bookings/2027-02-02/{other.id}/cancel", data={"message": "x"}).status_code == 400
    assert reservations.find(settings.database_url, other.number).status == "booked"  # no CSRF token


def test_a_resident_cancelled_booking_shows_as_theirs(console):
    app, settings = console
    _slot(app, settings)
    booking = _book(settings, conversation="web-resident")
    reservations.cancel(settings.database_url, booking.number, conversation="web-resident")
    page = _text(_client(app, "tanaka").get("/staff/bookings?day=2027-02-02"))
    assert "キャンセル（住民が取り消し）" in page


def test_the_cancellation_goes_out_on_the_ticket_reply_path():
    """ChannelDelivery with an Addressee: LINE gets the text as staff wrote it; the Rasa tracker a
    masked copy whose event says it is about a booking, as the widget reads staff replies there."""

    class Rasa:
        def __init__(self) -> None:
            self.appended: list[tuple[str, list[dict]]] = []

        def append_events(self, sender: str, events: list[dict]) -> None:
            self.appended.append((sender, events))

    class Line:
        def __init__(self) -> None:
            self.pushed: list[tuple[str, str]] = []

        def push(self, user_id: str, messages: list) -> None:
            self.pushed.append((user_id, messages[0].text))

    rasa, line = Rasa(), Line()
    delivery = ChannelDelivery(RasaDelivery(rasa), line)
    text = f"予約をお受けできなくなりました。{PHONE} までご連絡ください。"
    delivery.send(Addressee("U" + "b" * 32, "line", 7), text)
    assert line.pushed == [("U" + "b" * 32, text)]
    ((sender, (event,)),) = rasa.appended
    assert sender == "U" + "b" * 32 and event["metadata"] == {"staff": True, "booking": 7}
    assert PHONE not in event["text"] and "[電話番号]" in event["text"]
    delivery.send(Addressee("web-abc", "widget", 8), "別の日時でご予約ください。")
    assert len(line.pushed) == 1 and rasa.appended[-1][0] == "web-abc"  # the widget: the tracker only


def test_the_booking_pages_have_unique_ids_labels_and_the_consoles_headers(console):
    app, settings = console
    _slot(app, settings, capacity=3)
    first, second = _book(settings), _book(settings)
    app.extensions["clock"].moment = datetime.combine(TUESDAY, time(9, 0), JST)
    kato = _client(app, "kato")
    weekly = {"ward": "中原区", "counter": "kumin", "weekdays": ["tue"], "start": "11:00", "minutes": "30",
              "capacity": "1", "first": "2027-02-01", "last": "2027-02-28", "exceptions": ""}  # fmt: skip
    pages = {
        "slots": kato.get("/staff/bookings/slots"),
        "weekly": _post(kato, "/staff/bookings/slots/weekly", **weekly),
        "day": kato.get("/staff/bookings"),
        "cancel": kato.get(f"/staff/bookings/2027-02-02/{first.id}/cancel"),
    }
    for name, resp in pages.items():
        assert resp.status_code == 200, name
        html = resp.get_data(as_text=True)
        parsed = FormsAndIds()
        parsed.feed(html)
        assert not [i for i, n in Counter(parsed.ids).items() if n > 1], name
        unlabelled = [(t, i) for t, i, inside in parsed.fields if not inside and i not in parsed.label_for]
        assert not unlabelled, f"{name}: {unlabelled}"
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"], name
        assert 'href="/staff/bookings"' in html and 'href="/staff/bookings/slots"' in html  # the menu
    day = _text(pages["day"])
    assert first.number in day and second.number in day and day.count(">来庁<") == 2
    anonymous = app.test_client().get("/staff/bookings")
    assert anonymous.status_code == 302 and "/staff/login" in anonymous.headers["Location"]
