"""The editors' loop in the real app on SQLite, with a copy of the real knowledge folder: drafts,
a second person's approval, publishing, history with its diff, rollback, the review queue."""

from __future__ import annotations

import re
import shutil

import pytest
from console_support import logged_in as _client
from sqlalchemy import select

from bot.console.accounts import add_user, audit_log
from bot.knowledge import load_knowledge
from bot.knowledge.editor import entry_text, read_fields
from bot.retrieval.rebuild_jobs import REQUEST_FILE, pending_rebuild
from bot.settings import ROOT, Settings
from bot.storage.db import session_scope
from bot.storage.models import (
    AnswerEvent,
    KnowledgeDraft,
    KnowledgeRevision,
    RegionalIssue,
    UnresolvedQuestion,
)
from web import create_app

PASSWORD = "correct-horse-battery"
NEW_SENTENCE = "区民会議の傍聴は、どなたでも申し込みなしでできます。"


@pytest.fixture()
def loop(tmp_path):
    """The app on a copy of knowledge/ and a fresh SQLite database, with editors ito and sato, an
    admin and a ward staff member. The near-duplicate check is left out (it has its own test)."""
    folder = tmp_path / "knowledge"
    shutil.copytree(ROOT / "knowledge", folder, ignore=shutil.ignore_patterns("calibration", "drafts"))
    settings = Settings(
        knowledge_dir=folder, var_dir=tmp_path / "var", db_url=f"sqlite:///{tmp_path / 'c.db'}"
    )
    app = create_app(settings)
    app.extensions["console"].editors.duplicates = None
    for name, role in (("ito", "editor"), ("sato", "editor"), ("kato", "admin"), ("tanaka", "ward_staff")):
        add_user(settings.database_url, name, role, PASSWORD, ["中原区"] if role == "ward_staff" else None)
    return app, settings


def _save(client, kind: str, entry_id: str | None, fields: dict[str, str]):
    url = f"/staff/knowledge/{kind}/{entry_id}" if entry_id else f"/staff/knowledge/new/{kind}"
    return client.post(url, data={"csrf_token": client.token, "do": "save", **fields})


def _draft_id(resp) -> int:
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    return int(re.search(r"/staff/drafts/(\d+)$", resp.headers["Location"]).group(1))


def _act(client, draft_id: int, verb: str, **data):
    return client.post(f"/staff/drafts/{draft_id}/{verb}", data={"csrf_token": client.token, **data})


def _answer_edit(settings, sentence: str = NEW_SENTENCE) -> dict[str, str]:
    fields = read_fields(settings.knowledge_dir, "faq", "kumin-kaigi")
    fields["answer"] += sentence
    return fields


def _status(settings, draft_id: int) -> str:
    with session_scope(settings.database_url) as session:
        return session.get(KnowledgeDraft, draft_id).status


def test_an_edit_is_a_draft_until_a_second_person_approves_it(loop):
    app, settings = loop
    faq = settings.knowledge_dir / "faq.yml"
    before = faq.read_bytes()
    ito = _client(app, "ito")
    draft_id = _draft_id(_save(ito, "faq", "kumin-kaigi", _answer_edit(settings)))
    assert faq.read_bytes() == before and pending_rebuild(settings) is None  # the live file untouched
    page = ito.get(f"/staff/drafts/{draft_id}").get_data(as_text=True)
    assert NEW_SENTENCE in page and 'class="add"' in page  # the preview and the diff
    assert _act(ito, draft_id, "submit").status_code == 302
    refused = _act(ito, draft_id, "approve")
    assert refused.status_code == 409 and "自分で書いた下書きは承認できません" in refused.get_data(
        as_text=True
    )
    assert faq.read_bytes() == before and _status(settings, draft_id) == "submitted"
    kato = _client(app, "kato")
    assert f"/staff/drafts/{draft_id}" in kato.get("/staff/review").get_data(as_text=True)
    assert _act(kato, draft_id, "approve").status_code == 302
    assert NEW_SENTENCE in load_knowledge(settings.knowledge_dir).faqs["kumin-kaigi"].answer
    assert pending_rebuild(settings)["by"] == "kato"
    with session_scope(settings.database_url) as session:
        revision = session.scalars(select(KnowledgeRevision)).one()
        assert (revision.author, revision.approver, revision.draft_id) == ("ito", "kato", draft_id)
        assert NEW_SENTENCE not in revision.before and NEW_SENTENCE in revision.after
    # only the entry's lines changed
    changed = [
        (a, b)
        for a, b in zip(before.decode().splitlines(), faq.read_text().splitlines(), strict=True)
        if a != b
    ]
    assert len(changed) == 1 and NEW_SENTENCE in changed[0][1]
    assert ("kato", "knowledge-publish", "faq:kumin-kaigi") in {
        (r["user"], r["action"], r["target"]) for r in audit_log(settings.database_url)
    }
    history = ito.get("/staff/knowledge/faq/kumin-kaigi/history").get_data(as_text=True)
    assert f"/staff/history/{revision.id}" in history and "kato" in history


