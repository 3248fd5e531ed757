"""The console's pages for notices, disaster mode, counter congestion and openings (issue 18), in the
real app on SQLite with the small test knowledge: each role's rights, compose → preview → confirm,
the errors staff see, and the audit log."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from html import unescape

import holidays
import pytest
from console_support import FormsAndIds
from console_support import logged_in as _client
from sqlalchemy import select, update

from bot.console.accounts import add_user, audit_log
from bot.knowledge import WARDS
from bot.notices import board, store
from bot.settings import Settings
from bot.storage.db import session_scope
from bot.storage.models import CounterStatus, DisasterAlert, Notice
from web import console_text, create_app

PASSWORD = "correct-horse-battery"
JST = console_text.JST


class RecordingQueue:
    """Stands in for bot.tasks.TaskQueue: what the console asked the worker to send."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[int] = []
        self.fail = fail

    def send_notice(self, notice_id: int) -> None:
        if self.fail:
            raise ConnectionError("queue unreachable")
        self.sent.append(notice_id)


@pytest.fixture()
def console(small_knowledge, tmp_path):
    settings = Settings(
        knowledge_dir=small_knowledge, var_dir=tmp_path / "var", db_url=f"sqlite:///{tmp_path / 'c.db'}"
    )
    app = create_app(settings)
    app.extensions["task_queue"] = RecordingQueue()
    for name, role in (("tanaka", "ward_staff"), ("ito", "editor"), ("kato", "admin")):
        add_user(settings.database_url, name, role, PASSWORD, ["中原区"] if role == "ward_staff" else None)
    return app, settings


def _post(client, url: str, **data):
    return client.post(url, data={"csrf_token": client.token, **data})


def _text(resp) -> str:
    return unescape(resp.get_data(as_text=True))


NOTICE = {
    "title": "避難所の開設",
    "body": "中原区内の避難所を開設しました。\n最寄りの避難所へ向かってください。",
    "link": "https://www.city.kawasaki.jp/bousai/",
    "wards": ["中原区"],
    "topic": "bousai",
    "when": "now",
    "send_at": "",
}


def _notices(settings) -> list[Notice]:
    with session_scope(settings.database_url) as session:
        return list(session.scalars(select(Notice).order_by(Notice.id)))


def _actions(settings) -> set[tuple[str, str, str]]:
    return {(r["user"], r["action"], r["target"]) for r in audit_log(settings.database_url)}


def test_compose_preview_confirm_sends_a_notice_now(console):
    app, settings = console
    tanaka = _client(app, "tanaka")
    form = tanaka.get("/staff/notices").get_data(as_text=True)
    assert 'value="中原区" checked' in form and 'value="幸区"' not in form  # their ward only, chosen
    preview = _post(tanaka, "/staff/notices", do="preview", **NOTICE)
    assert preview.status_code == 200
    page = _text(preview)
    bubble = re.search(r'<p class="line-bubble">(.*?)</p>', page, re.S).group(1)
    assert bubble == (
        "【中原区・防災】避難所の開設\n\n中原区内の避難所を開設しました。\n最寄りの避難所へ向かってください。\n"
        "https://www.city.kawasaki.jp/bousai/"
    )
    assert 'class="kc-notice-title">避難所の開設<' in page and "詳しく見る" in page  # the widget's look
    assert "/widget.css" in page  # with the widget's own stylesheet
    assert _notices(settings) == []  # nothing stored before it is confirmed
    done = _post(tanaka, "/staff/notices", do="confirm", **NOTICE)
    assert done.status_code == 302 and done.headers["Location"].endswith("/staff/notices")
    (notice,) = _notices(settings)
    assert (notice.title, notice.ward_list, notice.topic, notice.author) == (
        "避難所の開設",
        ["中原区"],
        "bousai",
        "tanaka",
    )
    assert notice.status == "scheduled" and notice.link == NOTICE["link"]
    assert app.extensions["task_queue"].sent == [notice.id]  # the worker is asked to send it now
    assert ("tanaka", "notice-create", f"notice:{notice.id}") in _actions(settings)
    listing = _text(tanaka.get("/staff/notices"))
    assert f"#{notice.id} 避難所の開設" in listing and "予約済み" in listing
    assert f"お知らせ #{notice.id} を送信しています" in listing


