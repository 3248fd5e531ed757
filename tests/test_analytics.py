"""Figures for staff (issue 17): bot/analytics_figures.py on hand-made events and tickets with known
answers, `concierge stats`, /staff/analytics and its CSV, and that no personal data comes out."""

from __future__ import annotations

import csv
import io
import json
import re
import threading
from datetime import UTC, date, datetime, timedelta

import pytest

from bot.analytics_figures import FiguresError, compute
from bot.business_hours import JST, staff_promise, when_staff_answer
from bot.cli import main
from bot.console.accounts import add_user, audit_log
from bot.knowledge import load_knowledge
from bot.settings import ROOT, Settings
from bot.storage.db import session_scope
from bot.storage.models import (
    AnswerEvent,
    Booking,
    BookingSlot,
    RegionalIssue,
    Ticket,
    TicketMessage,
    UnresolvedQuestion,
)

PASSWORD = "correct-horse-battery"
SINCE, UNTIL = date(2026, 11, 23), date(2026, 12, 7)
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=JST)  # Monday noon
SENDER = "line-U4af4980629a1b2c3d4e5f60718293a4b"  # what must never come out
KEY = "c0ffee" * 10 + "c0de"  # a conversation key
PHONE = "090-1234-5678"
RESIDENT_TEXT = "田中太郎です。空き家の草が伸びています"
ARTIFACTS = ROOT / "var" / "test-artifacts"


def jst(text: str) -> datetime:
    """A JST wall time, stored as UTC like everything else."""
    return datetime.fromisoformat(text).replace(tzinfo=JST).astimezone(UTC)


@pytest.fixture(scope="module")
def kb():
    return load_knowledge(ROOT / "knowledge")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path, pg_databases):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'figures.db'}"
    else:
        with pg_databases("concierge_figures") as url:
            yield url.replace("postgresql://", "postgresql+psycopg://")


@pytest.fixture()
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'figures.db'}"


def event(
    at: str, ward: str | None, outcome: str, helpful: bool | None = None, key: str | None = KEY, **more
):
    return AnswerEvent(
        at=jst(at), ward=ward, channel="rest", outcome=outcome, conversation=key, helpful=helpful,
        rated_at=jst(at) + timedelta(minutes=1) if helpful is not None else None, **more,
    )  # fmt: skip


def ticket(created: str, ward: str, reply: str | None, department: str = "総合案内") -> Ticket:
    t = Ticket(
        ward=ward, department=department, reason="requested", channel="line", sender=SENDER,
        created_at=jst(created), status="answered" if reply else "new",
    )  # fmt: skip
    t.messages.append(
        TicketMessage(author="resident", text=f"{RESIDENT_TEXT} {PHONE}", created_at=jst(created))
    )
    t.messages.append(
        TicketMessage(author="note", text="内部メモ", created_at=jst(created) + timedelta(minutes=1))
    )
    if reply:
        t.messages.append(TicketMessage(author="staff", text="担当です", created_at=jst(reply)))
        t.messages.append(
            TicketMessage(author="staff", text="続きです", created_at=jst(reply) + timedelta(hours=1))
        )
    return t


def add_known_set(db_url: str) -> None:
    """The hand-made period 2026-11-23 … 12-07 whose figures are worked out in the tests below."""
    with session_scope(db_url) as s:
        s.add_all(
            [
                # 中原区, Tue 12-01 (JST): 4 answered (rated T, T, F, —), 1 not sure, 1 hand-off
                event("2026-12-01 09:00", "中原区", "answered", True, key="a" * 64),
                event("2026-12-01 09:05", "中原区", "answered", True, key="a" * 64),
                event("2026-12-01 10:00", "中原区", "answered", False, key="b" * 64),
                event("2026-12-01 11:00", "中原区", "answered", None, key=None),  # key cleared at retention
                event("2026-12-01 12:00", "中原区", "not_sure", key="c" * 64),
                event("2026-12-01 23:59", "中原区", "handoff", key="c" * 64),  # still 12-01 in Japan
                # 幸区, Wed 12-02 00:00 JST (12-01 15:00 UTC): 2 answered rated F, F; 2 out of scope
                event("2026-12-02 00:00", "幸区", "answered", False, key="d" * 64),
                event("2026-12-02 08:00", "幸区", "answered", False, key="d" * 64),
                event("2026-12-02 09:00", "幸区", "out_of_scope", key=KEY),
                event("2026-12-02 09:30", "幸区", "out_of_scope", key=KEY),
                event("2026-12-03 10:00", None, "answered", key="e" * 64),  # ward unknown
                event("2026-11-22 23:59", "中原区", "answered", True),  # the day before the period
                event("2026-12-08 00:00", "中原区", "answered", True),  # the day after it
            ]
        )
        s.add_all(
            [
                ticket("2026-12-03 10:00", "中原区", "2026-12-03 10:20"),  # Thu, open: 20 min, by 17:00
                ticket("2026-12-03 16:00", "中原区", "2026-12-03 18:00"),  # 120 min, after 17:00: late
                ticket("2026-12-04 18:00", "中原区", "2026-12-07 09:00"),  # Fri evening: promised Mon
                ticket("2026-11-23 10:00", "中原区", "2026-11-24 16:00"),  # 勤労感謝の日: promised Tue
                ticket("2026-12-03 11:00", "中原区", None),  # never answered, its deadline long past
                ticket("2026-12-07 11:00", "中原区", None),  # not answered yet, by 17:00 today: left out
                ticket("2026-12-02 10:00", "幸区", "2026-12-02 10:05"),
                ticket("2026-11-20 10:00", "中原区", "2026-11-20 10:01"),  # before the period
            ]
        )


