"""Deleting what the concierge no longer needs: the retention purge and a resident's erasure.

Kinds and where they live (periods in `Settings.retention_*_days`, reasons there and in
docs/privacy.md):
- conversations: Rasa's SQL tracker store, table `events` (one row per event: sender_id, a Unix
  `timestamp`, the event as JSON in `data`), SQLite under var/ or PostgreSQL. A conversation goes
  whole, once its *last* event is older than the period — cutting the old half off a live
  conversation would leave Rasa a tracker that starts mid-dialogue. A conversation with an open
  hand-off ticket is kept: the pause and the staff replies live in it.
- closed tickets (by `closed_at`), their transcripts with them (ticket_messages cascade). Open
  tickets are never purged.
- unresolved questions (by `created_at`); the regional issues keep their counts and labels.
- the audit log (by `at`); the purge itself is recorded there afterwards, counts only.
- answer events (bot/analytics.py): their conversation key is cleared once the conversations'
  period has passed (by `at`); the rows stay, for the figures, linked to no one. A resident's
  erasure deletes their conversation's rows at once.
- log files under var/logs/ (by modification time).
- the notices' delivery log (`notice_deliveries`: notice, LINE user id, batch) of notices whose
  sending ended (sent or cancelled) longer ago than its period; the notice and its batches keep
  the counts. A resident's erasure deletes their rows at once.
- bookings (bot/bookings, issue 19): their `conversation` (the sender id; on LINE the user id the
  reminder is pushed to) is cleared once the slot's day is longer ago than its period; the rows
  stay, linked to no one, for the counts. A resident's erasure cancels their live bookings still
  to come (the seats go back) and clears the link of all their bookings at once.
- notice subscriptions (bot/notices/subscriptions.py): not purged by age — they last until the
  resident stops them; a resident's erasure (and LINE's unfollow, which erases) deletes them.

Rasa keeps no conversation in memory between messages with the SQL tracker store, so rows
deleted here are gone for the next message too. A message being processed at the very moment of
an erasure may write its tracker back (Rasa saves the events it has not stored yet).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, column, create_engine, delete, func, inspect, select, table, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot.analytics import conversation_key
from bot.bookings import reservations
from bot.business_hours import JST
from bot.internal_auth import analytics_key
from bot.japanese import nfkc
from bot.notices import subscriptions
from bot.settings import Settings
from bot.storage.db import session_scope
from bot.storage.models import (
    AnswerEvent,
    AuditEntry,
    Booking,
    BookingSlot,
    Notice,
    NoticeDelivery,
    Ticket,
    TicketMessage,
    UnresolvedQuestion,
)

log = logging.getLogger(__name__)

KINDS = (
    "conversations",
    "closed_tickets",
    "unresolved_questions",
    "audit_log",
    "log_files",
    "answer_conversation_keys",  # cleared on answer events (the rows stay), by the conversations' period
    "notice_deliveries",  # the delivery log's rows (LINE user ids) of notices sent before the period
    "booking_conversations",  # cleared on bookings (the rows stay) whose slot's day is past the period
)

# Rasa 3.6's SQLTrackerStore.SQLEvent, only the columns the purge reads (rasa/core/tracker_store.py)
EVENTS = table("events", column("sender_id"), column("timestamp"))


# What a resident types to erase their conversation (the widget's 「会話を削除」 button sends the
# first); a channel that sees one calls erase_conversation instead of passing it to Rasa.
ERASE_WORDS = frozenset(
    nfkc(w).lower()
    for w in ("会話を削除", "会話を削除して", "会話を削除する", "delete conversation",
              "delete my conversation")
)


def is_erase_request(text: str) -> bool:
    """「会話を削除」 and its few spellings, the whole message only (not a question that mentions it)."""
    return nfkc(text).strip().rstrip("。.!！").strip().lower() in ERASE_WORDS


class RetentionError(RuntimeError):
    """A store could not be purged or erased (unreachable, locked): nothing of that store changed."""


def _periods(settings: Settings, older_than_days: int | None) -> dict[str, int]:
    if older_than_days is not None:
        if older_than_days < 0:
            raise ValueError("older_than_days must be 0 or more")
        return dict.fromkeys(KINDS, older_than_days)
    return {
        "conversations": settings.retention_conversations_days,
        "closed_tickets": settings.retention_closed_tickets_days,
        "unresolved_questions": settings.retention_unresolved_days,
        "audit_log": settings.retention_audit_days,
        "log_files": settings.retention_logs_days,
        "answer_conversation_keys": settings.retention_conversations_days,
        "notice_deliveries": settings.retention_notice_deliveries_days,
        "booking_conversations": settings.retention_bookings_days,
    }


@contextlib.contextmanager
def _tracker_connection(settings: Settings) -> Iterator[Connection | None]:
    """A transaction on Rasa's tracker database, or None when it has no events table yet (no
    conversation ever stored: nothing to delete, and no empty SQLite file left behind)."""
    url = settings.tracker_database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        yield None
        return
    connect_args = {"timeout": settings.sqlite_busy_timeout_ms / 1000} if url.startswith("sqlite") else {}
    engine: Engine = create_engine(url, connect_args=connect_args)
    try:
        with engine.begin() as conn:
            yield conn if inspect(conn).has_table("events") else None
    except SQLAlchemyError as err:
        raise RetentionError(f"tracker store: {type(err).__name__}") from err
    finally:
        engine.dispose()


def _open_ticket_senders(session: Session) -> set[str]:
    return set(session.scalars(select(Ticket.sender).where(Ticket.status != "closed")))


def _purge_conversations(settings: Settings, cutoff: float, keep: set[str], dry_run: bool) -> int:
    """Conversations whose last event is older than `cutoff` (Unix time), except `keep`."""
    with _tracker_connection(settings) as conn:
        if conn is None:
            return 0
        last_events = select(EVENTS.c.sender_id).group_by(EVENTS.c.sender_id)
        stale = set(conn.scalars(last_events.having(func.max(EVENTS.c.timestamp) < cutoff))) - keep
        if not dry_run:
            senders = sorted(stale)
            for start in range(0, len(senders), 500):  # bounded IN lists
                conn.execute(delete(EVENTS).where(EVENTS.c.sender_id.in_(senders[start : start + 500])))
        return len(stale)


def _purge_log_files(folder: Path, cutoff: float, dry_run: bool) -> int:
    if not folder.is_dir():
        return 0
    old = [p for p in folder.rglob("*") if p.is_file() and p.stat().st_mtime < cutoff]
    if not dry_run:
        for path in old:
            path.unlink(missing_ok=True)
    return len(old)


def purge(settings: Settings, older_than_days: int | None = None, dry_run: bool = False) -> dict[str, int]:
    """Delete what is older than its kind's retention period (or `older_than_days` for every
    kind); returns how many of each kind were (with `dry_run`: would be) deleted.

    The concierge database goes first, in one transaction; the tracker store after it, so an
    unreachable tracker store leaves the database purged and raises RetentionError."""
    periods = _periods(settings, older_than_days)
    now = datetime.now(UTC)
    cutoff = {kind: now - timedelta(days=days) for kind, days in periods.items()}
    counts: dict[str, int] = {}
    try:
        with session_scope(settings.database_url) as session:
            closed_at = func.coalesce(Ticket.closed_at, Ticket.updated_at)
            tickets = select(Ticket.id).where(Ticket.status == "closed", closed_at < cutoff["closed_tickets"])
            ticket_ids = list(session.scalars(tickets))
            questions = UnresolvedQuestion.created_at < cutoff["unresolved_questions"]
            audit = AuditEntry.at < cutoff["audit_log"]
            counts["closed_tickets"] = len(ticket_ids)
            counts["unresolved_questions"] = session.scalar(select(func.count()).where(questions)) or 0
            counts["audit_log"] = session.scalar(select(func.count()).where(audit)) or 0
            answer_cutoff = cutoff["answer_conversation_keys"]
            linked = (AnswerEvent.at < answer_cutoff) & AnswerEvent.conversation.is_not(None)
            counts["answer_conversation_keys"] = session.scalar(select(func.count()).where(linked)) or 0
            finished = select(Notice.id).where(
                Notice.status.in_(("sent", "cancelled")),
                func.coalesce(Notice.sent_at, Notice.created_at) < cutoff["notice_deliveries"],
            )
            deliveries = NoticeDelivery.notice_id.in_(finished)
            counts["notice_deliveries"] = session.scalar(select(func.count()).where(deliveries)) or 0
            last_day = (now.astimezone(JST) - timedelta(days=periods["booking_conversations"])).date()
            past = select(BookingSlot.id).where(BookingSlot.day < last_day)
            booked = Booking.slot_id.in_(past) & Booking.conversation.is_not(None)
            counts["booking_conversations"] = session.scalar(select(func.count()).where(booked)) or 0
            if not dry_run:
                for start in range(0, len(ticket_ids), 500):
                    chunk = ticket_ids[start : start + 500]
                    # explicitly, not by the foreign key's ON DELETE: SQLite enforces it only per connection
                    session.execute(delete(TicketMessage).where(TicketMessage.ticket_id.in_(chunk)))
                    session.execute(delete(Ticket).where(Ticket.id.in_(chunk)))
                session.execute(delete(UnresolvedQuestion).where(questions))
                session.execute(delete(AuditEntry).where(audit))
                session.execute(update(AnswerEvent).where(linked).values(conversation=None))
                session.execute(delete(NoticeDelivery).where(deliveries))
                session.execute(update(Booking).where(booked).values(conversation=None))
            keep = _open_ticket_senders(session)
    except SQLAlchemyError as err:
        raise RetentionError(f"concierge database: {type(err).__name__}") from err
    counts["conversations"] = _purge_conversations(
        settings, cutoff["conversations"].timestamp(), keep, dry_run
    )
    counts["log_files"] = _purge_log_files(settings.log_dir, cutoff["log_files"].timestamp(), dry_run)
    result = {kind: counts[kind] for kind in KINDS}
    if not dry_run:
        detail = json.dumps({"older_than_days": older_than_days, **result})
        # the deletion stands even if its record fails
        with contextlib.suppress(SQLAlchemyError), session_scope(settings.database_url) as session:
            session.add(AuditEntry(user="system", action="purge", detail=detail))
    log.warning("retention purge%s: %s", " (dry run)" if dry_run else "", result)
    return result


def erase_conversation(settings: Settings, sender_id: str) -> dict[str, int]:
    """A resident's own erasure: every tracker event of `sender_id` (the tracker's sender id,
    e.g. `web-…` for the widget), their closed tickets with transcripts, and the answer events
    of that conversation (found by its key). An open hand-off ticket stays with the staff
    handling it (a report of abuse must still be acted on); it is counted in `open_tickets_kept`
    and purged like any closed ticket later. A LINE resident's notice subscriptions go too (their
    sender id is their LINE user id, the subscriptions' address; issue 18), and their rows of the
    notices' delivery log. Their live bookings still to come are cancelled (the seats go back) and
    every booking of theirs is unlinked from them (issue 19): the rows stay, for the counts.

    Returns counts: tracker_events, closed_tickets, open_tickets_kept, answer_events, subscriptions,
    notice_deliveries, bookings (unlinked, the cancelled ones among them)."""
    if not sender_id:
        raise ValueError("sender_id is required")
    key = conversation_key(sender_id, analytics_key(settings))
    try:
        # first, in a transaction of its own: erasing again finishes what a failure left
        notice_subscriptions = subscriptions.forget(settings.database_url, sender_id)
        cancelled = _cancel_bookings(settings, sender_id)
        with session_scope(settings.database_url) as session:
            answers = session.execute(delete(AnswerEvent).where(AnswerEvent.conversation == key)).rowcount
            mine_delivered = NoticeDelivery.line_user_id == sender_id
            deliveries = session.execute(delete(NoticeDelivery).where(mine_delivered)).rowcount
            mine_booked = Booking.conversation == sender_id
            bookings = session.execute(update(Booking).where(mine_booked).values(conversation=None)).rowcount
            mine = select(Ticket.id, Ticket.status).where(Ticket.sender == sender_id)
            rows = session.execute(mine).all()
            closed = [tid for tid, status in rows if status == "closed"]
            if closed:
                session.execute(delete(TicketMessage).where(TicketMessage.ticket_id.in_(closed)))
                session.execute(delete(Ticket).where(Ticket.id.in_(closed)))
    except SQLAlchemyError as err:
        raise RetentionError(f"concierge database: {type(err).__name__}") from err
    with _tracker_connection(settings) as conn:
        events = 0
        if conn is not None:
            events = conn.execute(delete(EVENTS).where(EVENTS.c.sender_id == sender_id)).rowcount or 0
    # a count only: the sender id is the key to the conversation and stays out of the logs
    log.info(
        "erased a conversation: %d events, %d closed tickets, %d bookings cancelled",
        events, len(closed), cancelled,
    )  # fmt: skip
    kept = len(rows) - len(closed)
    return {
        "tracker_events": events,
        "closed_tickets": len(closed),
        "open_tickets_kept": kept,
        "answer_events": answers or 0,
        "subscriptions": notice_subscriptions,
        "notice_deliveries": deliveries or 0,
        "bookings": bookings or 0,
    }


def _cancel_bookings(settings: Settings, sender_id: str) -> int:
    """Cancel the resident's live bookings still to come, each giving its seat back (as their own
    cancellation would); a booking that stopped being live meanwhile is left as it is."""
    cancelled = 0
    for booking in reservations.of_conversation(settings.database_url, sender_id):
        with contextlib.suppress(reservations.BookingError):
            reservations.cancel(settings.database_url, booking.number, conversation=sender_id)
            cancelled += 1
    return cancelled
