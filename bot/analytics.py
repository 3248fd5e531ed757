"""What came of each question, for the staff's figures: one AnswerEvent per reply, and the
resident's 「解決しましたか？」 on it. The write side; bot/analytics_figures.py reads them.

Nothing here is the resident's: no text (the topic is the entry's title), and the conversation
is a keyed hash of the sender id, so the rows of one conversation can be rated and erased
(bot/retention.py) without the table holding an address that reaches the resident. Recording
must never cost the resident their answer: a database failure is logged (without the sender)
and the bot goes on.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from bot.internal_auth import analytics_key
from bot.settings import Settings
from bot.storage.db import session_scope
from bot.storage.models import ANSWER_OUTCOMES, AnswerEvent

log = logging.getLogger(__name__)
TOPIC_CHARS = 128  # AnswerEvent.topic's length


class AnswerLogUnavailable(RuntimeError):
    """The database did not take a rating (logged already): the dialogue carries on without it."""


def conversation_key(sender: str, secret: str) -> str:
    """HMAC-SHA256 of the tracker's sender id (hex, 64 characters): the same conversation gets the
    same key, and without the secret no sender id can be tried against the table."""
    return hmac.new(secret.encode(), sender.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class AnswerLog:
    """Records the outcome of each reply and rates a conversation's latest answer."""

    database_url: str
    secret: str
    window: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> AnswerLog:
        return cls(
            settings.database_url,
            analytics_key(settings),
            timedelta(minutes=settings.feedback_window_minutes),
        )

    def key(self, sender: str) -> str:
        return conversation_key(sender, self.secret)

    def record(
        self,
        sender: str,
        ward: str | None,
        channel: str | None,
        outcome: str,
        entry: str | None = None,
        topic: str | None = None,
    ) -> AnswerEvent | None:
        """One reply to a question; None when the database did not take it (logged)."""
        if outcome not in ANSWER_OUTCOMES:
            raise ValueError(f"outcome must be one of {ANSWER_OUTCOMES}")
        event = AnswerEvent(
            ward=ward,
            channel=channel,
            outcome=outcome,
            entry=entry,
            topic=topic[:TOPIC_CHARS] if topic else None,
            conversation=self.key(sender),
        )
        try:
            with session_scope(self.database_url) as session:
                session.add(event)
        except SQLAlchemyError as err:
            log.error("could not record an answer event (%s)", type(err).__name__)  # never the sender
            return None
        return event

    def rate(self, sender: str, helpful: bool, now: datetime | None = None) -> AnswerEvent | None:
        """Rate the conversation's latest answer from an entry given within the window; a second
        rating of it replaces the first. None when there is no such answer. A database failure
        is logged and raised as AnswerLogUnavailable (the caller still answers the resident)."""
        now = now or datetime.now(UTC)
        latest = (
            select(AnswerEvent)
            .where(
                AnswerEvent.conversation == self.key(sender),
                AnswerEvent.outcome == "answered",
                AnswerEvent.entry.is_not(None),
                AnswerEvent.at >= now - self.window,
            )
            .order_by(AnswerEvent.at.desc(), AnswerEvent.id.desc())
            .limit(1)
        )
        try:
            with session_scope(self.database_url) as session:
                event = session.scalars(latest).first()
                if event is not None:
                    event.helpful, event.rated_at = helpful, now
        except SQLAlchemyError as err:
            log.error("could not rate an answer (%s)", type(err).__name__)  # never the sender
            raise AnswerLogUnavailable(type(err).__name__) from err
        return event
