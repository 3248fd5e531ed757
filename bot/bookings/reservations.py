"""Booking a slot, and what a resident and the staff do with a booking afterwards.

The last seat goes to exactly one resident: `book` takes it with one conditional UPDATE
(`booked < capacity`) as the *first* statement of its transaction — PostgreSQL locks the row and
re-checks the condition for whoever waited, SQLite gives the write lock to one transaction at a
time (a transaction that read first could not upgrade to writing under WAL) — and the table's CHECK
refuses more bookings than seats even to code that forgets. Cancelling gives the seat back in the
same transaction that marks the booking cancelled.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, time

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from bot.bookings.slots import JST, Slot, view
from bot.storage.db import session_scope
from bot.storage.models import Booking, BookingSlot, utcnow

# Booking numbers: read aloud at a counter and typed on a phone, so no 0/O, 1/I/L, 2/Z, 5/S, 8/B.
NUMBER_ALPHABET = "34679ACDEFGHJKMNPQRTUVWXY"
NUMBER_LENGTH = 8  # 25^8 ≈ 1.5e11: a collision is retried, never expected
OFFER_LIMIT = 5


class BookingError(ValueError):
    """Why a booking could not be made or changed. `reason` is one of: past, no_slot, closed, full,
    not_bookable, not_found, not_yours, not_active; the actions pick the resident's wording by it."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or reason)
        self.reason = reason


@dataclass(frozen=True)
class Reservation:
    id: int
    number: str
    status: str
    slot: Slot
    conversation: str | None
    channel: str | None
    topic: str | None
    created_at: datetime
    cancelled_by: str | None
    staff_message: str | None


def _reservation(row: Booking, slot: BookingSlot) -> Reservation:
    return Reservation(
        row.id,
        row.number,
        row.status,
        view(slot),
        row.conversation,
        row.channel,
        row.topic,
        row.created_at,
        row.cancelled_by,
        row.staff_message,
    )


def new_number() -> str:
    return "".join(secrets.choice(NUMBER_ALPHABET) for _ in range(NUMBER_LENGTH))


def _slot_time(day: date, start: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(start), JST)


def book(
    database_url: str,
    *,
    ward: str,
    counter_id: str,
    day: date,
    start: str,
    conversation: str,
    channel: str | None = None,
    topic: str | None = None,
    now: datetime | None = None,
) -> Reservation:
    """Take a seat of the slot at `ward`'s `counter_id` on `day` at `start` for this conversation.
    The same conversation booking the same slot again gets its booking back (a second tap loses
    nothing and takes no second seat). Raises BookingError(past | no_slot | closed | full)."""
    now = now or datetime.now(JST)
    if _slot_time(day, start) <= now:
        raise BookingError("past")
    for _ in range(3):  # a booking number already taken (never expected) is drawn again
        try:
            return _take_seat(database_url, ward, counter_id, day, start, conversation, channel, topic)
        except IntegrityError:
            continue
    raise RuntimeError("could not draw a free booking number")


def _take_seat(
    database_url: str,
    ward: str,
    counter_id: str,
    day: date,
    start: str,
    conversation: str,
    channel: str | None,
    topic: str | None,
) -> Reservation:
    where = (
        BookingSlot.ward == ward,
        BookingSlot.counter_id == counter_id,
        BookingSlot.day == day,
        BookingSlot.start == start,
    )
    with session_scope(database_url) as session:
        # first statement of the transaction: the write lock (SQLite) / the row lock (PostgreSQL)
        taken = session.execute(
            update(BookingSlot)
            .where(*where, BookingSlot.status == "open", BookingSlot.booked < BookingSlot.capacity)
            .values(booked=BookingSlot.booked + 1)
            .execution_options(synchronize_session=False)
        ).rowcount
        slot = session.execute(select(BookingSlot).where(*where)).scalar_one_or_none()
        if not taken:
            if slot is None:
                raise BookingError("no_slot")
            mine = _live_booking(session, slot.id, conversation)
            if mine is not None:
                return _reservation(mine, slot)
            raise BookingError("closed" if slot.status != "open" else "full")
        assert slot is not None
        mine = _live_booking(session, slot.id, conversation)
        if mine is not None:  # booked before: give the seat back, keep the first booking
            slot.booked -= 1
            return _reservation(mine, slot)
        row = Booking(
            number=new_number(),
            slot_id=slot.id,
            conversation=conversation,
            channel=channel,
            topic=(topic or "")[:128] or None,
            status="booked",
        )
        session.add(row)
        session.flush()
        return _reservation(row, slot)


def _live_booking(session, slot_id: int, conversation: str) -> Booking | None:
    query = select(Booking).where(
        Booking.slot_id == slot_id, Booking.conversation == conversation, Booking.status == "booked"
    )
    return session.execute(query).scalars().first()


def free_slots(
    database_url: str, ward: str, counter_id: str, now: datetime | None = None, limit: int = OFFER_LIMIT
) -> list[Slot]:
    """The next open slots with a free seat at this counter, soonest first."""
    now = (now or datetime.now(JST)).astimezone(JST)
    with session_scope(database_url) as session:
        rows = session.execute(
            select(BookingSlot)
            .where(
                BookingSlot.ward == ward,
                BookingSlot.counter_id == counter_id,
                BookingSlot.status == "open",
                BookingSlot.booked < BookingSlot.capacity,
                BookingSlot.day >= now.date(),
            )
            .order_by(BookingSlot.day, BookingSlot.start)
            .limit(limit + 50)
        ).scalars()
        slots = [view(r) for r in rows if _slot_time(r.day, r.start) > now]
    return slots[:limit]


