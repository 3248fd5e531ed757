"""Unresolved questions grouped into regional issues (地域課題), per ward, by meaning.

Each question the bot could not answer is stored masked with its embedding and joins the open
issue of its ward whose centroid is closest, if closer than the threshold; otherwise it starts a
new issue. An issue's label is its most frequent nouns, so staff see the topic at a glance.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import numpy as np
import yaml
from sqlalchemy import select

from bot.japanese import default_analyzer
from bot.privacy import mask
from bot.retrieval.encoders import Encoder
from bot.storage.db import session_scope
from bot.storage.models import ISSUE_STATUSES, RegionalIssue, UnresolvedQuestion, utcnow

UNKNOWN_WARD = "不明"
LABEL_WORDS = 3
EXAMPLES_SHOWN = 5


def _vec(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32)


def label_of(texts: list[str]) -> str:
    """The most frequent nouns of the issue's questions, e.g. 「空き家・草・放置」: counted by
    Sudachi's normalized form (ごみ and ゴミ are one word) but shown as residents wrote them (its
    normalized form of ごみ is 塵). Single characters and numbers say nothing on their own."""
    counts: Counter[str] = Counter()
    written: dict[str, Counter[str]] = {}
    for text in texts:
        nouns = {}
        for m in default_analyzer().analyze(text):
            if m.pos == "名詞" and "[" not in m.text and len(m.surface) > 1 and not m.surface.isdigit():
                nouns.setdefault(m.normalized, m.surface)
        counts.update(nouns.keys())
        for norm, surface in nouns.items():
            written.setdefault(norm, Counter())[surface] += 1
    words = [written[w].most_common(1)[0][0] for w, _ in counts.most_common(LABEL_WORDS)]
    return "・".join(words) or texts[0][:20]


def issue_dict(issue: RegionalIssue, examples: bool = True) -> dict:
    data = {
        "id": issue.id,
        "ward": issue.ward,
        "label": issue.label,
        "count": issue.count,
        "status": issue.status,
        "first_seen": issue.first_seen.isoformat(),
        "last_seen": issue.last_seen.isoformat(),
        "knowledge_entry": issue.knowledge_entry,
    }
    if examples:
        data["examples"] = [q.text for q in issue.questions[-EXAMPLES_SHOWN:]]
    return data


class RegionalIssues:
    def __init__(self, db_url: str, encoder: Encoder | None, threshold: float) -> None:
        """`encoder` groups new questions (the action server's); the console only reads and
        manages issues, and passes None."""
        self.db_url = db_url
        self.encoder = encoder
        self.threshold = threshold

    def record(
        self, text: str, ward: str | None, score: float, channel: str | None = None, topic: str | None = None
    ) -> dict:
        """Store one unanswered question (masked) and put it in its regional issue. `topic` is the
        part of the text that says what is asked (grouping ignores 「多摩区に住んでいます」)."""
        if self.encoder is None:
            raise RuntimeError("recording a question needs the encoder that groups questions")
        masked = mask(text)
        topic_masked = masked if not topic or topic == text else mask(topic)  # one GiNZA pass, not two
        vector = self.encoder.encode([topic_masked], "query")[0].astype(np.float32)
        ward = ward or UNKNOWN_WARD
        with session_scope(self.db_url) as session:
            open_issues = session.scalars(
                select(RegionalIssue).where(RegionalIssue.ward == ward, RegionalIssue.status != "closed")
            ).all()
            best, best_sim = None, self.threshold
            for issue in open_issues:
                centroid = _vec(issue.centroid)
                sim = float(vector @ centroid / max(np.linalg.norm(centroid), 1e-9))
                if sim >= best_sim:
                    best, best_sim = issue, sim
            question = UnresolvedQuestion(
                ward=ward, text=masked, score=score, embedding=vector.tobytes(), channel=channel
            )
            if best is None:
                best = RegionalIssue(ward=ward, label=label_of([masked]), count=0, centroid=vector.tobytes())
                session.add(best)
            else:  # running mean of the members' vectors
                centroid = (_vec(best.centroid) * best.count + vector) / (best.count + 1)
                best.centroid = centroid.astype(np.float32).tobytes()
            best.count += 1
            best.last_seen = utcnow()
            question.issue = best
            session.add(question)
            session.flush()
            best.label = label_of([q.text for q in best.questions])
            return issue_dict(best)

    def list(self, ward: str | None = None, status: str | None = None) -> list[dict]:
        """Most asked first."""
        with session_scope(self.db_url) as session:
            query = select(RegionalIssue).order_by(RegionalIssue.count.desc(), RegionalIssue.last_seen.desc())
            if ward:
                query = query.where(RegionalIssue.ward == ward)
            if status:
                query = query.where(RegionalIssue.status == status)
            return [issue_dict(i) for i in session.scalars(query)]

    def weekly_counts(self, wards: list[str], weeks: int = 8) -> dict[str, list[int]]:
        """Unanswered questions per ward per week, oldest week first (for the trend chart)."""
        now = utcnow()
        start = now - timedelta(weeks=weeks)
        counts = {w: [0] * weeks for w in wards}
        with session_scope(self.db_url) as session:
            rows = session.execute(
                select(UnresolvedQuestion.ward, UnresolvedQuestion.created_at).where(
                    UnresolvedQuestion.created_at >= start, UnresolvedQuestion.ward.in_(wards)
                )
            )
            for ward, created in rows:
                created = created if created.tzinfo else created.replace(tzinfo=now.tzinfo)
                index = min(weeks - 1, int((created - start).total_seconds() // (7 * 86400)))
                counts[ward][index] += 1
        return counts

    def get(self, issue_id: int) -> dict:
        with session_scope(self.db_url) as session:
            issue = session.get(RegionalIssue, issue_id)
            if issue is None:
                raise KeyError(issue_id)
            data = issue_dict(issue, examples=False)
            data["examples"] = [
                {"text": q.text, "at": q.created_at.isoformat(), "score": round(q.score, 2)}
                for q in issue.questions
            ]
            return data

    def set_status(self, issue_id: int, status: str, knowledge_entry: str | None = None) -> None:
        if status not in ISSUE_STATUSES:
            raise ValueError(f"status must be one of {ISSUE_STATUSES}")
        with session_scope(self.db_url) as session:
            issue = session.get(RegionalIssue, issue_id)
            if issue is None:
                raise KeyError(issue_id)
            issue.status = status
            if knowledge_entry:
                issue.knowledge_entry = knowledge_entry

    def draft(self, issue_id: int, knowledge_dir: Path) -> Path:
        """Write a draft FAQ entry for an editor under knowledge/drafts/ (not loaded until moved)."""
        with session_scope(self.db_url) as session:
            issue = session.get(RegionalIssue, issue_id)
            if issue is None:
                raise KeyError(issue_id)
            # masked again: the deploy guide keeps knowledge/ in git, and questions stored before
            # the masking learnt a form (a date of birth, a labelled number) still hold it
            questions = list(dict.fromkeys(mask(q.text) for q in issue.questions))[:10]
            entry = {
                "id": f"regional-issue-{issue.id}",
                "questions": questions,
                "answer": "（編集者が記入してください）",
                "source": "（出典を sources.yml から選んでください）",
                "review": True,
                "from_regional_issue": {
                    "id": issue.id,
                    "ward": issue.ward,
                    "label": mask(issue.label),
                    "count": issue.count,
                },
            }
        path = knowledge_dir / "drafts" / f"regional-issue-{issue_id}.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        header = (
            "# Draft FAQ entry from a regional issue. Fill in answer and source, then move it into faq.yml.\n"
        )
        path.write_text(
            header + yaml.safe_dump([entry], allow_unicode=True, sort_keys=False), encoding="utf-8"
        )
        return path