def test_ward_staff_can_neither_draft_nor_approve_nor_roll_back(loop):
    app, settings = loop
    ito = _client(app, "ito")
    draft_id = _draft_id(_save(ito, "faq", "kumin-kaigi", _answer_edit(settings)))
    _act(ito, draft_id, "submit")
    tanaka = _client(app, "tanaka")
    for url in ("/staff/knowledge/faq/kumin-kaigi", "/staff/review", "/staff/knowledge/history",
                f"/staff/drafts/{draft_id}", "/staff/knowledge/new/faq"):  # fmt: skip
        assert tanaka.get(url).status_code == 403, url
    assert _save(tanaka, "faq", "kumin-kaigi", _answer_edit(settings)).status_code == 403
    assert _save(tanaka, "faq", None, {"id": "x", "questions": "q", "answer": "a"}).status_code == 403
    assert _act(tanaka, draft_id, "approve").status_code == 403
    assert _act(tanaka, draft_id, "reject", **{"reject-comment": "no"}).status_code == 403
    assert tanaka.post("/staff/history/1/rollback", data={"csrf_token": tanaka.token}).status_code == 403
    assert _status(settings, draft_id) == "submitted"
    # and without a CSRF token, an editor's approval is refused too
    kato = _client(app, "kato")
    assert kato.post(f"/staff/drafts/{draft_id}/approve").status_code == 400
    assert _status(settings, draft_id) == "submitted"


def test_an_invalid_draft_is_kept_but_cannot_be_submitted(loop):
    app, settings = loop
    ito = _client(app, "ito")
    fields = _answer_edit(settings)
    fields["source"] = "no-such-source"
    draft_id = _draft_id(_save(ito, "faq", "kumin-kaigi", fields))
    resp = _act(ito, draft_id, "submit")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 409 and "審査に出せません" in page
    assert re.search(r"faq\.yml:\d+: unknown source &#39;no-such-source&#39;", page)  # file:line
    assert "「出典」の「no-such-source」は登録されていません" in page
    assert _status(settings, draft_id) == "draft"
    fields["source"] = "seed / 第2章 2(4)ウ 区民会議の設置・運営"
    assert _act(ito, draft_id, "save", do="save", **fields).status_code == 302
    assert _act(ito, draft_id, "submit").status_code == 302 and _status(settings, draft_id) == "submitted"


def test_a_rejected_draft_keeps_the_reviewers_comment_for_its_author(loop):
    app, settings = loop
    ito, sato = _client(app, "ito"), _client(app, "sato")
    draft_id = _draft_id(_save(ito, "faq", "kumin-kaigi", _answer_edit(settings)))
    _act(ito, draft_id, "submit")
    assert _act(sato, draft_id, "reject", **{"reject-comment": ""}).status_code == 302  # no reason: asked
    assert _status(settings, draft_id) == "submitted"
    assert (
        _act(sato, draft_id, "reject", **{"reject-comment": "出典の節を確かめてください"}).status_code == 302
    )
    assert _status(settings, draft_id) == "rejected"
    page = ito.get(f"/staff/drafts/{draft_id}").get_data(as_text=True)
    assert "差し戻されました（sato）" in page and "出典の節を確かめてください" in page
    assert "出典の節を確かめてください" in ito.get("/staff/review").get_data(as_text=True)
    assert _act(sato, draft_id, "approve").status_code == 409  # a rejected draft is not approved


