"""A booking as an iCalendar file (RFC 5545, the `icalendar` package): the widget's 「カレンダーに追加」.

One VEVENT: its UID is made from the booking number (a calendar that imports the file twice keeps
one event), its times are in Asia/Tokyo, its place the ward office's name and address, and its
description the booking number and what to bring. No resident data is in it: there is none.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event

from bot.bookings.dialogue import bring_of
from bot.bookings.reservations import Reservation
from bot.knowledge.model import KnowledgeBase

TOKYO = ZoneInfo("Asia/Tokyo")
UID_DOMAIN = "concierge.kawasaki.example"
PRODID = "-//Kawasaki ward-office concierge//bookings//JA"


def booking_ics(reservation: Reservation, kb: KnowledgeBase) -> bytes:
    slot = reservation.slot
    counter = kb.counters.get(slot.counter_id)
    counter_name = counter.name if counter else slot.counter_id
    office = kb.ward_office(slot.ward)
    start = slot.starts_at.astimezone(TOKYO)
    bring = bring_of(kb, reservation.topic)
    lines = [f"予約番号: {reservation.number}", f"窓口: {counter_name}"]
    if bring:
        lines.append("お持ちいただくもの: " + "、".join(bring))
    lines.append("当日は窓口で予約番号をお伝えください。")

    event = Event()
    event.add("uid", f"booking-{reservation.number}@{UID_DOMAIN}")
    event.add("dtstamp", datetime.now(UTC))
    event.add("dtstart", start)
    event.add("dtend", start + timedelta(minutes=slot.minutes))
    event.add("summary", f"{counter_name} 相談予約（{reservation.number}）")
    event.add("location", " ".join(p for p in (office.name, office.address) if p) if office else slot.ward)
    event.add("description", "\n".join(lines))

    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    calendar.add_component(event)
    calendar.add_missing_timezones()
    return calendar.to_ical()
