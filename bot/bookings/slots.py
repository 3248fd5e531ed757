"""Bookable consultation slots: what staff publish, one by one or as a weekly pattern.

A slot must lie inside one opening window of its counter on its day (the counter's schedules in
knowledge/hours.yml, through bot/business_hours.py): so a public holiday, the year-end closure, a
Saturday that is not a 2nd or 4th, or a time after closing is refused with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from bot.business_hours import DAYS, JST, _window
from bot.knowledge.model import KnowledgeBase
from bot.payloads import WARDS
from bot.storage.db import session_scope
from bot.storage.models import BookingSlot

MAX_CAPACITY = 50
LENGTHS = range(10, 181)  # minutes
MAX_PATTERN_DAYS = 366


class SlotError(ValueError):
    """A slot that cannot be published as asked (the text says why, in Japanese)."""


@dataclass(frozen=True)
class Slot:
    id: int
    ward: str
    counter_id: str
    day: date
    start: str
    minutes: int
    capacity: int
    booked: int
    status: str

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.booked) if self.status == "open" else 0

    @property
    def starts_at(self) -> datetime:
        return datetime.combine(self.day, time.fromisoformat(self.start), JST)

    @property
    def end(self) -> str:
        return (self.starts_at + timedelta(minutes=self.minutes)).strftime("%H:%M")


def view(row: BookingSlot) -> Slot:
    return Slot(
        row.id,
        row.ward,
        row.counter_id,
        row.day,
        row.start,
        row.minutes,
        row.capacity,
        row.booked,
        row.status,
    )


def hhmm(value: str) -> str:
    """「9:00」 or 「09:00」 → 「09:00」."""
    try:
        return datetime.strptime(value.strip(), "%H:%M").strftime("%H:%M")
    except ValueError as err:
        raise SlotError("時刻は 9:30 のように入力してください。") from err


def bookable_counter(kb: KnowledgeBase, counter_id: str) -> None:
    """A counter of a ward office that the knowledge knows (raises SlotError otherwise)."""
    counter = kb.counters.get(counter_id)
    if counter is None:
        raise SlotError(f"窓口「{counter_id}」はナレッジにありません。")
    if not counter.hour_ids:
        raise SlotError(f"窓口「{counter.name}」には受付時間が登録されていないため、予約枠を作れません。")


def check_within_hours(kb: KnowledgeBase, counter_id: str, day: date, start: str, minutes: int) -> None:
    """The slot lies inside one of the counter's opening windows that day (holidays closed)."""
    counter = kb.counters[counter_id]
    begin = datetime.combine(day, time.fromisoformat(start), JST)
    end = begin + timedelta(minutes=minutes)
    for hour_id in counter.hour_ids:
        schedule = kb.schedules.get(hour_id)
        window = _window(schedule, begin) if schedule else None
        if window and window[0] <= begin and end <= window[1]:
            return
    raise SlotError(
        f"{day:%Y-%m-%d} {start}〜{end:%H:%M} は{counter.name}の受付時間外です"
        "（土日・祝日・年末年始、または開庁時間の外）。"
    )


def _validate(
    kb: KnowledgeBase,
    ward: str,
    counter_id: str,
    day: date,
    start: str,
    minutes: int,
    capacity: int,
    today: date,
) -> str:
    if ward not in WARDS:
        raise SlotError("区の名前が正しくありません。")
    bookable_counter(kb, counter_id)
    start = hhmm(start)
    if day < today:
        raise SlotError("過去の日付には予約枠を作れません。")
    if minutes not in LENGTHS:
        raise SlotError(f"長さは{LENGTHS.start}〜{LENGTHS.stop - 1}分で指定してください。")
    if not 1 <= capacity <= MAX_CAPACITY:
        raise SlotError(f"定員は1〜{MAX_CAPACITY}人で指定してください。")
    check_within_hours(kb, counter_id, day, start, minutes)
    return start