def test_a_conflicting_publish_is_detected_and_the_author_refreshes(loop):
    app, settings = loop
    ito, sato, kato = _client(app, "ito"), _client(app, "sato"), _client(app, "kato")
    first = _draft_id(_save(ito, "faq", "kumin-kaigi", _answer_edit(settings, "（伊藤）")))
    second = _draft_id(_save(sato, "faq", "kumin-kaigi", _answer_edit(settings, "（佐藤）")))
    _act(ito, first, "submit")
    _act(sato, second, "submit")
    assert _act(kato, second, "approve").status_code == 302
    published = entry_text(settings.knowledge_dir, "faq", "kumin-kaigi")
    resp = _act(kato, first, "approve")
    assert resp.status_code == 409 and "最新の内容に合わせる" in resp.get_data(as_text=True)
    assert entry_text(settings.knowledge_dir, "faq", "kumin-kaigi") == published  # not overwritten
    assert "（伊藤）" not in published and _status(settings, first) == "submitted"
    assert _act(ito, first, "refresh").status_code == 302 and _status(settings, first) == "draft"
    page = ito.get(f"/staff/drafts/{first}").get_data(as_text=True)
    assert 'class="del"' in page and "（佐藤）" in page  # the diff shows what the publish brought
    assert _act(ito, first, "submit").status_code == 302
    assert _act(kato, first, "approve").status_code == 302
    assert "（伊藤）" in entry_text(settings.knowledge_dir, "faq", "kumin-kaigi")


def test_rollback_restores_the_entry_byte_for_byte_as_a_new_audited_revision(loop):
    app, settings = loop
    faq = settings.knowledge_dir / "faq.yml"
    original = faq.read_bytes()
    ito, kato = _client(app, "ito"), _client(app, "kato")
    for sentence in ("（一）", "（二）"):
        draft_id = _draft_id(_save(ito, "faq", "kumin-kaigi", _answer_edit(settings, sentence)))
        _act(ito, draft_id, "submit")
        _act(kato, draft_id, "approve")
    once = faq.read_bytes()
    with session_scope(settings.database_url) as session:
        first, second = (
            r.id for r in session.scalars(select(KnowledgeRevision).order_by(KnowledgeRevision.id))
        )
    refused = ito.post(f"/staff/history/{first}/rollback", data={"csrf_token": ito.token})
    assert refused.status_code == 409 and faq.read_bytes() == once  # a later change stands in the way
    (settings.var_dir / REQUEST_FILE).unlink()
    page = ito.get(f"/staff/history/{second}").get_data(as_text=True)
    assert 'class="add"' in page and 'class="del"' in page and "この変更を元に戻す" in page
    resp = ito.post(f"/staff/history/{second}/rollback", data={"csrf_token": ito.token})
    assert resp.status_code == 302 and pending_rebuild(settings)["by"] == "ito"
    resp = ito.post(f"/staff/history/{first}/rollback", data={"csrf_token": ito.token})
    assert resp.status_code == 302
    assert faq.read_bytes() == original  # byte for byte
    with session_scope(settings.database_url) as session:
        rows = session.scalars(select(KnowledgeRevision).order_by(KnowledgeRevision.id)).all()
        assert [r.rolled_back for r in rows] == [None, None, second, first]
        assert rows[3].after == rows[0].before and rows[3].author == "ito"
    actions = [(r["user"], r["action"]) for r in audit_log(settings.database_url)]
    assert actions.count(("kato", "knowledge-publish")) == 2
    assert actions.count(("ito", "knowledge-rollback")) == 2
    assert "を元に戻した" in ito.get("/staff/knowledge/history").get_data(as_text=True)


def test_a_new_faq_entry_is_drafted_published_and_rolled_back_away(loop):
    app, settings = loop
    ito, sato = _client(app, "ito"), _client(app, "sato")
    fields = {"id": "bochou", "questions": "区民会議は傍聴できますか", "answer": NEW_SENTENCE,
              "source": "https://www.city.kawasaki.jp/"}  # fmt: skip
    draft_id = _draft_id(_save(ito, "faq", None, fields))
    resp = _act(ito, draft_id, "submit")
    assert resp.status_code == 409  # a URL is not a source: the schema wants a sources.yml id
    assert "unknown source" in resp.get_data(as_text=True)
    fields["source"] = "seed / 第2章 2(4)ウ 区民会議の設置・運営"
    _act(ito, draft_id, "save", do="save", **fields)
    assert _act(ito, draft_id, "submit").status_code == 302
    assert _act(sato, draft_id, "approve").status_code == 302
    assert load_knowledge(settings.knowledge_dir).faqs["bochou"].answer == NEW_SENTENCE
    taken = _draft_id(_save(sato, "faq", None, {**fields, "id": "bochou"}))
    assert "duplicate id" in sato.get(f"/staff/drafts/{taken}").get_data(as_text=True)
    with session_scope(settings.database_url) as session:
        revision = session.scalars(select(KnowledgeRevision)).one().id
    assert (
        sato.post(f"/staff/history/{revision}/rollback", data={"csrf_token": sato.token}).status_code == 302
    )
    assert "bochou" not in load_knowledge(settings.knowledge_dir).faqs


