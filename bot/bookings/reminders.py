"""The LINE reminder the day before a booking (issue 19), run hourly by the task worker.

Every live booking made on LINE whose slot is tomorrow (Japan time) and that has not been reminded
is claimed first — one conditional UPDATE of `reminded_at` — and only then pushed, so two workers
(or two runs) never remind a resident twice: at most once, never twice. A push LINE refuses for a
while (429, 5xx, no answer) gives the claim back and the next hourly run tries again; if the day
before ends without one going through, the day's own morning tries until the slot starts (「本日」).
LINE's 409 on the push's retry key means it took the push before: done. Pushes are made only
between SEND_FROM and SEND_UNTIL o'clock, so no one is woken by a reminder.

The conversation of a LINE booking is the resident's LINE user id, the push's address: it appears
in no log line here, only booking ids and counts.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from linebot.v3.messaging import TextMessage
from sqlalchemy import and_, or_, select, update

from bot.bookings.slots import JST, Slot, view
from bot.business_hours import WEEKDAY_JA
from bot.knowledge.model import KnowledgeBase
from bot.line_messaging import LineApiError, LineClient, LineConfig
from bot.settings import Settings
from bot.storage.db import session_scope
from bot.storage.models import Booking, BookingSlot, utcnow
from bot.wording import DEFAULT_LANGUAGE, say

log = logging.getLogger(__name__)

SEND_FROM, SEND_UNTIL = 9, 21  # JST hours: pushes from 09:00 to 20:59
_warned_line_off = threading.Event()
_RETRY_KEYS = uuid.UUID("5b0f6c52-4a8e-4d0e-9a57-2b8f1c6f1e19")  # namespace of the pushes' retry keys


@dataclass(frozen=True)
class Due:
    """A booking to remind: its id, number, address (LINE user id), slot and topic."""

    id: int
    number: str
    user_id: str
    slot: Slot
    topic: str | None


def due(settings: Settings, now: datetime) -> list[Due]:
    """Live LINE bookings not yet reminded whose slot is tomorrow — or today, not yet begun, for a
    booking made before today (its reminder was due yesterday and did not go through)."""
    local = now.astimezone(JST)
    today, tomorrow = local.date(), local.date() + timedelta(days=1)
    start_of_today = datetime.combine(today, datetime.min.time(), JST).astimezone(UTC)  # SQLite: UTC
    with session_scope(settings.database_url) as session:
        rows = session.execute(
            select(Booking.id, Booking.number, Booking.conversation, Booking.topic, BookingSlot)
            .join(BookingSlot, Booking.slot_id == BookingSlot.id)
            .where(
                Booking.status == "booked",
                Booking.channel == "line",
                Booking.reminded_at.is_(None),
                Booking.conversation.is_not(None),
                or_(
                    BookingSlot.day == tomorrow,
                    and_(BookingSlot.day == today, Booking.created_at < start_of_today),
                ),
            )
            .order_by(BookingSlot.day, BookingSlot.start, Booking.id)
        ).all()
        found = [Due(i, n, c, view(s), t) for i, n, c, t, s in rows]
    return [d for d in found if d.slot.day == tomorrow or d.slot.starts_at > local]


def claim(settings: Settings, booking_id: int, at: datetime) -> bool:
    """Take the booking's reminder (False when another run has it, or it is no longer live)."""
    with session_scope(settings.database_url) as session:
        done = session.execute(
            update(Booking)
            .where(Booking.id == booking_id, Booking.reminded_at.is_(None), Booking.status == "booked")
            .values(reminded_at=at)
            .execution_options(synchronize_session=False)
        )
        return done.rowcount == 1


def release(settings: Settings, booking_id: int, at: datetime) -> None:
    """Give our claim back (only ours: the `reminded_at` we wrote), for the next run to try again."""
    with session_scope(settings.database_url) as session:
        session.execute(
            update(Booking)
            .where(Booking.id == booking_id, Booking.reminded_at == at)
            .values(reminded_at=None)
            .execution_options(synchronize_session=False)
        )