def add_bookings(db_url: str) -> None:
    """Bookings counted by the consultation's day: 中原区 Tue 12-01 five (one still booked, one
    arrived, one not come, one cancelled by the resident, one by staff), 幸区 Wed 12-02 one arrived,
    and one for 12-08, the day after the period (made within it: still not counted)."""
    with session_scope(db_url) as s:

        def slot(ward: str, day: date, outcomes: list[tuple[str, str | None]]) -> None:
            live = sum(st != "cancelled" for st, _ in outcomes)
            row = BookingSlot(ward=ward, counter_id="kumin", day=day, start="10:00", minutes=30,
                              capacity=10, booked=live, created_by="kato")  # fmt: skip
            s.add(row)
            s.flush()
            for n, (status, by) in enumerate(outcomes):
                s.add(Booking(number=f"{ward}{day}{n}", slot_id=row.id, conversation=SENDER,
                              channel="line", topic="住民票の写し", status=status, cancelled_by=by,
                              staff_message=by and PHONE, created_at=jst("2026-11-30 10:00")))  # fmt: skip

        slot("中原区", date(2026, 12, 1), [("booked", None), ("arrived", None), ("no_show", None),
                                          ("cancelled", "resident"), ("cancelled", "kato")])  # fmt: skip
        slot("幸区", date(2026, 12, 2), [("arrived", None)])
        slot("中原区", date(2026, 12, 8), [("booked", None)])


def test_bookings_are_counted_by_their_day_and_ward(db_url, kb):
    add_known_set(db_url)
    add_bookings(db_url)
    f = compute(db_url, SINCE, UNTIL, kb=kb, now=NOW)
    counts = (f.bookings, f.bookings_cancelled, f.bookings_cancelled_by_resident,
              f.bookings_cancelled_by_staff, f.bookings_arrived, f.bookings_no_show)  # fmt: skip
    assert counts == (6, 2, 1, 1, 2, 1)
    assert f.questions == 11 and f.tickets == 7  # the other figures as they were
    wards = {w.ward: w for w in f.wards}
    assert (wards["中原区"].bookings, wards["中原区"].bookings_no_show) == (5, 1)
    assert (wards["幸区"].bookings, wards["幸区"].bookings_arrived) == (1, 1)
    days = {d.day: d for d in f.days}
    assert days["2026-12-01"].bookings == 5 and days["2026-12-02"].bookings_arrived == 1
    assert days["2026-11-30"].bookings == 0  # the day they were made is not the day they count for
    cells = {(c.day, c.ward): c for c in f.cells}
    assert cells[("2026-12-01", "中原区")].bookings_cancelled_by_staff == 1
    assert compute(db_url, SINCE, UNTIL, ["幸区"], kb=kb, now=NOW).bookings == 1
    assert compute(db_url, SINCE, UNTIL, ["不明"], kb=kb, now=NOW).bookings == 0
    assert compute(db_url, date(2026, 12, 8), date(2026, 12, 8), now=NOW).bookings == 1
    out = f.model_dump_json()
    assert SENDER not in out and PHONE not in out and "kato" not in out and "住民票" not in out