def test_faq_from_a_regional_issue_is_a_masked_draft_in_the_review_queue(loop):
    app, settings = loop
    with session_scope(settings.database_url) as session:
        issue = RegionalIssue(ward="中原区", label="マンホール", count=1, centroid=b"\0" * 4)
        session.add(issue)
        session.flush()
        session.add(
            UnresolvedQuestion(
                ward="中原区",
                text="マンホールの模様は 090-1234-5678",
                score=0.1,
                embedding=b"\0" * 4,
                issue_id=issue.id,
            )
        )
        issue_id = issue.id
    tanaka = _client(app, "tanaka")
    assert (
        tanaka.post(f"/staff/issues/{issue_id}/draft", data={"draft-csrf_token": tanaka.token}).status_code
        == 403
    )
    ito = _client(app, "ito")
    resp = ito.post(f"/staff/issues/{issue_id}/draft", data={"draft-csrf_token": ito.token})
    draft_id = _draft_id(resp)
    again = ito.post(f"/staff/issues/{issue_id}/draft", data={"draft-csrf_token": ito.token})
    assert _draft_id(again) == draft_id  # pressed twice: one draft
    draft = app.extensions["console"].editors.get(draft_id)
    assert draft["fields"]["id"] == f"regional-issue-{issue_id}" and draft["fields"]["review"] == "on"
    assert draft["fields"]["questions"] == "マンホールの模様は [電話番号]"
    assert f"/staff/drafts/{draft_id}" in _client(app, "sato").get("/staff/review").get_data(as_text=True)
    assert not (settings.knowledge_dir / "drafts").exists()  # the console's draft is in the database


def test_the_review_queue_lists_flagged_and_poorly_rated_entries(loop):
    app, settings = loop
    with session_scope(settings.database_url) as session:
        for entry, ratings in (
            ("kumin-kaigi", [True, False, False, False, False]),  # 20%: listed
            ("juminhyo", [True, True, True, False, False]),  # 60%: not
            ("zeimu-shuyaku", [False, False, False, False]),  # four ratings: too few to say
        ):
            for helpful in ratings:
                session.add(AnswerEvent(outcome="answered", entry=entry, topic=entry, helpful=helpful))
            session.add(AnswerEvent(outcome="answered", entry=entry, topic=entry, helpful=None))
    queue = app.extensions["console"].editors.queue("ito")
    assert [(r["id"], r["ratings"], r["kind"]) for r in queue["poorly_rated"]] == [("kumin-kaigi", 5, "faq")]
    flagged = {(e["file"], e["id"]) for e in queue["flagged"]}
    assert ("hours.yml", "ward-weekday") in flagged and ("towns.yml", "川崎区") in flagged
    assert ("faq.yml", "kumin-kaigi") not in flagged
    page = _client(app, "ito").get("/staff/review").get_data(as_text=True)
    assert "/staff/knowledge/faq/kumin-kaigi" in page and "20%" in page and "hours.yml:" in page
    stricter = app.extensions["console"].editors
    stricter.settings = settings.replace(review_helpful_below=0.1)
    assert stricter.poorly_rated() == []


