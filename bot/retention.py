"""Erasing a resident's conversation when they ask (「会話を削除」) or leave (a LINE unfollow).

Minimal version: the tracker's events in Rasa's SQL tracker store. Rasa reads the tracker from the
store for every message, so the next message starts a new conversation.
"""

from __future__ import annotations

import sqlalchemy as sa

from bot.settings import Settings

_EVENTS = sa.table("events", sa.column("sender_id"))  # Rasa's SQLTrackerStore table


def tracker_store_url(settings: Settings) -> str:
    """SQLAlchemy URL of Rasa's tracker store (bot/supervisor/processes.tracker_store_config)."""
    url = settings.tracker_db_url
    if not url:
        return f"sqlite:///{settings.var_dir / 'rasa_tracker.db'}"
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def erase_conversation(settings: Settings, sender_id: str) -> dict[str, int]:
    """Delete everything kept of this sender's conversation; rows deleted per kind."""
    engine = sa.create_engine(tracker_store_url(settings))
    try:
        with engine.begin() as connection:
            if not sa.inspect(connection).has_table("events"):
                return {"tracker_events": 0}
            result = connection.execute(sa.delete(_EVENTS).where(_EVENTS.c.sender_id == sender_id))
            return {"tracker_events": result.rowcount}
    finally:
        engine.dispose()
