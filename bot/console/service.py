"""What the staff console works with, built once per web process from the settings: hand-off
tickets, regional issues, the knowledge on disk and its editing.

It loads no encoders and no index: a saved edit asks the worker for a rebuild
(bot/retrieval/rebuild_jobs.py) instead of rebuilding inside the web request.
"""

from __future__ import annotations

import threading
from pathlib import Path

from bot.escalation import Delivery, Escalations
from bot.knowledge import KnowledgeBase, load_knowledge
from bot.knowledge.editor import EditResult, edit
from bot.regional_issues import RegionalIssues
from bot.retrieval.rebuild_jobs import pending_rebuild, request_rebuild
from bot.settings import Settings


class ConsoleService:
    def __init__(self, settings: Settings, delivery: Delivery | None = None) -> None:
        self.settings = settings
        self.escalations = Escalations.from_settings(settings, delivery)
        self.issues = RegionalIssues(settings.database_url, None, settings.issue_similarity)
        self._lock = threading.Lock()
        self._kb: KnowledgeBase | None = None
        self._kb_stamp: tuple[float, ...] = ()

    def _stamp(self) -> tuple[float, ...]:
        return tuple(p.stat().st_mtime for p in sorted(Path(self.settings.knowledge_dir).glob("*.yml")))

    def knowledge(self) -> KnowledgeBase:
        """The knowledge as it is on disk now (re-read only when a file changed)."""
        with self._lock:
            stamp = self._stamp()
            if self._kb is None or stamp != self._kb_stamp:
                self._kb, self._kb_stamp = load_knowledge(self.settings.knowledge_dir), stamp
            return self._kb

    def edit_entry(self, kind: str, entry_id: str, fields: dict[str, str], save: bool, by: str) -> EditResult:
        """Check and preview an edit; when saved, the worker rebuilds the index for the bot."""
        result = edit(
            self.settings.knowledge_dir, kind, entry_id, fields, self.settings.answer_min_score, save
        )
        if result.saved:
            request_rebuild(self.settings, by)
        return result

    def rebuild_waiting(self) -> bool:
        return pending_rebuild(self.settings) is not None

    def draft_from_issue(self, issue_id: int) -> Path:
        return self.issues.draft(issue_id, self.settings.knowledge_dir)
