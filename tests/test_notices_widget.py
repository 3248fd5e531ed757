"""GET /api/notices: what the widget shows at the top of its panel — the ward's current notices and,
in disaster mode, the alert for its red banner. Public text only, cached briefly, never an error
page the widget would have to show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from bot.notices import board, store
from bot.settings import Settings
from bot.storage.db import session_scope
from bot.storage.models import Notice
from web import create_app
from web import widget as widget_module


@pytest.fixture()
def api(tmp_path):
    settings = Settings(var_dir=tmp_path / "var", db_url=f"sqlite:///{tmp_path / 'w.db'}")
    app = create_app(settings)
    return app, app.test_client(), settings


def _sent(settings, notice: store.NoticeView, when: datetime | None = None) -> None:
    """As the sender leaves a notice it has sent."""
    with session_scope(settings.database_url) as session:
        sent_at = when or datetime.now(UTC)
        session.execute(
            update(Notice)
            .where(Notice.id == notice.id)
            .values(status="sent", sent_at=sent_at, send_at=sent_at)
        )


def _notice(settings, title: str, wards: list[str], **more) -> store.NoticeView:
    return store.create(
        settings.database_url, title=title, body=f"{title}の本文", wards=wards, topic="bousai", author="kato",
        link="https://www.city.kawasaki.jp/", **more,
    )  # fmt: skip


def test_the_wards_current_notices_and_no_banner_without_disaster_mode(api):
    _, client, settings = api
    nakahara = _notice(settings, "中原区の避難所", ["中原区"])
    both = _notice(settings, "二区の行事", ["中原区", "幸区"])
    saiwai = _notice(settings, "幸区の行事", ["幸区"])
    waiting = _notice(settings, "予約中", ["中原区"], send_at=datetime.now(UTC) + timedelta(hours=2))
    old = _notice(settings, "先月の話", ["中原区"])
    for n in (nakahara, both, saiwai):
        _sent(settings, n)
    _sent(settings, old, datetime.now(UTC) - timedelta(days=30))
    resp = client.get("/api/notices?ward=中原区")
    assert resp.status_code == 200
    body = resp.get_json()
    assert [n["title"] for n in body["notices"]] == ["二区の行事", "中原区の避難所"]  # newest first
    assert body["disaster"] is None
    first = body["notices"][0]
    assert set(first) == {"id", "title", "body", "link", "wards", "topic", "topic_label", "sent_at"}
    assert "kato" not in resp.get_data(as_text=True)  # no author, no counts
    assert first["topic_label"] == "防災" and first["link"] == "https://www.city.kawasaki.jp/"
    assert waiting.id not in {n["id"] for n in body["notices"]}
    assert resp.cache_control.public and resp.cache_control.max_age == 30
    assert resp.headers["Access-Control-Allow-Origin"] == "*"  # city pages elsewhere embed the widget


def test_disaster_mode_for_a_ward_and_citywide(api):
    _, client, settings = api
    alert = board.start_disaster(settings.database_url, "中原区に避難指示が出ています。", ["中原区"], "kato")
    banner = client.get("/api/notices?ward=中原区").get_json()["disaster"]
    assert banner == {
        "wards": ["中原区"],
        "message": "中原区に避難指示が出ています。",
        "since": banner["since"],
    }
    assert "kato" not in str(banner)
    assert client.get("/api/notices?ward=幸区").get_json()["disaster"] is None
    assert client.get("/api/notices").get_json() == {
        "notices": [],
        "disaster": None,
    }  # no ward: citywide only
    board.start_disaster(settings.database_url, "市内全域に大雨特別警報", [], "kato")
    assert client.get("/api/notices").get_json()["disaster"]["message"] == "市内全域に大雨特別警報"
    assert client.get("/api/notices?ward=幸区").get_json()["disaster"]["message"] == "市内全域に大雨特別警報"
    board.end_disaster(settings.database_url, "kato")
    assert client.get("/api/notices?ward=中原区").get_json()["disaster"] is None
    del alert


def test_a_ward_that_is_not_one_of_the_seven_is_refused(api):
    _, client, _ = api
    for ward in ("横浜市", "<script>", "中原"):
        resp = client.get("/api/notices", query_string={"ward": ward})
        assert resp.status_code == 400 and resp.get_json()["notices"] == []


def test_a_database_that_does_not_answer_gives_an_empty_board(api, monkeypatch):
    _, client, _ = api

    def down(*args, **kwargs):
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(store, "current", down)
    resp = client.get("/api/notices?ward=中原区")
    assert resp.status_code == 503
    assert resp.get_json() == {"error": "unavailable", "notices": [], "disaster": None}
    assert resp.cache_control.max_age is None  # an outage is not cached


def test_many_requests_from_one_address_are_limited(api, monkeypatch):
    _, client, _ = api
    monkeypatch.setattr(widget_module, "NOTICES_RATE", "3/minute")
    statuses = [client.get("/api/notices?ward=中原区").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    other = client.get("/api/notices?ward=中原区", environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 200  # another address has its own budget