def add_slot(
    database_url: str,
    kb: KnowledgeBase,
    *,
    ward: str,
    counter_id: str,
    day: date,
    start: str,
    minutes: int = 30,
    capacity: int = 1,
    by: str,
    today: date | None = None,
) -> Slot:
    """Publish one slot; SlotError says why one cannot be (also when it exists already)."""
    today = today or datetime.now(JST).date()
    start = _validate(kb, ward, counter_id, day, start, minutes, capacity, today)
    try:
        with session_scope(database_url) as session:
            row = BookingSlot(
                ward=ward,
                counter_id=counter_id,
                day=day,
                start=start,
                minutes=minutes,
                capacity=capacity,
                booked=0,
                status="open",
                created_by=by,
            )
            session.add(row)
            session.flush()
            return view(row)
    except IntegrityError as err:
        raise SlotError(f"{day:%Y-%m-%d} {start} の予約枠はすでにあります。") from err


@dataclass(frozen=True)
class PatternResult:
    added: list[Slot]
    skipped: list[tuple[date, str]]  # (day, why): holidays, exceptions, existing slots


def add_weekly(
    database_url: str,
    kb: KnowledgeBase,
    *,
    ward: str,
    counter_id: str,
    weekdays: Iterable[str],
    start: str,
    minutes: int = 30,
    capacity: int = 1,
    first: date,
    last: date,
    exceptions: Iterable[date] = (),
    by: str,
    today: date | None = None,
) -> PatternResult:
    """A weekly pattern (e.g. every Tuesday and Thursday 10:00, 30 minutes) from `first` to `last`,
    except `exceptions`; days the counter is closed (holidays, the year-end closure) are skipped
    and reported, never offered."""
    wanted = {d.strip().lower()[:3] for d in weekdays}
    if not wanted or wanted - set(DAYS):
        raise SlotError("曜日を mon,tue … sun で指定してください。")
    if last < first:
        raise SlotError("終わりの日は始まりの日以降にしてください。")
    if (last - first).days > MAX_PATTERN_DAYS:
        raise SlotError("繰り返しは1年以内にしてください。")
    today = today or datetime.now(JST).date()
    skip = set(exceptions)
    added: list[Slot] = []
    skipped: list[tuple[date, str]] = []
    day = max(first, today)
    while day <= last:
        if DAYS[day.weekday()] in wanted:
            if day in skip:
                skipped.append((day, "除外日"))
            else:
                try:
                    added.append(
                        add_slot(
                            database_url,
                            kb,
                            ward=ward,
                            counter_id=counter_id,
                            day=day,
                            start=start,
                            minutes=minutes,
                            capacity=capacity,
                            by=by,
                            today=today,
                        )
                    )
                except SlotError as err:
                    skipped.append((day, str(err)))
        day += timedelta(days=1)
    return PatternResult(added, skipped)


def listing(
    database_url: str,
    *,
    ward: str | None = None,
    counter_id: str | None = None,
    since: date | None = None,
    until: date | None = None,
    wards: Iterable[str] | None = None,
) -> list[Slot]:
    """Slots in day and time order (`wards`: only those a ward employee may see)."""
    with session_scope(database_url) as session:
        query = select(BookingSlot).order_by(BookingSlot.day, BookingSlot.start, BookingSlot.counter_id)
        if ward:
            query = query.where(BookingSlot.ward == ward)
        if wards is not None:
            query = query.where(BookingSlot.ward.in_(list(wards)))
        if counter_id:
            query = query.where(BookingSlot.counter_id == counter_id)
        if since:
            query = query.where(BookingSlot.day >= since)
        if until:
            query = query.where(BookingSlot.day <= until)
        return [view(r) for r in session.execute(query).scalars()]


def close(database_url: str, slot_id: int) -> bool:
    """No new bookings for the slot (existing ones stay; staff cancel them one by one with a word
    to the resident). False when there is no such open slot."""
    with session_scope(database_url) as session:
        done = session.execute(
            update(BookingSlot)
            .where(BookingSlot.id == slot_id, BookingSlot.status == "open")
            .values(status="closed")
        )
        return bool(done.rowcount)


def get(database_url: str, slot_id: int) -> Slot | None:
    with session_scope(database_url) as session:
        row = session.get(BookingSlot, slot_id)
        return view(row) if row else None


def now_jst() -> datetime:
    return datetime.now(UTC).astimezone(JST)
