"""The editors' loop: an editor's change is a draft until a second person approves it; approving
publishes it to knowledge/ (the entry's lines only, written atomically), keeps a revision with
the text before and after, asks the worker for an index rebuild and audits it. A rollback writes
a revision's earlier text back as a new revision, in one click (it restores what was published
before, so it needs no second person; it is audited like a publish).

Knowledge is public text; drafts from regional issues hold the issue's questions masked.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import yaml
from sqlalchemy import case, func, select

from bot.console.accounts import audit
from bot.knowledge import KnowledgeBase, schema
from bot.knowledge.editor import (
    FIELDS,
    KEYS,
    KIND_OF_FILE,
    NEW_KINDS,
    EditResult,
    check,
    check_restore,
    empty_fields,
    entry_text,
    write,
)
from bot.knowledge.write_lock import one_writer
from bot.privacy import mask
from bot.retrieval.rebuild_jobs import request_rebuild
from bot.settings import Settings
from bot.storage.db import session_scope
from bot.storage.models import AnswerEvent, KnowledgeDraft, KnowledgeRevision, RegionalIssue


class DraftError(Exception):
    """A draft action refused, in words for the console; `problems` when the knowledge check failed."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


def _draft_dict(d: KnowledgeDraft) -> dict:
    return {
        "id": d.id,
        "kind": d.kind,
        "entry_id": d.entry_id,
        "new": d.entry_id is None,
        "base": d.base,
        "fields": json.loads(d.fields),
        "author": d.author,
        "status": d.status,
        "reviewer": d.reviewer,
        "comment": d.comment,
        "issue_id": d.issue_id,
        "created_at": d.created_at.isoformat(),
        "updated_at": d.updated_at.isoformat(),
    }


def _revision_dict(r: KnowledgeRevision) -> dict:
    return {
        "id": r.id,
        "at": r.at.isoformat(),
        "file": r.file,
        "kind": r.kind,
        "entry_id": r.entry_id,
        "before": r.before,
        "after": r.after,
        "author": r.author,
        "approver": r.approver,
        "draft_id": r.draft_id,
        "rolled_back": r.rolled_back,
    }


