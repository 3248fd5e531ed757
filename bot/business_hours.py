"""When will a person answer? The next opening of a counter, from its schedules in knowledge/.

A schedule may close on Japan's public holidays (the `holidays` package computes them, with
振替休日 and 国民の休日, for any year) and over a span such as the year-end break 12-29 … 01-03
(`closed` in hours.yml), so a resident is never promised 「本日17:00まで」 on a holiday.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

from bot.knowledge.model import KnowledgeBase, Schedule

JST = ZoneInfo("Asia/Tokyo")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_JA = "月火水木金土日"


@functools.lru_cache(maxsize=8)
def _public_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("JP", years=year)


def is_closed_day(schedule: Schedule, day: date) -> bool:
    """Whether a public holiday or the schedule's closed span (across the new year) shuts it."""
    if schedule.closed_on_holidays and day in _public_holidays(day.year):
        return True
    if schedule.closed_span:
        first, last = schedule.closed_span
        today = f"{day:%m-%d}"
        return first <= today <= last if first <= last else today >= first or today <= last
    return False


def _window(schedule: Schedule, day: datetime) -> tuple[datetime, datetime] | None:
    if not schedule.open or DAYS[day.weekday()] not in schedule.days:
        return None
    if is_closed_day(schedule, day.date()):
        return None
    if schedule.weeks and (day.day - 1) // 7 + 1 not in schedule.weeks:
        return None
    start = datetime.combine(day.date(), time.fromisoformat(schedule.open), JST)
    end = datetime.combine(day.date(), time.fromisoformat(schedule.close), JST)
    return start, end


def openings_from(schedule: Schedule, now: datetime, days: int) -> list[tuple[datetime, datetime]]:
    """Every window of `schedule` still to come from `now` through the next `days` days: the
    regular Saturday openings a resident asks about (「次の土曜開庁は？」), holidays skipped."""
    now = now.astimezone(JST)
    found = (_window(schedule, now + timedelta(days=offset)) for offset in range(days + 1))
    return [w for w in found if w and w[1] > now]


def next_opening(schedules: list[Schedule], now: datetime) -> tuple[datetime, datetime, bool]:
    """(opening, closing, open_now) of the first window at or after `now` (looks 14 days ahead:
    the longest closure, the year-end break with a weekend and 成人の日, is 9 days)."""
    now = now.astimezone(JST)
    for offset in range(15):
        day = now + timedelta(days=offset)
        windows = sorted(w for s in schedules if (w := _window(s, day)))
        for start, end in windows:
            if end > now:
                return start, end, start <= now
    raise ValueError("no opening hours within two weeks")


@dataclass(frozen=True)
class Promise:
    """What a resident handed to staff is told: the window staff will answer in. `deadline` is that
    window's close — today's closing when open now, else the next working day's."""

    start: datetime
    deadline: datetime
    open_now: bool


def staff_promise(schedules: list[Schedule], now: datetime) -> Promise | None:
    """The promise for a hand-off at `now`; None when the schedules carry no opening rules. Both the
    resident's wording and the staff's "answered within the promise" figure come from here."""
    try:
        start, end, open_now = next_opening(schedules, now)
    except ValueError:
        return None
    return Promise(start, end, open_now)


def schedules_for(kb: KnowledgeBase, ward: str | None, department: str | None) -> list[Schedule]:
    """The schedules a hand-off promise is made from: the counter's (by id or name), else the ward
    office's — as the hand-off action picks them."""
    counter = kb.counters.get(department or "") or next(
        (c for c in kb.counters.values() if c.name == department), None
    )
    office = kb.ward_office(ward) if ward else None
    hour_ids = (counter.hour_ids if counter else ()) or (office.hour_ids if office else ())
    return [kb.schedules[h] for h in hour_ids if h in kb.schedules]


def when_staff_answer(schedules: list[Schedule], now: datetime) -> str:
    """Plain Japanese: 「本日17:00までに」 or 「11月30日（月）8:30以降に」; 「開庁時間内に」 when the
    schedules carry no opening rules an editor filled in."""
    promise = staff_promise(schedules, now)
    if promise is None:
        return "開庁時間内に"
    start = promise.start
    if promise.open_now:
        return f"本日{promise.deadline:%H:%M}までに"
    day = f"{start.month}月{start.day}日（{WEEKDAY_JA[start.weekday()]}）"
    if start.date() == now.astimezone(JST).date():
        day = "本日"
    return f"{day}{start.hour}:{start:%M}以降に"
