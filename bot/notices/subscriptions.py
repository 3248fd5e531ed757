"""A LINE resident's notice subscriptions: one ward, any of the topics.

Only LINE residents subscribe (a multicast needs their LINE user id); the id is stored here and
nowhere else of this feature, and goes when the resident stops the notices, blocks the bot or
erases the conversation (`forget`, called by bot/retention.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, select

from bot.notices.topics import TOPIC_IDS
from bot.storage.db import session_scope
from bot.storage.models import NoticeSubscription


@dataclass(frozen=True)
class Subscribed:
    ward: str | None
    topics: tuple[str, ...]  # topic ids, in TOPIC_IDS order


def current(database_url: str, line_user_id: str) -> Subscribed:
    with session_scope(database_url) as session:
        rows = session.execute(
            select(NoticeSubscription.ward, NoticeSubscription.topic).where(
                NoticeSubscription.line_user_id == line_user_id
            )
        ).all()
    wards = {r.ward for r in rows}
    topics = {r.topic for r in rows}
    return Subscribed(
        ward=next(iter(sorted(wards))) if wards else None,
        topics=tuple(t for t in TOPIC_IDS if t in topics),
    )


def subscribe(
    database_url: str, line_user_id: str, ward: str, topics: Iterable[str] | None = None
) -> Subscribed:
    """Subscribe to `ward`'s notices on `topics` (all topics when None). A resident has one ward:
    subscribing to another moves the topics there. Topics already held are kept."""
    before = current(database_url, line_user_id)
    wanted = set(TOPIC_IDS if topics is None else topics) & set(TOPIC_IDS)
    if before.ward == ward:
        wanted |= set(before.topics)
    elif before.ward is not None and topics is not None:
        wanted |= set(before.topics)  # a single topic for a new ward keeps the others
    _replace(database_url, line_user_id, ward, wanted)
    return current(database_url, line_user_id)


def unsubscribe(database_url: str, line_user_id: str, topics: Iterable[str] | None = None) -> Subscribed:
    """Stop these topics (all, and the ward with them, when None)."""
    before = current(database_url, line_user_id)
    if topics is None or before.ward is None:
        forget(database_url, line_user_id)
    else:
        _replace(database_url, line_user_id, before.ward, set(before.topics) - set(topics))
    return current(database_url, line_user_id)


def forget(database_url: str, line_user_id: str) -> int:
    """Delete every subscription of this resident; the number of rows deleted."""
    with session_scope(database_url) as session:
        result = session.execute(
            delete(NoticeSubscription).where(NoticeSubscription.line_user_id == line_user_id)
        )
        return result.rowcount or 0


def _replace(database_url: str, line_user_id: str, ward: str, topics: set[str]) -> None:
    with session_scope(database_url) as session:
        session.execute(delete(NoticeSubscription).where(NoticeSubscription.line_user_id == line_user_id))
        session.add_all(
            NoticeSubscription(line_user_id=line_user_id, ward=ward, topic=t)
            for t in TOPIC_IDS
            if t in topics
        )


def recipients(database_url: str, wards: Iterable[str], topic: str) -> list[str]:
    """The LINE user ids subscribed to `topic` in any of `wards`, each once, in a stable order."""
    with session_scope(database_url) as session:
        rows = session.execute(
            select(NoticeSubscription.line_user_id)
            .where(NoticeSubscription.ward.in_(list(wards)), NoticeSubscription.topic == topic)
            .distinct()
            .order_by(NoticeSubscription.line_user_id)
        ).scalars()
        return list(rows)


def anyone(database_url: str, wards: Iterable[str], topic: str) -> bool:
    """Whether anyone is subscribed to `topic` in any of `wards` (no ids read)."""
    with session_scope(database_url) as session:
        found = session.execute(
            select(NoticeSubscription.id)
            .where(NoticeSubscription.ward.in_(list(wards)), NoticeSubscription.topic == topic)
            .limit(1)
        ).first()
    return found is not None


def counts(database_url: str) -> dict[str, int]:
    """Subscribers per ward (for the console; no ids)."""
    with session_scope(database_url) as session:
        rows = session.execute(
            select(NoticeSubscription.ward, NoticeSubscription.line_user_id).distinct()
        ).all()
    out: dict[str, int] = {}
    for ward, _ in rows:
        out[ward] = out.get(ward, 0) + 1
    return out