def test_edit_from_the_preview_keeps_what_was_typed(console):
    app, _ = console
    tanaka = _client(app, "tanaka")
    page = _text(_post(tanaka, "/staff/notices", do="edit", **NOTICE))
    assert 'value="避難所の開設"' in page and "最寄りの避難所へ向かってください。</textarea>" in page
    assert '<option value="bousai" selected>' in page


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"title": " "}, "件名を入力してください。"),
        ({"body": ""}, "本文を入力してください。"),
        ({"link": "javascript:alert(1)"}, "リンクは https:// で始まるURLにしてください。"),
        ({"topic": ""}, "分野を選んでください。"),
        ({"wards": []}, "区を1つ以上選んでください。"),
        ({"when": "at", "send_at": "2020-01-01T09:00"}, "送信日時が過ぎています。"),
        ({"when": "at", "send_at": "明日"}, "送信日時を選んでください（日本時間）。"),
    ],
)
def test_a_notice_with_a_mistake_is_refused_on_the_form_with_what_was_typed(console, change, message):
    app, settings = console
    ito = _client(app, "ito")
    for step in ("preview", "confirm"):  # a confirm is checked again: the hidden fields may be forged
        resp = _post(ito, "/staff/notices", do=step, **{**NOTICE, **change})
        page = _text(resp)
        assert resp.status_code == 400 and message in page
        assert re.search(r'<p class="error" role="alert"[^>]*>' + re.escape(message), page)
        if "body" not in change:
            assert "最寄りの避難所へ向かってください。</textarea>" in page  # what was typed is kept
    assert _notices(settings) == [] and app.extensions["task_queue"].sent == []


def test_ward_staff_cannot_post_for_another_ward_nor_cancel_its_notice(console):
    app, settings = console
    tanaka = _client(app, "tanaka")
    for wards in (["幸区"], ["中原区", "幸区"]):
        for step in ("preview", "confirm"):
            assert _post(tanaka, "/staff/notices", do=step, **{**NOTICE, "wards": wards}).status_code == 403
    assert _notices(settings) == []
    later = datetime.now(UTC) + timedelta(days=1)
    saiwai = store.create(
        settings.database_url,
        title="幸区の行事",
        body="本文",
        wards=["幸区"],
        topic="event",
        author="kato",
        send_at=later,
    )
    both = store.create(
        settings.database_url,
        title="両区",
        body="本文",
        wards=["中原区", "幸区"],
        topic="event",
        author="kato",
        send_at=later,
    )
    listing = _text(tanaka.get("/staff/notices"))
    assert "幸区の行事" not in listing and "両区" in listing  # a notice touching their ward is listed
    assert f"/staff/notices/{both.id}/cancel" not in listing  # … but not theirs to cancel
    assert _post(tanaka, f"/staff/notices/{saiwai.id}/cancel").status_code == 404
    assert _post(tanaka, f"/staff/notices/{both.id}/cancel").status_code == 403
    assert {n.status for n in _notices(settings)} == {"scheduled"}
    assert tanaka.post(f"/staff/notices/{saiwai.id}/cancel").status_code == 400  # no CSRF token


def test_an_editor_schedules_a_notice_in_japan_time_and_cancels_it(console):
    app, settings = console
    ito = _client(app, "ito")
    page = ito.get("/staff/notices").get_data(as_text=True)
    assert all(f'value="{w}"' in page for w in WARDS)  # every ward for an editor
    tomorrow = datetime.now(JST).date() + timedelta(days=1)
    form = {
        **NOTICE,
        "wards": ["幸区", "中原区"],
        "topic": "event",
        "when": "at",
        "send_at": f"{tomorrow}T09:00",
    }
    preview = _text(_post(ito, "/staff/notices", do="preview", **form))
    assert "【中原区・幸区・イベント】避難所の開設" not in preview  # wards in the city's order …
    assert "【幸区・中原区・イベント】避難所の開設" in preview and "予約する" in preview
    assert _post(ito, "/staff/notices", do="confirm", **form).status_code == 302
    (notice,) = _notices(settings)
    send_at = notice.send_at if notice.send_at.tzinfo else notice.send_at.replace(tzinfo=UTC)
    assert send_at == datetime(tomorrow.year, tomorrow.month, tomorrow.day, 0, 0, tzinfo=UTC)  # 09:00 JST
    assert app.extensions["task_queue"].sent == []  # the worker's sweep sends it when due
    assert store.due(settings.database_url) == []
    assert _post(ito, f"/staff/notices/{notice.id}/cancel").status_code == 302
    assert _notices(settings)[0].status == "cancelled"
    assert ("ito", "notice-cancel", f"notice:{notice.id}") in _actions(settings)
    again = _post(ito, f"/staff/notices/{notice.id}/cancel")
    assert "取り消せません" in _text(ito.get("/staff/notices")) and again.status_code == 302