def takes_bookings(database_url: str, ward: str, counter_id: str, now: datetime | None = None) -> bool:
    """Whether staff publish slots at this counter (any slot from today on, full or not)."""
    today = (now or datetime.now(JST)).astimezone(JST).date()
    with session_scope(database_url) as session:
        found = session.execute(
            select(BookingSlot.id)
            .where(BookingSlot.ward == ward, BookingSlot.counter_id == counter_id, BookingSlot.day >= today)
            .limit(1)
        ).first()
    return found is not None


def of_conversation(database_url: str, conversation: str, now: datetime | None = None) -> list[Reservation]:
    """The conversation's live bookings still to come, soonest first."""
    now = (now or datetime.now(JST)).astimezone(JST)
    with session_scope(database_url) as session:
        rows = session.execute(
            select(Booking, BookingSlot)
            .join(BookingSlot, Booking.slot_id == BookingSlot.id)
            .where(
                Booking.conversation == conversation,
                Booking.status == "booked",
                BookingSlot.day >= now.date(),
            )
            .order_by(BookingSlot.day, BookingSlot.start)
        ).all()
        return [_reservation(b, s) for b, s in rows if _slot_time(s.day, s.start) > now]


def find(database_url: str, number: str) -> Reservation | None:
    with session_scope(database_url) as session:
        row = session.execute(
            select(Booking, BookingSlot)
            .join(BookingSlot, Booking.slot_id == BookingSlot.id)
            .where(Booking.number == number.strip().upper())
        ).first()
        return _reservation(*row) if row else None


def cancel(
    database_url: str,
    number: str,
    *,
    conversation: str | None = None,
    by: str = "resident",
    message: str | None = None,
) -> Reservation:
    """Cancel a live booking and give its seat back. A resident (`conversation` given) may cancel
    only their own; staff (`by` their name, `message` their word to the resident) any. Raises
    BookingError(not_found | not_yours | not_active)."""
    with session_scope(database_url) as session:
        row = session.execute(
            select(Booking).where(Booking.number == number.strip().upper())
        ).scalar_one_or_none()
        if row is None:
            raise BookingError("not_found")
        if conversation is not None and row.conversation != conversation:
            raise BookingError("not_yours")
        done = session.execute(
            update(Booking)
            .where(Booking.id == row.id, Booking.status == "booked")
            .values(status="cancelled", cancelled_by=by, staff_message=message, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount
        if not done:
            raise BookingError("not_active")
        session.execute(
            update(BookingSlot)
            .where(BookingSlot.id == row.slot_id)
            .values(booked=BookingSlot.booked - 1)
            .execution_options(synchronize_session=False)
        )
        session.expire_all()
        slot = session.get(BookingSlot, row.slot_id)
        booking = session.get(Booking, row.id)
        return _reservation(booking, slot)


def change(
    database_url: str, number: str, *, conversation: str, day: date, start: str, now: datetime | None = None
) -> Reservation:
    """Move a resident's booking to another time at the same counter: the new seat is taken first,
    then the old one given back, so a failed change leaves the old booking as it was."""
    old = find(database_url, number)
    if old is None:
        raise BookingError("not_found")
    if old.conversation != conversation:
        raise BookingError("not_yours")
    if old.status != "booked":
        raise BookingError("not_active")
    new = book(
        database_url,
        ward=old.slot.ward,
        counter_id=old.slot.counter_id,
        day=day,
        start=start,
        conversation=conversation,
        channel=old.channel,
        topic=old.topic,
        now=now,
    )
    if new.id != old.id:
        cancel(database_url, old.number, conversation=conversation)
    return new


def day_view(database_url: str, day: date, wards: list[str] | None = None) -> list[Reservation]:
    """Every booking of a day (cancelled ones too), by ward, counter and time — the staff's list."""
    with session_scope(database_url) as session:
        query = (
            select(Booking, BookingSlot)
            .join(BookingSlot, Booking.slot_id == BookingSlot.id)
            .where(BookingSlot.day == day)
            .order_by(BookingSlot.ward, BookingSlot.counter_id, BookingSlot.start, Booking.id)
        )
        if wards is not None:
            query = query.where(BookingSlot.ward.in_(wards))
        return [_reservation(b, s) for b, s in session.execute(query).all()]


def mark(database_url: str, booking_id: int, status: str) -> bool:
    """Staff mark a live booking arrived or no-show (the seat stays used); False when it is not live."""
    if status not in ("arrived", "no_show"):
        raise ValueError("arrived or no_show")
    with session_scope(database_url) as session:
        done = session.execute(
            update(Booking)
            .where(Booking.id == booking_id, Booking.status.in_(("booked", "arrived", "no_show")))
            .values(status=status, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return bool(done.rowcount)


def all_bookings(
    database_url: str, *, ward: str | None = None, since: date | None = None
) -> list[Reservation]:
    """For `concierge bookings`: every booking (any status), by day and time."""
    with session_scope(database_url) as session:
        query = (
            select(Booking, BookingSlot)
            .join(BookingSlot, Booking.slot_id == BookingSlot.id)
            .order_by(BookingSlot.day, BookingSlot.start, Booking.id)
        )
        if ward:
            query = query.where(BookingSlot.ward == ward)
        if since:
            query = query.where(BookingSlot.day >= since)
        return [_reservation(b, s) for b, s in session.execute(query).all()]