class EditorsLoop:
    def __init__(
        self, settings: Settings, duplicates: Callable[[KnowledgeBase], list[str]] | None = None
    ) -> None:
        """`duplicates` is `concierge knowledge check`'s near-duplicate check with its encoder
        (bound by the caller, loaded on first use): run when a draft is submitted and approved."""
        self.settings = settings
        self.db = settings.database_url
        self.folder = Path(settings.knowledge_dir)
        self.duplicates = duplicates

    # -- drafts -------------------------------------------------------------------------------

    def check(
        self, kind: str, entry_id: str | None, fields: dict[str, str], full: bool = False
    ) -> EditResult:
        """The loader's problems (file:line) and the answer's preview; near duplicates when full."""
        return check(
            self.folder,
            kind,
            entry_id,
            fields,
            self.settings.answer_min_score,
            self.duplicates if full else None,
        )

    def _load(self, session, draft_id: int) -> KnowledgeDraft:
        draft = session.get(KnowledgeDraft, draft_id)
        if draft is None:
            raise KeyError(draft_id)
        return draft

    def get(self, draft_id: int) -> dict:
        with session_scope(self.db) as session:
            return _draft_dict(self._load(session, draft_id))

    def open_draft_of(self, kind: str, entry_id: str, author: str) -> dict | None:
        """The author's unpublished draft of this entry, to continue rather than start another."""
        with session_scope(self.db) as session:
            draft = session.scalars(
                select(KnowledgeDraft)
                .where(
                    KnowledgeDraft.kind == kind,
                    KnowledgeDraft.entry_id == entry_id,
                    KnowledgeDraft.author == author,
                    KnowledgeDraft.status.in_(("draft", "submitted", "rejected")),
                )
                .order_by(KnowledgeDraft.id.desc())
            ).first()
            return _draft_dict(draft) if draft else None

    def save(
        self,
        kind: str,
        entry_id: str | None,
        fields: dict[str, str],
        author: str,
        draft_id: int | None = None,
        issue_id: int | None = None,
    ) -> tuple[dict, EditResult]:
        """Create or update a draft (never the live file) and check it; a draft with problems is
        kept, so the editor can come back to it, but cannot be submitted."""
        if kind not in FIELDS or (entry_id is None and kind not in NEW_KINDS):
            raise DraftError("この種類の項目はコンソールで編集できません。")
        names = [*(("id",) if entry_id is None else ()), *FIELDS[kind]]
        fields = {name: str(fields.get(name, "") or "") for name in names}
        result = self.check(kind, entry_id, fields)
        with session_scope(self.db) as session:
            if draft_id is None:
                base = entry_text(self.folder, kind, entry_id) if entry_id else ""
                if entry_id and not base:
                    raise KeyError(entry_id)
                draft = KnowledgeDraft(
                    kind=kind, entry_id=entry_id, base=base, author=author, status="draft", issue_id=issue_id
                )
                session.add(draft)
            else:
                draft = self._load(session, draft_id)
                if draft.author != author:
                    raise DraftError("ほかの人の下書きは編集できません。")
                if draft.status not in ("draft", "rejected"):
                    raise DraftError("審査中・公開済みの下書きは編集できません。")
                draft.status = "draft"
            draft.fields = json.dumps(fields, ensure_ascii=False)
            session.flush()
            saved = _draft_dict(draft)
        audit(self.db, author, "draft-save", f"draft:{saved['id']}", f"{kind}:{entry_id or fields.get('id')}")
        return saved, result

    def _stale(self, draft: KnowledgeDraft) -> bool:
        """Whether the live entry changed since the draft was made (a new entry: whether its id
        has been taken meanwhile)."""
        if draft.entry_id is None:
            new_id = json.loads(draft.fields).get("id", "")
            return bool(new_id) and bool(entry_text(self.folder, draft.kind, new_id))
        return entry_text(self.folder, draft.kind, draft.entry_id) != draft.base

    def stale(self, draft_id: int) -> bool:
        with session_scope(self.db) as session:
            return self._stale(self._load(session, draft_id))

    def submit(self, draft_id: int, by: str) -> EditResult:
        """The author asks for review; refused while the knowledge check finds problems."""
        with session_scope(self.db) as session:
            draft = self._load(session, draft_id)
            if draft.author != by:
                raise DraftError("審査に出せるのは下書きを書いた人だけです。")
            if draft.status not in ("draft", "rejected"):
                raise DraftError("この下書きはすでに審査中か公開済みです。")
            if self._stale(draft):
                raise DraftError(_STALE)
            result = self.check(draft.kind, draft.entry_id, json.loads(draft.fields), full=True)
            if result.problems:
                raise DraftError("直すところがあるため審査に出せません。", result.problems)
            draft.status = "submitted"
        audit(self.db, by, "draft-submit", f"draft:{draft_id}", f"{draft.kind}:{result.entry_id}")
        return result

    def approve(self, draft_id: int, by: str) -> dict:
        """A second person approves: the entry is published, its revision kept, the index rebuilt."""
        with one_writer(self.settings.var_dir), session_scope(self.db) as session:
            draft = self._load(session, draft_id)
            if draft.author == by:
                raise DraftError("自分で書いた下書きは承認できません。ほかの編集者か管理者が承認します。")
            if draft.status != "submitted":
                raise DraftError("審査に出された下書きだけを承認できます。")
            if self._stale(draft):
                raise DraftError(_STALE)
            result = self.check(draft.kind, draft.entry_id, json.loads(draft.fields), full=True)
            if result.problems:
                raise DraftError("直すところがあるため公開できません。", result.problems)
            revision = KnowledgeRevision(
                file=result.file,
                kind=draft.kind,
                entry_id=result.entry_id,
                before=result.before,
                after=result.after,
                author=draft.author,
                approver=by,
                draft_id=draft.id,
            )
            session.add(revision)
            draft.status, draft.reviewer, draft.comment = "published", by, ""
            if draft.entry_id is None:
                draft.entry_id = result.entry_id
            if draft.issue_id is not None and (issue := session.get(RegionalIssue, draft.issue_id)):
                issue.status, issue.knowledge_entry = "answered", f"{draft.kind}:{result.entry_id}"
            session.flush()  # a database refusing the revision refuses before the file is written
            write(self.folder, result)
            published = _revision_dict(revision)
        audit(self.db, by, "knowledge-publish", f"{draft.kind}:{result.entry_id}", _detail(published))
        request_rebuild(self.settings, by)
        return published

    def reject(self, draft_id: int, by: str, comment: str) -> None:
        """Sent back to the author with the reviewer's comment, which stays on the draft."""
        comment = comment.strip()
        if not comment:
            raise DraftError("差し戻す理由を書いてください。")
        with session_scope(self.db) as session:
            draft = self._load(session, draft_id)
            if draft.author == by:
                raise DraftError("自分で書いた下書きは審査できません。")
            if draft.status != "submitted":
                raise DraftError("審査に出された下書きだけを差し戻せます。")
            draft.status, draft.reviewer, draft.comment = "rejected", by, comment[:2000]
        audit(self.db, by, "draft-reject", f"draft:{draft_id}", comment[:200])

    def refresh(self, draft_id: int, by: str) -> None:
        """The author takes the entry as it is now as the draft's base (after a conflicting
        publish): the draft is back to 下書き, to be compared and submitted again."""
        with session_scope(self.db) as session:
            draft = self._load(session, draft_id)
            if draft.author != by:
                raise DraftError("下書きを書いた人だけが最新の内容に合わせられます。")
            if draft.status == "published":
                raise DraftError("公開済みの下書きです。")
            if draft.entry_id is not None:
                draft.base = entry_text(self.folder, draft.kind, draft.entry_id)
            draft.status = "draft"
        audit(self.db, by, "draft-refresh", f"draft:{draft_id}")

    def from_issue(self, issue_id: int, by: str) -> dict:
        """「FAQにする」: a new FAQ draft prefilled with the issue's questions (masked again, as
        for the file drafts of `concierge regional-issues draft`) and marked for review."""
        with session_scope(self.db) as session:
            issue = session.get(RegionalIssue, issue_id)
            if issue is None:
                raise KeyError(issue_id)
            waiting = session.scalars(
                select(KnowledgeDraft).where(
                    KnowledgeDraft.issue_id == issue_id, KnowledgeDraft.status != "published"
                )
            ).first()
            if waiting is not None:  # pressed twice: the draft already made
                return _draft_dict(waiting)
            questions = list(dict.fromkeys(mask(q.text) for q in issue.questions))[:10]
        fields = {
            **empty_fields("faq"),
            "id": f"regional-issue-{issue_id}",
            "questions": "\n".join(questions),
            "review": "on",
        }
        draft, _ = self.save("faq", None, fields, by, issue_id=issue_id)
        return draft

    def drafts(self, statuses: tuple[str, ...], author: str | None = None) -> list[dict]:
        with session_scope(self.db) as session:
            query = select(KnowledgeDraft).where(KnowledgeDraft.status.in_(statuses))
            if author is not None:
                query = query.where(KnowledgeDraft.author == author)
            return [_draft_dict(d) for d in session.scalars(query.order_by(KnowledgeDraft.updated_at))]

    # -- history ------------------------------------------------------------------------------

    def history(self, kind: str | None = None, entry_id: str | None = None, limit: int = 200) -> list[dict]:
        with session_scope(self.db) as session:
            query = select(KnowledgeRevision).order_by(KnowledgeRevision.id.desc()).limit(limit)
            if kind is not None:
                query = query.where(KnowledgeRevision.kind == kind, KnowledgeRevision.entry_id == entry_id)
            return [_revision_dict(r) for r in session.scalars(query)]

    def revision(self, revision_id: int) -> dict:
        with session_scope(self.db) as session:
            revision = session.get(KnowledgeRevision, revision_id)
            if revision is None:
                raise KeyError(revision_id)
            data = _revision_dict(revision)
        data["current"] = entry_text(self.folder, data["kind"], data["entry_id"]) == data["after"]
        return data

    def rollback(self, revision_id: int, by: str) -> dict:
        """Write the entry's text from before this revision back, as a new revision. Only the
        entry's latest change can be undone (an earlier one would drop the changes after it)."""
        with one_writer(self.settings.var_dir), session_scope(self.db) as session:
            undone = session.get(KnowledgeRevision, revision_id)
            if undone is None:
                raise KeyError(revision_id)
            if entry_text(self.folder, undone.kind, undone.entry_id) != undone.after:
                raise DraftError("この変更のあとにも変更があります。新しい変更から順に戻してください。")
            result = check_restore(
                self.folder, undone.kind, undone.entry_id, undone.before, self.settings.answer_min_score
            )
            if result.problems:
                raise DraftError("元に戻すとナレッジに問題が出るため、戻せません。", result.problems)
            revision = KnowledgeRevision(
                file=result.file,
                kind=undone.kind,
                entry_id=undone.entry_id,
                before=result.before,
                after=result.after,
                author=by,
                approver=by,
                rolled_back=undone.id,
            )
            session.add(revision)
            session.flush()
            write(self.folder, result)
            restored = _revision_dict(revision)
        target = f"{restored['kind']}:{restored['entry_id']}"
        audit(self.db, by, "knowledge-rollback", target, f"revision:{revision_id} {_detail(restored)}")
        request_rebuild(self.settings, by)
        return restored

    # -- the review queue ---------------------------------------------------------------------

    def flagged_entries(self) -> list[dict]:
        """Entries marked `review: true` in any knowledge file, with where they are."""
        rows = []
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        for name in schema.FILES:
            path = self.folder / name
            if not path.exists():
                continue
            node = yaml.compose(path.read_text(encoding="utf-8"), Loader=loader)
            for item in node.value if isinstance(node, yaml.SequenceNode) else []:
                if not isinstance(item, yaml.MappingNode):
                    continue
                values = {k.value: v.value for k, v in item.value if isinstance(v, yaml.ScalarNode)}
                if values.get("review") not in ("true", "True", "yes"):
                    continue
                kind = KIND_OF_FILE.get(name)
                key = values.get(KEYS.get(kind or "", "id"), "")
                title = values.get("name") or values.get("title") or values.get("label") or values.get("text")
                rows.append(
                    {
                        "file": name,
                        "line": item.start_mark.line + 1,
                        "kind": kind,
                        "id": key,
                        "title": title or key,
                    }
                )
        return rows

    def poorly_rated(self) -> list[dict]:
        """Entries residents rated at least review_min_ratings times, under review_helpful_below
        helpful; the worst first."""
        helpful = func.sum(case((AnswerEvent.helpful.is_(True), 1), else_=0))
        rated = func.count(AnswerEvent.id)
        with session_scope(self.db) as session:
            rows = session.execute(
                select(AnswerEvent.entry, rated, helpful, func.max(AnswerEvent.topic))
                .where(AnswerEvent.helpful.is_not(None), AnswerEvent.entry.is_not(None))
                .group_by(AnswerEvent.entry)
                .having(rated >= self.settings.review_min_ratings)
            ).all()
        found = []
        for entry, count, yes, topic in rows:
            rate = (yes or 0) / count
            if rate < self.settings.review_helpful_below:
                kind, _, entry_id = entry.rpartition(":")
                found.append(
                    {"entry": entry, "kind": kind or self._kind_of(entry_id), "id": entry_id,
                     "topic": topic or entry_id, "ratings": count, "helpful_rate": rate}
                )  # fmt: skip
        return sorted(found, key=lambda r: r["helpful_rate"])

    def _kind_of(self, entry_id: str) -> str | None:
        return next((kind for kind in ("faq", "service") if entry_text(self.folder, kind, entry_id)), None)

    def queue(self, viewer: str) -> dict:
        """What waits for the editors: others' drafts to review, one's own drafts, flagged and
        poorly rated entries, and drafts made from regional issues."""
        submitted = self.drafts(("submitted",))
        return {
            "to_review": [d for d in submitted if d["author"] != viewer],
            "mine": self.drafts(("draft", "submitted", "rejected"), author=viewer),
            "flagged": self.flagged_entries(),
            "poorly_rated": self.poorly_rated(),
            "from_issues": [d for d in self.drafts(("draft", "rejected", "submitted")) if d["issue_id"]],
        }


_STALE = (
    "この項目は下書きを作ったあとに公開された変更があります。"
    "作者が「最新の内容に合わせる」を押し、内容を確かめてから審査に出し直してください。"
)


def _detail(revision: dict) -> str:
    """What the audit log says of a publish: the revision and its size, not the text."""
    sizes = f"{len(revision['before'])}→{len(revision['after'])} chars"
    return f"revision:{revision['id']} {revision['file']} ({sizes})"