def test_a_queue_that_cannot_be_reached_leaves_the_notice_to_the_sweep(console):
    app, settings = console
    app.extensions["task_queue"] = RecordingQueue(fail=True)
    kato = _client(app, "kato")
    assert _post(kato, "/staff/notices", do="confirm", **NOTICE).status_code == 302
    (notice,) = _notices(settings)
    assert "数分以内に送られます" in _text(kato.get("/staff/notices"))
    assert store.due(settings.database_url) == [notice.id]  # stored as due: the periodic sweep sends it


def test_send_now_enqueues_on_the_real_task_queue(console):
    """With the SENDING part merged, the console's call lands in the real queue (one more task)."""
    from bot.tasks import TaskQueue

    app, settings = console
    queue = TaskQueue(settings)
    app.extensions["task_queue"] = queue
    before = queue.pending()
    assert _post(_client(app, "kato"), "/staff/notices", do="confirm", **NOTICE).status_code == 302
    assert queue.pending() == before + 1


def _active(settings) -> list[board.Alert]:
    return board.active_alerts(settings.database_url)


def test_only_an_admin_turns_disaster_mode_on_and_off(console):
    app, settings = console
    for name in ("tanaka", "ito"):
        client = _client(app, name)
        assert client.get("/staff/disaster").status_code == 403
        assert _post(client, "/staff/disaster", scope="city", message="避難してください").status_code == 403
        assert "/staff/disaster" not in client.get("/staff/notices").get_data(as_text=True)  # not in the menu
    assert _active(settings) == []
    kato = _client(app, "kato")
    assert "/staff/disaster" in kato.get("/staff/notices").get_data(as_text=True)
    resp = _post(
        kato,
        "/staff/disaster",
        scope="wards",
        wards=["中原区"],
        message="中原区に避難指示が出ています。",
        notice="yes",
        title="避難指示",
    )
    assert resp.status_code == 302
    (alert,) = _active(settings)
    assert alert.wards == ("中原区",) and board.alert_for(settings.database_url, "幸区") is None
    (notice,) = _notices(settings)  # sent as a 防災 notice at the same time
    assert (notice.title, notice.body, notice.topic, notice.ward_list) == (
        "避難指示",
        "中原区に避難指示が出ています。",
        "bousai",
        ["中原区"],
    )
    assert app.extensions["task_queue"].sent == [notice.id]
    with session_scope(settings.database_url) as session:
        assert session.get(DisasterAlert, alert.id).notice_id == notice.id
    page = _text(kato.get("/staff/disaster"))
    assert "中原区に避難指示が出ています。" in page and "終了する" in page
    assert "災害モード中: 中原区" in _text(_client(app, "tanaka").get("/staff/tickets"))  # on every page
    assert ("kato", "disaster-start", f"alert:{alert.id}") in _actions(settings)
    assert _post(kato, "/staff/disaster/end", alert=str(alert.id)).status_code == 302
    assert _active(settings) == [] and "災害モードは有効ではありません" in _text(kato.get("/staff/disaster"))
    assert "災害モード中" not in _text(kato.get("/staff/tickets"))
    assert ("kato", "disaster-end", f"alert:{alert.id}") in _actions(settings)


def test_citywide_disaster_mode_and_its_mistakes(console):
    app, settings = console
    kato = _client(app, "kato")
    missing = _post(kato, "/staff/disaster", scope="wards", message="避難してください")
    assert missing.status_code == 400 and "対象の区を1つ以上選ぶか" in _text(missing)
    empty = _post(kato, "/staff/disaster", scope="city", message="  ")
    assert empty.status_code == 400 and "災害時の表示文を入力してください。" in _text(empty)
    assert _active(settings) == [] and _notices(settings) == []
    assert _post(kato, "/staff/disaster", scope="city", message="市内全域に大雨特別警報").status_code == 302
    (alert,) = _active(settings)
    assert alert.wards == () and all(board.alert_for(settings.database_url, w) for w in WARDS)
    assert _notices(settings) == [] and app.extensions["task_queue"].sent == []  # no notice unless asked
    _post(kato, "/staff/disaster", scope="wards", wards=["幸区"], message="幸区の追加情報")
    assert len(_active(settings)) == 2
    assert _post(kato, "/staff/disaster/end").status_code == 302  # すべて終了する
    assert _active(settings) == []


def _set(client, ward: str, counter: str, **data):
    return _post(client, f"/staff/congestion/{ward}/{counter}", **data)


