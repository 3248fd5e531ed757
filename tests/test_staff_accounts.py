"""Staff accounts and console sessions: server-side sessions, timeouts, passwords, the audit of
failed logins, the CLI, and the security headers — on SQLite and PostgreSQL, with the real app."""

from __future__ import annotations

import re
import statistics
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.console import accounts
from bot.console.accounts import StaffError, add_user, audit_log, authenticate, password_problem
from bot.storage.db import session_scope
from bot.storage.models import ConsoleSession
from web import create_app

PASSWORD = "correct-horse-battery"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path, pg_databases):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'staff.db'}"
    else:
        with pg_databases("concierge_staff") as url:
            yield url.replace("postgresql://", "postgresql+psycopg://")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture()
def console(small_knowledge, tmp_path, db_url):
    """The web app on this database with an injected clock, and one ward_staff user."""
    from bot.settings import Settings

    settings = Settings(knowledge_dir=small_knowledge, var_dir=tmp_path / "var", db_url=db_url)
    app = create_app(settings)
    clock = app.extensions["clock"] = Clock()
    add_user(db_url, "tanaka", "ward_staff", PASSWORD, ["中原区"])
    return app, clock, settings


def _token(page: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


def _login(client, name: str = "tanaka", password: str = PASSWORD):
    token = _token(client.get("/staff/login").get_data(as_text=True))
    return client.post("/staff/login", data={"csrf_token": token, "name": name, "password": password})


def _logged_in(client) -> bool:
    resp = client.get("/staff/tickets")
    assert resp.status_code in (200, 302)
    return resp.status_code == 200


def test_logout_ends_every_copy_of_the_session(console):
    app, _clock, _settings = console
    client = app.test_client()
    assert _login(client).status_code == 302 and _logged_in(client)
    copied = client.get_cookie("session").value
    page = client.get("/staff/tickets").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    assert client.post("/staff/logout", data={"csrf_token": token}).status_code == 302
    replay = app.test_client()
    replay.set_cookie("session", copied)
    resp = replay.get("/staff/tickets")
    assert resp.status_code == 302 and "/staff/login" in resp.headers["Location"]


def test_disabling_a_user_refuses_their_live_session_and_their_logins(console):
    app, _clock, settings = console
    client = app.test_client()
    _login(client)
    assert _logged_in(client)
    accounts.set_disabled(settings.database_url, "tanaka", True)
    assert not _logged_in(client)
    assert _login(client).status_code == 401
    accounts.set_disabled(settings.database_url, "tanaka", False)
    assert _login(client).status_code == 302 and _logged_in(client)
    actions = [(r["user"], r["action"], r["target"], r["detail"]) for r in audit_log(settings.database_url)]
    assert ("cli", "disable-user", "tanaka", "") in actions
    assert ("cli", "enable-user", "tanaka", "") in actions
    assert ("tanaka", "login-failed", "", "account disabled") in actions


def test_a_new_password_ends_the_old_sessions(console):
    app, _clock, settings = console
    client = app.test_client()
    _login(client)
    accounts.set_password(settings.database_url, "tanaka", "a-new-long-passphrase")
    assert not _logged_in(client)
    assert _login(client).status_code == 401
    assert _login(client, password="a-new-long-passphrase").status_code == 302


def test_idle_timeout(console):
    app, clock, _settings = console
    client = app.test_client()
    _login(client)
    for _ in range(4):  # active every 25 minutes: stays logged in past the first 30
        clock.advance(minutes=25)
        assert _logged_in(client)
    clock.advance(minutes=30, seconds=61)  # 30 min idle (last_seen is written once a minute)
    assert not _logged_in(client)
    assert not _logged_in(client)  # and the session is gone, not only refused once
    assert _login(client).status_code == 302 and _logged_in(client)


def test_absolute_timeout_even_when_active(console):
    app, clock, _settings = console
    client = app.test_client()
    _login(client)
    for _ in range(12 * 3 - 1):  # a request every 20 minutes for 11 h 40 min
        clock.advance(minutes=20)
        assert _logged_in(client)
    clock.advance(minutes=21)
    assert not _logged_in(client)


def test_timeouts_are_settings(console):
    _app, clock, settings = console
    short = create_app(settings.replace(staff_idle_minutes=5))
    short.extensions["clock"] = clock
    client = short.test_client()
    _login(client)
    clock.advance(minutes=6)
    assert not _logged_in(client)


def test_old_sessions_are_swept_at_the_next_login(console):
    app, clock, settings = console
    _login(app.test_client())
    clock.advance(hours=13)
    _login(app.test_client())
    with session_scope(settings.database_url) as session:
        assert len(session.scalars(select(ConsoleSession)).all()) == 1
        stored = session.scalars(select(ConsoleSession)).one().token_hash
    assert len(stored) == 64  # a hash; the token itself is only in the cookie


def test_a_cookie_from_before_server_side_sessions_is_refused(console):
    """Flask-Login's old cookies carried the user's number: signed, but no session row."""
    app, _clock, _settings = console
    client = app.test_client()
    with client.session_transaction() as cookie:
        cookie["_user_id"] = "1"
        cookie["_fresh"] = True
    assert not _logged_in(client)


def test_failed_logins_are_audited_without_the_password(console):
    app, _clock, settings = console
    client = app.test_client()
    assert _login(client, password="wrong-password-123").status_code == 401
    assert _login(client, name="my-secret-passw0rd", password="x").status_code == 401
    rows = audit_log(settings.database_url)
    failed = [r for r in rows if r["action"] == "login-failed"]
    assert {(r["user"], r["detail"]) for r in failed} == {
        ("tanaka", "wrong password"),
        (accounts.unknown_name("my-secret-passw0rd"), "unknown user"),
    }
    text = repr(rows)
    assert "wrong-password-123" not in text and "my-secret-passw0rd" not in text


def test_an_unknown_name_takes_as_long_as_a_wrong_password(db_url):
    add_user(db_url, "suzuki", "editor", PASSWORD)

    def took(name: str) -> float:
        started = time.perf_counter()
        assert authenticate(db_url, name, "not-the-password") is None
        return time.perf_counter() - started

    took("suzuki"), took("nobody")  # warm: engines, the dummy hash
    known = statistics.median(took("suzuki") for _ in range(5))
    unknown = statistics.median(took("nobody") for _ in range(5))
    assert unknown > 0.5 * known and known > 0.5 * unknown  # scrypt dominates both; without it ~100×


@pytest.mark.parametrize(
    ("password", "refused"),
    [
        ("short-pass1", True),  # 11 characters
        ("password1234", True),
        ("qwertyuiopasdfgh", True),
        ("1qaz2wsx3edc4rfv", True),
        ("iloveyou12345678", True),  # a common password with digits added
        ("Password1234!", True),
        ("abcdefghijklmnop", True),  # a sequence
        ("tanaka-2026-spring", True),  # contains the user name
        (PASSWORD, False),
        ("川崎の春は桜が咲くね", True),  # 10 characters
        ("川崎市中原区の春は桜が咲く", False),
    ],
)
def test_password_rules(password, refused):
    assert (password_problem(password, "tanaka") is not None) == refused


def test_the_rules_apply_to_new_users_and_new_passwords(db_url):
    with pytest.raises(StaffError, match="12"):
        add_user(db_url, "sato", "editor", "elevenchars")
    with pytest.raises(StaffError, match="common"):
        add_user(db_url, "sato", "editor", "password12345")
    add_user(db_url, "sato", "editor", PASSWORD)
    with pytest.raises(StaffError, match="common"):
        accounts.set_password(db_url, "sato", "qwerty123456")
    with pytest.raises(StaffError, match="no user"):
        accounts.set_password(db_url, "nobody", PASSWORD)
    assert authenticate(db_url, "sato", PASSWORD) is not None


def test_cli_disable_enable_set_password(db_url, monkeypatch, capsys):
    from bot import settings as settings_module

    add_user(db_url, "kato", "admin", PASSWORD)
    monkeypatch.setattr("bot.cli.Settings", lambda: settings_module.Settings(db_url=db_url))
    assert main(["staff", "disable", "kato"]) == 0
    assert authenticate(db_url, "kato", PASSWORD) is None
    assert main(["staff", "enable", "kato"]) == 0
    assert authenticate(db_url, "kato", PASSWORD) is not None
    assert main(["staff", "set-password", "kato", "--password", "short"]) == 1
    assert "12 characters" in capsys.readouterr().err
    assert main(["staff", "set-password", "kato", "--password", "another-good-passphrase"]) == 0
    assert authenticate(db_url, "kato", "another-good-passphrase") is not None
    assert main(["staff", "disable", "nobody"]) == 1


def test_security_headers_on_every_staff_page(console):
    app, _clock, _settings = console
    client = app.test_client()
    anonymous = [client.get("/staff/login"), client.get("/staff/tickets"), client.get("/staff/nothing-here")]
    _login(client)
    pages = anonymous + [client.get(p) for p in ("/staff/tickets", "/staff/issues", "/staff/knowledge")]
    assert [p.status_code for p in pages] == [200, 302, 404, 200, 200, 403]
    for resp in pages:
        csp = resp.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "script-src" not in csp and "'unsafe-inline'" not in csp
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Referrer-Policy"] == "same-origin"
        assert "Strict-Transport-Security" not in resp.headers  # plain HTTP: HSTS would be a lie
    assert pages[3].headers["Cache-Control"] == "no-store"  # residents' tickets stay out of caches
    css = client.get("/staff/console.css")
    assert css.status_code == 200 and b".msg.note" in css.data


def test_hsts_with_secure_cookies(console):
    _app, _clock, settings = console
    client = create_app(settings.replace(secure_cookies=True)).test_client()
    assert client.get("/staff/login").headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "Strict-Transport-Security" not in client.get("/healthz").headers  # staff pages only


def test_no_inline_script_or_style_in_the_console_templates():
    from bot.settings import ROOT

    for path in (ROOT / "web" / "templates" / "staff").glob("*.html"):
        html = path.read_text(encoding="utf-8")
        assert not re.search(r"<script|<style|\sstyle=|\son[a-z]+=|javascript:", html, re.I), path.name


def test_timeouts_must_be_positive():
    from pydantic import ValidationError

    from bot.settings import Settings

    with pytest.raises(ValidationError, match="positive"):
        Settings(staff_idle_minutes=0)


def test_migration_0004_goes_down_and_up_again(db_url):
    """Down to 0003 (no sessions table, no disabled column) and back: existing users survive."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import inspect

    from bot.storage.db import MIGRATIONS, get_engine

    add_user(db_url, "ito", "editor", PASSWORD)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))
    command.downgrade(config, "0003")
    assert "staff_sessions" not in inspect(get_engine(db_url)).get_table_names()
    command.upgrade(config, "head")
    assert "staff_sessions" in inspect(get_engine(db_url)).get_table_names()
    assert authenticate(db_url, "ito", PASSWORD) is not None  # disabled defaults to false