def _day_text(day: date, lang: str) -> str:
    if lang == "en":
        return f"{day:%a} {day.day} {day:%b}"
    return f"{day.month}月{day.day}日（{WEEKDAY_JA[day.weekday()]}）"


def _place(kb: KnowledgeBase, ward: str, counter_id: str, lang: str) -> str:
    counter = kb.counters.get(counter_id)
    offices = kb.offices_in(ward, (counter.at,)) if counter else []
    office = offices[0] if offices else kb.ward_office(ward)
    if lang == "en":
        where = (office.name_en or office.name) if office else ward
        return ", ".join(n for n in ((counter.name_en or counter.name) if counter else "", where) if n)
    return " ".join(n for n in (office.name if office else ward, counter.name if counter else "") if n)


def _bring(kb: KnowledgeBase, counter_id: str, topic: str | None, lang: str) -> str:
    """The 持ち物 of the service the booking is about (its topic names it at this counter); the
    general list when the topic names none."""
    for service in kb.services.values():
        at_counter = service.counter is not None and service.counter.id == counter_id
        if at_counter and topic and service.bring and topic in (service.name, *service.aliases):
            return say("utter_booking_reminder_bring", lang, items="、".join(service.bring))
    return say("utter_booking_reminder_bring_general", lang)


def reminder_text(kb: KnowledgeBase, item: Due, today: date, lang: str = DEFAULT_LANGUAGE) -> str:
    slot = item.slot
    response = "utter_booking_reminder_today" if slot.day == today else "utter_booking_reminder"
    return say(
        response,
        lang,
        day=_day_text(slot.day, lang),
        start=slot.start,
        end=slot.end,
        place=_place(kb, slot.ward, slot.counter_id, lang),
        number=item.number,
        bring=_bring(kb, slot.counter_id, item.topic, lang),
    )


def retry_key(item: Due) -> str:
    """The same key for every try of one booking's reminder: LINE answers a repeat 409."""
    return str(uuid.uuid5(_RETRY_KEYS, f"reminder:{item.number}:{item.slot.day}"))


def send_reminders(settings: Settings, now: datetime, line: LineClient | None = None) -> dict[str, int]:
    """Remind every booking due at `now` (see `due`); returns counts: due, sent, retry (LINE
    refused for a while: tried next run), failed (LINE refused for good: not tried again),
    taken (another run claimed it first)."""
    counts = dict.fromkeys(("due", "sent", "retry", "failed", "taken"), 0)
    local = now.astimezone(JST)
    if not SEND_FROM <= local.hour < SEND_UNTIL:
        return counts
    items = due(settings, now)
    counts["due"] = len(items)
    if not items:
        return counts
    if line is None:
        config = LineConfig.from_settings(settings)
        if config is None:
            if not _warned_line_off.is_set():
                _warned_line_off.set()
                log.warning("LINE is off (no channel credentials): booking reminders are not sent")
            return counts
        line = LineClient(config)
    from bot.knowledge import load_knowledge

    kb = load_knowledge(settings.knowledge_dir)
    for item in items:
        at = utcnow()
        if not claim(settings, item.id, at):
            counts["taken"] += 1
            continue
        try:
            text = reminder_text(kb, item, local.date())
            line.push(item.user_id, [TextMessage(text=text)], retry_key=retry_key(item))
        except LineApiError as err:
            if err.status == 409:  # LINE took this reminder before (we did not hear its answer)
                counts["sent"] += 1
                continue
            transient = err.status is None or err.status == 429 or err.status >= 500
            what = f"HTTP {err.status}" if err.status else "no answer"
            if transient:
                release(settings, item.id, at)
                counts["retry"] += 1
                log.warning("booking %s: reminder refused by LINE (%s); tried again next hour", item.id, what)
            else:
                counts["failed"] += 1
                log.warning("booking %s: reminder refused by LINE (%s); not tried again", item.id, what)
            continue
        except Exception:
            release(settings, item.id, at)  # a bug or the knowledge unreadable: not lost, tried again
            raise
        counts["sent"] += 1
    log.info("booking reminders: %s", counts)
    return counts