def test_ward_staff_set_their_counters_congestion_and_an_old_status_shows_as_old(console):
    app, settings = console
    tanaka = _client(app, "tanaka")
    page = _text(tanaka.get("/staff/congestion"))
    assert "窓口の混雑（中原区役所）" in page and "区民課" in page and "未設定" in page
    assert _set(tanaka, "中原区", "kumin", level="some", minutes="20").status_code == 302
    status = board.congestion(settings.database_url, "中原区", "kumin")
    assert (status.level, status.wait_minutes, status.set_by) == ("some", 20, "tanaka")
    page = _text(tanaka.get("/staff/congestion"))
    assert "やや混雑（待ち時間 約20分）" in page and "1時間以上前" not in page
    assert ("tanaka", "congestion-set", "中原区:kumin") in _actions(settings)
    with session_scope(settings.database_url) as session:
        session.execute(update(CounterStatus).values(set_at=datetime.now(UTC) - timedelta(minutes=61)))
    page = _text(tanaka.get("/staff/congestion"))
    assert "1時間以上前・古い情報" in page and '<tr class="stale">' in page
    assert _set(tanaka, "中原区", "kumin", level="", minutes="5").status_code == 302  # minutes alone
    assert board.congestion(settings.database_url, "中原区", "kumin").label == "待ち時間 約5分"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"level": "", "minutes": ""}, "混雑の程度か待ち時間を入力してください。"),
        ({"level": "", "minutes": "abc"}, "待ち時間は分の数（例: 20）で入力してください。"),
        ({"level": "busy", "minutes": "601"}, "待ち時間は0〜600分で入力してください。"),
        (
            {"level": "packed", "minutes": ""},
            "混雑の程度は「空いています」「やや混雑」「混雑」から選んでください。",
        ),
    ],
)
def test_a_congestion_mistake_is_shown_beside_its_counter(console, data, message):
    app, settings = console
    tanaka = _client(app, "tanaka")
    resp = _set(tanaka, "中原区", "kumin", **data)
    assert resp.status_code == 400 and f'<p class="error" role="alert">{message}</p>' in _text(resp)
    if data["minutes"] and data["minutes"].isdecimal():
        assert f'value="{data["minutes"]}"' in _text(resp)  # what was typed is kept
    assert board.congestion(settings.database_url, "中原区", "kumin") is None


def test_congestion_of_another_ward_or_an_unknown_counter_is_refused(console):
    app, settings = console
    tanaka = _client(app, "tanaka")
    assert tanaka.get("/staff/congestion?ward=幸区").status_code == 404
    assert _set(tanaka, "幸区", "kumin", level="busy").status_code == 403
    assert _set(tanaka, "中原区", "no-such-counter", level="busy").status_code == 404
    assert _set(tanaka, "横浜区", "kumin", level="busy").status_code == 404
    assert board.congestion_of_ward(settings.database_url) == []
    ito = _client(app, "ito")  # editors and admins: every ward
    assert "幸区役所" in _text(ito.get("/staff/congestion?ward=幸区"))
    assert _set(ito, "幸区", "kumin", level="busy").status_code == 302


def _next_weekday(after: date, weekday: int, working: bool = True) -> date:
    day = after + timedelta(days=1)
    while day.weekday() != weekday or (working and (day in holidays.JP(years=day.year) or day.month == 12)):
        day += timedelta(days=1)
    return day