def test_the_promise_deadline_is_the_worded_promise(kb):
    hours = [kb.schedules["ward-weekday"], kb.schedules["ward-saturday"]]
    friday_evening = datetime(2026, 12, 4, 18, 0, tzinfo=JST)
    promise = staff_promise(hours, friday_evening)
    assert promise.deadline == datetime(2026, 12, 7, 17, 0, tzinfo=JST)  # the 1st Saturday is closed
    assert when_staff_answer(hours, friday_evening) == "12月7日（月）8:30以降に"
    holiday = datetime(2026, 11, 23, 10, 0, tzinfo=JST)
    assert staff_promise(hours, holiday).deadline == datetime(2026, 11, 24, 17, 0, tzinfo=JST)
    open_now = datetime(2026, 12, 3, 10, 0, tzinfo=JST)
    assert staff_promise(hours, open_now).deadline == datetime(2026, 12, 3, 17, 0, tzinfo=JST)
    assert when_staff_answer(hours, open_now) == "本日17:00までに"
    assert staff_promise([], open_now) is None and when_staff_answer([], open_now) == "開庁時間内に"


def test_figures_of_a_known_set(db_url, kb):
    add_known_set(db_url)
    f = compute(db_url, SINCE, UNTIL, kb=kb, now=NOW)
    assert f.questions == 11
    assert f.outcomes == {"answered": 7, "not_sure": 1, "handoff": 1, "out_of_scope": 2, "sensitive": 0}
    assert f.answered_rate == round(7 / 11, 4) and f.not_sure_rate == round(1 / 11, 4)
    assert f.handoff_rate == round(1 / 11, 4)
    assert (f.rated, f.helpful, f.helpful_rate) == (5, 2, 0.4)
    assert f.conversations == 6 and f.unkeyed_questions == 1  # a, b, c, d, KEY, e; one key cleared
    # tickets: minutes to the first staff reply 5, 20, 120, 1800 (holiday), 3780 (the weekend)
    assert (f.tickets, f.replied_tickets) == (7, 5)
    assert f.first_reply_minutes_median == 120.0
    assert f.first_reply_minutes_p90 == 2988.0  # 1800 + 0.6 × (3780 − 1800)
    # within the promise: 幸区, 10:00 → 10:20, Friday → Monday, holiday → Tuesday; late: 16:00 → 18:00
    # and the one never answered; the one due by 17:00 today is not counted yet
    assert (f.promise_counted, f.answered_within_promise_rate) == (6, round(4 / 6, 4))

    days = {d.day: d for d in f.days}
    assert (
        len(f.days) == 15 and days["2026-11-30"].questions == 0 and days["2026-11-30"].answered_rate is None
    )
    assert days["2026-12-01"].questions == 6 and days["2026-12-01"].outcomes["handoff"] == 1
    assert days["2026-12-02"].questions == 4 and days["2026-12-02"].helpful_rate == 0.0
    assert days["2026-12-01"].conversations == 3 and days["2026-12-01"].helpful_rate == round(2 / 3, 4)
    assert days["2026-11-23"].tickets == 1 and days["2026-11-23"].answered_within_promise_rate == 1.0
    wards = {w.ward: w for w in f.wards}
    assert list(wards) == ["幸区", "中原区", "不明"]  # the city's order, unknown last
    assert wards["中原区"].questions == 6 and wards["幸区"].answered_rate == 0.5
    assert wards["不明"].questions == 1 and wards["不明"].rated == 0 and wards["不明"].helpful_rate is None
    cells = {(c.day, c.ward): c for c in f.cells}
    assert cells[("2026-12-01", "中原区")].questions == 6 and ("2026-12-01", "幸区") not in cells


def test_a_ward_filter_keeps_to_its_wards(db_url, kb):
    add_known_set(db_url)
    f = compute(db_url, SINCE, UNTIL, ["中原区"], kb=kb, now=NOW)
    assert f.ward_filter == ["中原区"] and [w.ward for w in f.wards] == ["中原区"]
    assert f.questions == 6 and f.rated == 3 and f.helpful_rate == round(2 / 3, 4)
    assert f.tickets == 6 and f.first_reply_minutes_median == 960.0  # (120 + 1800) / 2
    assert f.first_reply_minutes_p90 == 3186.0 and f.answered_within_promise_rate == 0.6
    unknown = compute(db_url, SINCE, UNTIL, ["不明"], kb=kb, now=NOW)
    assert unknown.questions == 1 and unknown.tickets == 0
    both = compute(db_url, SINCE, UNTIL, ["幸区", "不明"], kb=kb, now=NOW)
    assert both.questions == 5 and both.conversations == 3