def test_hours_towns_and_offices_are_edited_with_the_knowledge_checks(loop):
    app, settings = loop
    ito, kato = _client(app, "ito"), _client(app, "kato")
    hours = read_fields(settings.knowledge_dir, "hours", "ward-weekday")
    bad = {**hours, "open": "8:30", "closed": '{holidays: true, from: "12-29", source: kyujitsu-jorei}'}
    page = _save(ito, "hours", "ward-weekday", {**bad, "do": "preview"}).get_data(as_text=True)
    assert re.search(r"hours\.yml:\d+: .*open", page) and "closed needs both" in page
    office = read_fields(settings.knowledge_dir, "office", "nakahara-ku-office")
    page = _save(ito, "office", "nakahara-ku-office", {**office, "hours": "no-such-hours", "do": "preview"})
    assert "unknown hours &#39;no-such-hours&#39;" in page.get_data(as_text=True)
    hours.pop("review")  # clearing review: true is an edit like any other
    hours["close"] = "17:15"
    draft_id = _draft_id(_save(ito, "hours", "ward-weekday", hours))
    _act(ito, draft_id, "submit")
    assert _act(kato, draft_id, "approve").status_code == 302
    kb = load_knowledge(settings.knowledge_dir)
    text = entry_text(settings.knowledge_dir, "hours", "ward-weekday")
    assert kb.schedules["ward-weekday"].close == "17:15" and "review" not in text
    assert 'close: "17:15"' in text and 'open: "08:30"' in text  # quoted as YAML 1.1 needs
    towns = read_fields(settings.knowledge_dir, "towns", "中原区")
    towns["towns"] = towns["towns"].replace("]", ", {name: テスト町, reading: てすとちょう, kind: 地区}]", 1)
    if "テスト町" not in towns["towns"]:
        towns["towns"] += "\n- {name: テスト町, reading: てすとちょう, kind: 地区}"
    draft_id = _draft_id(_save(ito, "towns", "中原区", towns))
    _act(ito, draft_id, "submit")
    assert _act(kato, draft_id, "approve").status_code == 302
    assert any(
        t.name == "テスト町" and t.ward == "中原区" for t in load_knowledge(settings.knowledge_dir).towns
    )


def test_a_near_duplicate_is_refused_at_submission(loop):
    """`concierge knowledge check`'s near-duplicate check, with its encoder, on submission."""
    app, settings = loop
    console = app.extensions["console"]
    console.editors.duplicates = console._near_duplicates
    ito = _client(app, "ito")
    fields = read_fields(settings.knowledge_dir, "faq", "kumin-kaigi")
    draft_id = _draft_id(_save(ito, "faq", None, {**fields, "id": "kumin-kaigi-2"}))
    resp = _act(ito, draft_id, "submit")
    assert resp.status_code == 409 and "nearly duplicates" in resp.get_data(as_text=True)
    assert _status(settings, draft_id) == "draft"


def test_migration_0006_goes_down_and_up_again(tmp_path):
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import inspect

    from bot.storage.db import MIGRATIONS, get_engine

    db_url = f"sqlite:///{tmp_path / 'm.db'}"
    add_user(db_url, "ito", "editor", PASSWORD)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", db_url)
    command.downgrade(config, "0005")
    tables = inspect(get_engine(db_url)).get_table_names()
    assert "knowledge_drafts" not in tables and "knowledge_revisions" not in tables
    assert "answer_events" in tables
    command.upgrade(config, "head")
    tables = inspect(get_engine(db_url)).get_table_names()
    assert {"knowledge_drafts", "knowledge_revisions"} <= set(tables)
    with session_scope(db_url) as session:
        session.add(KnowledgeDraft(kind="faq", entry_id=None, base="", fields="{}", author="ito"))


def test_a_publish_in_a_file_ruamel_would_reformat_changes_only_the_entrys_lines(loop):
    """services.yml does not survive a whole-file ruamel round trip unchanged (nested lists are
    indented): a publish rewrites the entry's lines only, and its rollback gives the bytes back."""
    app, settings = loop
    editors = app.extensions["console"].editors
    services = settings.knowledge_dir / "services.yml"
    original = services.read_bytes()
    fields = read_fields(settings.knowledge_dir, "service", "juminhyo")
    fields["questions"] += "\n住民票を郵送で取りたい"
    draft, result = editors.save("service", "juminhyo", fields, "ito")
    assert not result.problems
    editors.submit(draft["id"], "ito")
    published = editors.approve(draft["id"], "sato")
    old, new = original.decode().splitlines(), services.read_text(encoding="utf-8").splitlines()
    assert len(new) == len(old) + 1
    added = [line for line in new if line not in old]
    assert added == ["    - 住民票を郵送で取りたい"]  # indented like its neighbours
    editors.rollback(published["id"], "ito")
    assert services.read_bytes() == original