def test_openings_are_published_checked_and_removed(console):
    app, settings = console
    tanaka = _client(app, "tanaka")
    today = datetime.now(JST).date()
    saturday, wednesday = _next_weekday(today, 5), _next_weekday(today, 2)
    good = {
        "ward": "中原区",
        "day": saturday.isoformat(),
        "opens": "9:00",
        "closes": "12:00",
        "kind": "holiday",
        "counters": ["kumin"],
        "note": "転入・転出の届出のみ",
    }
    mistakes = [
        ({"day": (today - timedelta(days=1)).isoformat()}, "過去の日付は公開できません。"),
        ({"opens": "12:00", "closes": "09:00"}, "終了時刻は開始時刻より後にしてください。"),
        ({"day": wednesday.isoformat()}, "は区役所が開いている平日です。休日開庁は土曜・日曜・祝日"),
        ({"day": ""}, "日付を選んでください。"),
        ({"kind": ""}, "種類は「臨時窓口」か「休日開庁」を選んでください。"),
        ({"counters": ["nope"]}, "窓口の選び方が正しくありません。"),
    ]
    for change, message in mistakes:
        resp = _post(tanaka, "/staff/openings", **{**good, **change})
        assert resp.status_code == 400 and message in _text(resp), change
        assert 'value="転入・転出の届出のみ"' in _text(resp)  # what was typed is kept
    assert board.upcoming_openings(settings.database_url) == []
    temporary = {
        **good,
        "day": wednesday.isoformat(),
        "kind": "temporary",
        "opens": "17:00",
        "closes": "19:00",
    }
    assert _post(tanaka, "/staff/openings", **temporary).status_code == 302  # a weekday's evening counter
    assert _post(tanaka, "/staff/openings", **good).status_code == 302
    assert _post(tanaka, "/staff/openings", **{**good, "ward": "幸区"}).status_code == 403
    shown = board.upcoming_openings(settings.database_url)
    assert {(o.ward, o.day, o.kind) for o in shown} == {
        ("中原区", wednesday, "temporary"),
        ("中原区", saturday, "holiday"),
    }
    page = _text(tanaka.get("/staff/openings"))
    assert f"{console_text.day_ja(saturday)}" in page and "休日開庁" in page and "09:00〜12:00" in page
    opening = next(o for o in shown if o.kind == "holiday")
    assert ("tanaka", "opening-add", f"opening:{opening.id}") in _actions(settings)
    other = board.add_opening(settings.database_url, "幸区", saturday, "9:00", "12:00", "holiday", "kato")
    assert "幸区" not in _text(tanaka.get("/staff/openings")).split("公開中")[1]  # another ward's: not listed
    assert _post(tanaka, f"/staff/openings/{other.id}/remove").status_code == 404
    assert _post(tanaka, f"/staff/openings/{opening.id}/remove").status_code == 302
    assert opening.id not in {o.id for o in board.upcoming_openings(settings.database_url)}
    assert ("tanaka", "opening-remove", f"opening:{opening.id}") in _actions(settings)


def test_a_holiday_opening_on_a_public_holiday_or_the_year_end_is_accepted(console):
    _, settings = console
    today = datetime.now(JST).date()
    year = today.year + 1
    national = next(d for d in sorted(holidays.JP(years=year)) if d.weekday() < 5)
    for day in (
        national,
        date(year, 12, 29),
        date(year, 1, 2) if date(year, 1, 2).weekday() < 5 else date(year, 1, 3),
    ):
        opening = board.add_opening(settings.database_url, "中原区", day, "9:00", "12:00", "holiday", "kato")
        assert opening.day == day


def test_the_new_pages_have_unique_ids_labels_and_the_consoles_headers(console):
    app, settings = console
    kato = _client(app, "kato")
    board.set_congestion(settings.database_url, "川崎区", "kumin", "kato", "busy")
    board.start_disaster(settings.database_url, "テスト", [], "kato")
    preview = _post(kato, "/staff/notices", do="preview", **NOTICE)
    pages = {
        url: kato.get(url)
        for url in ("/staff/notices", "/staff/disaster", "/staff/congestion", "/staff/openings")
    }
    for url, resp in {**pages, "preview": preview}.items():
        assert resp.status_code == 200, url
        parsed = FormsAndIds()
        parsed.feed(resp.get_data(as_text=True))
        assert not [i for i, n in Counter(parsed.ids).items() if n > 1], url
        unlabelled = [(t, i) for t, i, inside in parsed.fields if not inside and i not in parsed.label_for]
        assert not unlabelled, f"{url}: {unlabelled}"
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"], url
        assert not re.search(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", resp.get_data(as_text=True)), url
    anonymous = app.test_client().get("/staff/notices")
    assert anonymous.status_code == 302 and "/staff/login" in anonymous.headers["Location"]


def test_a_second_click_on_send_does_not_send_the_notice_twice(console):
    app, settings = console
    tanaka = _client(app, "tanaka")
    assert _post(tanaka, "/staff/notices", do="confirm", **NOTICE).status_code == 302
    again = _post(tanaka, "/staff/notices", do="confirm", **NOTICE)  # the back button and resend
    assert again.status_code == 302
    (notice,) = _notices(settings)
    assert app.extensions["task_queue"].sent == [notice.id]
    assert f"同じお知らせ #{notice.id} をもう受け付けています" in _text(tanaka.get("/staff/notices"))
    other = {**NOTICE, "title": "避難所の開設（続報）"}  # a different notice goes out
    assert _post(tanaka, "/staff/notices", do="confirm", **other).status_code == 302
    assert len(_notices(settings)) == 2 and len(app.extensions["task_queue"].sent) == 2
    tomorrow = datetime.now(JST).date() + timedelta(days=1)
    for send_at in (f"{tomorrow}T09:00", f"{tomorrow}T09:00", f"{tomorrow}T10:00"):
        _post(tanaka, "/staff/notices", do="confirm", **{**NOTICE, "when": "at", "send_at": send_at})
    assert len(_notices(settings)) == 4  # 09:00 once, 10:00 once