def test_an_empty_period_has_no_rates(db_url, kb):
    add_known_set(db_url)
    f = compute(db_url, date(2025, 1, 1), date(2025, 1, 31), kb=kb, now=NOW)
    assert (f.questions, f.conversations, f.rated, f.tickets) == (0, 0, 0, 0)
    rates = (f.answered_rate, f.not_sure_rate, f.handoff_rate, f.helpful_rate, f.answered_within_promise_rate)
    assert rates == (None,) * 5
    assert f.first_reply_minutes_median is None and f.first_reply_minutes_p90 is None
    assert len(f.days) == 31 and f.wards == [] and f.worst_entries == [] and f.unresolved_topics == []


def test_without_opening_hours_there_is_no_promise_share(sqlite_url):
    add_known_set(sqlite_url)
    f = compute(sqlite_url, SINCE, UNTIL, now=NOW)
    assert f.tickets == 7 and f.first_reply_minutes_median == 120.0
    assert f.answered_within_promise_rate is None and f.promise_counted == 0


def test_bad_periods_and_wards(sqlite_url):
    with pytest.raises(FiguresError, match="before") as err:
        compute(sqlite_url, date(2026, 12, 5), date(2026, 12, 1))
    assert err.value.code == "until_before_since"
    with pytest.raises(FiguresError, match="unknown ward") as err:
        compute(sqlite_url, SINCE, UNTIL, ["港区"])
    with pytest.raises(FiguresError, match="at most"):
        compute(sqlite_url, date(2000, 1, 1), date(2026, 1, 1))


def test_worst_entries_need_five_ratings(db_url):
    with session_scope(db_url) as s:
        for entry, ratings in {
            "four": [False] * 4,
            "five": [True] + [False] * 4,
            "six": [True, False] * 3,
        }.items():
            for n, helpful in enumerate(ratings):
                s.add(
                    event(
                        f"2026-12-01 1{n}:00",
                        "中原区",
                        "answered",
                        helpful,
                        entry=entry,
                        topic=f"{entry}の話",
                    )
                )
        s.add(
            event("2026-12-01 10:00", "中原区", "answered", None, entry="five", topic="fiveの話")
        )  # unrated
        s.add(
            event("2026-11-01 10:00", "中原区", "answered", False, entry="four", topic="fourの話")
        )  # before
    f = compute(db_url, SINCE, UNTIL, now=NOW)
    assert [(w.entry, w.topic, w.rated, w.helpful, w.helpful_rate) for w in f.worst_entries] == [
        ("five", "fiveの話", 5, 1, 0.2),
        ("six", "sixの話", 6, 3, 0.5),
    ]
    assert compute(db_url, date(2026, 11, 1), UNTIL, now=NOW).worst_entries[0].entry == "four"  # now 5


def add_unresolved(db_url: str) -> None:
    with session_scope(db_url) as s:

        def issue(label: str, ward: str, times: list[str], text: str = "空き家の草が伸びています") -> None:
            row = RegionalIssue(ward=ward, label=label, count=len(times), centroid=b"\0" * 4)
            for at in times:
                row.questions.append(
                    UnresolvedQuestion(
                        ward=ward, text=text, score=0.1, embedding=b"\0" * 4, created_at=jst(at)
                    )
                )
            s.add(row)

        issue("空き家・草・放置", "中原区", ["2026-12-01 10:00", "2026-12-02 10:00", "2026-12-03 10:00"])
        issue(
            "騒音・工事", "中原区", ["2026-12-01 10:00", "2026-11-01 10:00", "2026-11-02 10:00"]
        )  # one here
        issue(f"連絡先・{PHONE}", "幸区", ["2026-12-01 10:00", "2026-12-02 10:00"])  # masked before shown
        text = "[氏名]さんの家の前にあれがずっと置いてあって困ります"
        issue(text[:20], "幸区", ["2026-12-01 11:00", "2026-12-02 11:00"], text=text)  # label_of's fallback


