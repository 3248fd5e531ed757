"""Publishing a slot for the stack and browser booking tests: the next working day it can be added."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from bot.bookings import slots
from bot.bookings.slots import JST, Slot
from bot.knowledge import load_knowledge
from bot.payloads import OFFERS
from bot.settings import Settings


def publish(settings: Settings, start: str, capacity: int = 1, after: date | None = None) -> Slot:
    """A slot at 中原区's 区民課 on the first working day (after `after`, else after today) where it
    can be added: weekends, holidays, the year-end closure and taken times are refused by add_slot."""
    kb = load_knowledge(settings.knowledge_dir)
    today = datetime.now(JST).date()
    day = max(today, after or today) + timedelta(days=1)
    for _ in range(60):
        try:
            return slots.add_slot(settings.database_url, kb, ward="中原区", counter_id="kumin", day=day,
                                  start=start, capacity=capacity, by="test", today=today)  # fmt: skip
        except slots.SlotError:
            day += timedelta(days=1)
    raise AssertionError("no open day for a slot in 60 days")


def full_payload(slot: Slot) -> str:
    return OFFERS["book"].payload(
        ward=slot.ward, counter=slot.counter_id, date=slot.day.isoformat(), time=slot.start
    )