def test_unresolved_topics_hold_no_residents_words(db_url):
    add_unresolved(db_url)
    topics = compute(db_url, SINCE, UNTIL, now=NOW).unresolved_topics
    assert [(t.label, t.ward, t.questions) for t in topics] == [
        ("空き家・草・放置", "中原区", 3),
        ("連絡先・[電話番号]", "幸区", 2),
        ("（話題語なし）", "幸区", 2),
    ]
    assert [t.label for t in compute(db_url, SINCE, UNTIL, ["中原区"], now=NOW).unresolved_topics] == [
        "空き家・草・放置"
    ]


def test_a_hundred_thousand_events_stay_fast(sqlite_url):
    import time

    from sqlalchemy import insert

    from bot.storage.db import get_engine

    outcomes = ["answered"] * 6 + ["not_sure", "handoff", "out_of_scope", "sensitive"]
    rows = [
        {"at": jst("2026-11-23 08:00") + timedelta(seconds=12 * n), "ward": ("中原区", "幸区", None)[n % 3],
         "outcome": outcomes[n % 10], "conversation": f"{n % 7919:064x}", "entry": f"e{n % 50}",
         "helpful": (None, True, False)[n % 3] if n % 10 < 6 else None}
        for n in range(100_000)
    ]  # fmt: skip
    with get_engine(sqlite_url).begin() as conn:
        conn.execute(insert(AnswerEvent), rows)
    started = time.perf_counter()
    f = compute(sqlite_url, SINCE, UNTIL, now=NOW)
    elapsed = time.perf_counter() - started
    assert f.questions == 100_000 and f.conversations == 7919
    assert elapsed < 5, elapsed  # about 0.3 s here; a Python loop over the rows took far longer


def test_cli_json_keys_and_exit_codes(sqlite_url, kb, monkeypatch, capsys):
    add_known_set(sqlite_url)
    monkeypatch.setattr("bot.cli.Settings", lambda: Settings(db_url=sqlite_url))
    assert main(["stats", "--since", "2026-11-23", "--until", "2026-12-07", "--json"]) == 0
    out = capsys.readouterr().out
    data = json.loads(out)
    for key in ("questions", "answered_rate", "not_sure_rate", "handoff_rate", "rated", "helpful_rate",
                "first_reply_minutes_median", "first_reply_minutes_p90", "answered_within_promise_rate",
                "conversations", "days", "wards", "worst_entries", "unresolved_topics"):  # fmt: skip
        assert key in data, key
    assert data["questions"] == 11 and data["rated"] == 5 and data["helpful_rate"] == 0.4
    for key in ("bookings", "bookings_cancelled", "bookings_arrived", "bookings_no_show"):
        assert data[key] == 0, key
    assert {w["ward"] for w in data["wards"]} == {"中原区", "幸区", "不明"} and len(data["days"]) == 15
    assert SENDER not in out and "a" * 64 not in out and PHONE not in out and "田中" not in out
    assert main(["stats", "--since", "2026-11-23", "--until", "2026-12-07", "--ward", "幸区", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["questions"] == 4
    assert main(["stats", "--since", "2026-11-23", "--until", "2026-12-07"]) == 0
    table = capsys.readouterr().out
    assert "合計" in table and "中原区" in table and "2026-12-01" in table
    for bad in (["--since", "2026-13-01"], ["--since", "yesterday"], ["--ward", "港区"],
                ["--since", "2026-12-07", "--until", "2026-12-01"]):  # fmt: skip
        assert main(["stats", *bad]) == 2, bad
        assert "concierge stats:" in capsys.readouterr().err


def test_cli_says_when_the_database_is_unavailable(monkeypatch, capsys):
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"
    monkeypatch.setattr("bot.cli.Settings", lambda: Settings(db_url=url))
    assert main(["stats", "--json"]) == 1
    assert "database is unavailable" in capsys.readouterr().err


# -- the console ---------------------------------------------------------------------------------


class Clock:
    def __call__(self) -> datetime:
        return NOW.astimezone(UTC)


@pytest.fixture()
def console(tmp_path, sqlite_url):
    from web import create_app

    settings = Settings(knowledge_dir=ROOT / "knowledge", var_dir=tmp_path / "var", db_url=sqlite_url)
    app = create_app(settings)
    app.extensions["clock"] = Clock()
    add_user(sqlite_url, "nakahara", "ward_staff", PASSWORD, ["中原区"])
    add_user(sqlite_url, "editor1", "editor", PASSWORD)
    add_known_set(sqlite_url)
    add_unresolved(sqlite_url)
    add_bookings(sqlite_url)
    return app, sqlite_url


def _login(client, name: str) -> None:
    page = client.get("/staff/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    resp = client.post("/staff/login", data={"csrf_token": token, "name": name, "password": PASSWORD})
    assert resp.status_code == 302


PERIOD = {"since": "2026-11-23", "until": "2026-12-07"}


def test_the_page_needs_a_login(console):
    app, _ = console
    client = app.test_client()
    for path in ("/staff/analytics", "/staff/analytics.csv"):
        resp = client.get(path, query_string=PERIOD)
        assert resp.status_code == 302 and "/staff/login" in resp.headers["Location"]


def test_an_editor_sees_every_ward_with_charts(console):
    app, _ = console
    client = app.test_client()
    _login(client, "editor1")
    resp = client.get("/staff/analytics", query_string=PERIOD)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "Content-Security-Policy" in resp.headers
    assert html.count('<svg role="img"') == 3 and 'aria-labelledby="chart-days-title chart-days-desc"' in html
    assert "12/1 6件（回答 4、自信なし 1、職員へ引継ぎ 1）" in html  # the chart's text summary
    assert "幸区" in html and "中原区" in html and "空き家・草・放置" in html
    assert 'href="/staff/analytics"' in html  # in the navigation
    assert "/staff/analytics.csv?since=2026-11-23&amp;until=2026-12-07" in html
    from console_support import FormsAndIds

    parsed = FormsAndIds()
    parsed.feed(html)
    assert len(parsed.ids) == len(set(parsed.ids)) and parsed.fields
    assert all(inside or i in parsed.label_for for _tag, i, inside in parsed.fields)
    _no_personal_data(html)


def test_the_page_shows_the_booking_counts(console):
    app, _ = console
    client = app.test_client()
    _login(client, "editor1")
    html = client.get("/staff/analytics", query_string=PERIOD).get_data(as_text=True)
    for label, count in (
        ("予約", 6),
        ("来庁", 2),
        ("来庁なし", 1),
        ("住民のキャンセル", 1),
        ("職員のキャンセル", 1),
    ):
        assert f"<dt>{label}</dt><dd>{count}件</dd>" in html, label
    assert '<th scope="col">予約</th>' in html
    assert re.search(r'<th scope="row">中原区</th>(<td>[^<]*</td>){11}<td>5</td></tr>', html)
    assert re.search(r'<th scope="row">2026-12-01</th>(<td>[^<]*</td>){11}<td>5</td></tr>', html)
    _login(client, "nakahara")
    assert "<dt>予約</dt><dd>5件</dd>" in client.get("/staff/analytics", query_string=PERIOD).get_data(
        as_text=True
    )
    rows = list(csv.DictReader(io.StringIO(
        client.get("/staff/analytics.csv", query_string=PERIOD).get_data(as_text=True).lstrip("\ufeff")
    )))  # fmt: skip
    assert sum(int(r["bookings"]) for r in rows) == 5 and sum(int(r["bookings_no_show"]) for r in rows) == 1


def test_ward_staff_see_only_their_wards(console):
    app, _ = console
    client = app.test_client()
    _login(client, "nakahara")
    html = client.get("/staff/analytics", query_string=PERIOD).get_data(as_text=True)
    assert "中原区" in html and "幸区" not in html and "不明" not in html
    assert "連絡先" not in html  # 幸区's unresolved topic
    assert "<dd>6件</dd>" in html  # 中原区's questions, not the city's 11
    assert client.get("/staff/analytics", query_string={**PERIOD, "ward": "幸区"}).status_code == 404
    assert client.get("/staff/analytics.csv", query_string={**PERIOD, "ward": "幸区"}).status_code == 404
    rows = list(
        csv.DictReader(
            io.StringIO(
                client.get("/staff/analytics.csv", query_string=PERIOD)
                .get_data(as_text=True)
                .lstrip("\ufeff")
            )
        )
    )
    assert rows and {r["ward"] for r in rows} == {"中原区"}


def test_bad_input_on_the_page(console):
    app, _ = console
    client = app.test_client()
    _login(client, "editor1")
    resp = client.get("/staff/analytics", query_string={"since": "2026-13-01"})
    assert resp.status_code == 400 and "日付は 2026-12-01 の形で" in resp.get_data(as_text=True)
    resp = client.get("/staff/analytics", query_string={"since": "2026-12-07", "until": "2026-12-01"})
    assert resp.status_code == 400 and "終わりの日が始めの日より前" in resp.get_data(as_text=True)
    assert client.get("/staff/analytics", query_string={"ward": "港区"}).status_code == 404
    assert client.get("/staff/analytics.csv", query_string={"since": "x"}).status_code == 400


def test_csv_export_rows_headers_and_audit(console):
    app, db_url = console
    client = app.test_client()
    _login(client, "editor1")
    resp = client.get("/staff/analytics.csv", query_string=PERIOD)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert (
        resp.headers["Content-Disposition"]
        == 'attachment; filename="concierge-figures-2026-11-23-2026-12-07.csv"'
    )
    text = resp.get_data(as_text=True)
    assert text.startswith("\ufeffday,ward,conversations,")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    cells = {(r["day"], r["ward"]): r for r in rows}
    nakahara = cells[("2026-12-01", "中原区")]
    assert (
        nakahara["questions"] == "6" and nakahara["answered"] == "4" and nakahara["helpful_rate"] == "0.6667"
    )
    assert cells[("2026-12-02", "幸区")]["out_of_scope"] == "2"
    assert (
        cells[("2026-12-03", "不明")]["rated"] == "0" and cells[("2026-12-03", "不明")]["helpful_rate"] == ""
    )
    assert sum(int(r["questions"]) for r in rows) == 11
    _no_personal_data(text)
    export = next(a for a in audit_log(db_url) if a["action"] == "analytics-export")
    assert export["user"] == "editor1" and export["detail"].startswith("2026-11-23..2026-12-07")


def test_the_page_says_when_the_database_is_unavailable(console, monkeypatch):
    from sqlalchemy.exc import OperationalError

    app, _ = console
    client = app.test_client()
    _login(client, "editor1")

    def down(*_args, **_kwargs):
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr("bot.analytics_figures.compute", down)
    resp = client.get("/staff/analytics", query_string=PERIOD)
    assert resp.status_code == 503 and "データベースに接続できません" in resp.get_data(as_text=True)


def _no_personal_data(text: str) -> None:
    for secret in (SENDER, KEY, "a" * 64, PHONE, "田中", RESIDENT_TEXT, "内部メモ", "担当です"):
        assert secret not in text, secret


# -- in Chromium ---------------------------------------------------------------------------------


@pytest.fixture()
def console_url(console):
    from werkzeug.serving import make_server

    app, _ = console
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_the_analytics_page_in_chromium(browser, console_url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.delete_all_cookies()
    browser.get(console_url + "/staff/analytics")
    assert "/staff/login" in browser.current_url
    browser.find_element(By.NAME, "name").send_keys("editor1")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "main button[type=submit]").click()
    WebDriverWait(browser, 20).until(ec.url_contains("/staff/tickets"))
    browser.find_element(By.LINK_TEXT, "利用状況").click()
    WebDriverWait(browser, 20).until(ec.url_contains("/staff/analytics"))
    since = browser.find_element(By.ID, "since")
    browser.execute_script("arguments[0].value = '2026-11-23'", since)  # a date input takes no typing
    browser.find_element(By.XPATH, "//button[text()='表示']").click()
    WebDriverWait(browser, 20).until(ec.url_contains("since=2026-11-23"))
    charts = browser.find_elements(By.CSS_SELECTOR, "figure.chart svg[role=img]")
    assert len(charts) == 3
    assert all(c.size["width"] > 200 and c.size["height"] > 50 for c in charts)
    bars = browser.find_elements(By.CSS_SELECTOR, "#chart-days rect.o-answered")
    assert len(bars) == 3  # 12-01, 12-02, 12-03
    fill = browser.execute_script("return getComputedStyle(arguments[0]).fill", bars[0])
    assert fill == "rgb(43, 122, 61)"  # staff.css reached the SVG under the CSP
    ward_rows = browser.find_elements(By.CSS_SELECTOR, "#chart-wards g")
    assert [r.find_element(By.TAG_NAME, "text").text for r in ward_rows] == ["幸区", "中原区", "不明"]
    main_text = browser.find_element(By.TAG_NAME, "main").text
    assert "11件" in main_text and "40%" in main_text  # questions, helpful rate
    browser.set_window_size(1200, 2400)  # the whole page on a desk's screen, then on a phone's
    try:
        browser.save_screenshot(str(ARTIFACTS / "staff-analytics.png"))
    finally:
        browser.set_window_size(360, 740)  # the other tests' size
    browser.save_screenshot(str(ARTIFACTS / "staff-analytics-phone.png"))
