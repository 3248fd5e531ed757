"""The console's booking pages (issue 19): consultation slots at a ward office's counters (one, or a
weekly pattern with exceptions; holidays and the year-end closure are skipped with the reason), the
day's bookings per counter with arrived / no-show, and a staff cancellation with a message.

Registered on the console's blueprint like web/staff_notices.py (the same login, session checks,
CSRF tokens and headers). Ward staff act for their own wards only; editors and admins for all.
Every change is in the audit log. A cancellation's message reaches the resident the way a ticket's
reply does (bot/escalation.py ChannelDelivery: LINE's push API for LINE, the Rasa conversation —
masked — always). It is delivered first and the booking cancelled after, as a reply is sent before
it is recorded: a message that did not go out leaves the booking as it was, to try again.
"""

from __future__ import annotations

import re
from datetime import date

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from bot.bookings import reservations, slots
from bot.bookings.reservations import BookingError, Reservation
from bot.bookings.slots import SlotError
from bot.business_hours import DAYS
from bot.escalation import Addressee, DeliveryError
from bot.knowledge import KnowledgeError
from bot.privacy import mask
from web import console_text
from web.staff import ActionForm, _audit, _console, _settings, bp
from web.staff_notices import _check_wards, _csrf_ok, _my_wards, _office_counters, _today

SLOTS_SHOWN = 200  # upcoming slots listed; a year of a weekly pattern is more than a page should hold
MESSAGE_CHARS = 2000  # as a ticket's reply
_SEPARATORS = re.compile(r"[\s,、]+")  # exception days: one class, linear


def _counters() -> tuple[list, str | None]:
    """The ward office's counters, or none and why (a broken knowledge file)."""
    try:
        return _office_counters(), None
    except KnowledgeError:
        return [], console_text.SLOT_PROBLEM["no_knowledge"]


def _names() -> dict[str, str]:
    return {c.id: c.name for c in _counters()[0]}


# --- slots -----------------------------------------------------------------------------------


def _empty_slot_fields() -> dict:
    mine = _my_wards()
    ward = mine[0] if len(mine) == 1 else ""
    return {
        "one": {"ward": ward, "counter": "", "day": "", "start": "", "minutes": "30", "capacity": "1"},
        "weekly": {"ward": ward, "counter": "", "weekdays": [], "start": "", "minutes": "30", "capacity": "1",
                   "first": "", "last": "", "exceptions": ""},
    }  # fmt: skip


def _slots_page(fields: dict, problems: dict | None = None, result=None, status: int = 200):
    counters, broken = _counters()
    rows = slots.listing(_settings().database_url, since=_today(), wards=_my_wards())
    page = render_template(
        "staff/booking_slots.html", fields=fields, problems={"page": broken, **(problems or {})},
        result=result, rows=rows[:SLOTS_SHOWN], more=len(rows) > SLOTS_SHOWN, wards=_my_wards(),
        counters=counters, names={c.id: c.name for c in counters},
        weekdays=list(zip(DAYS, console_text.WEEKDAY, strict=True)), form=ActionForm(),
    )  # fmt: skip
    return page, status


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError as err:
        raise SlotError(console_text.SLOT_PROBLEM["bad_date"]) from err


def _number(text: str) -> int:
    if not text.strip().isdecimal():
        raise SlotError(console_text.SLOT_PROBLEM["bad_number"])
    return int(text)


def _exceptions(text: str) -> list[date]:
    try:
        return [date.fromisoformat(part) for part in _SEPARATORS.split(text.strip()) if part]
    except ValueError as err:
        raise SlotError(console_text.SLOT_PROBLEM["bad_exception"]) from err


def _slot_name(slot: slots.Slot) -> str:
    """「中原区役所 区民課 2月2日（火）10:00」."""
    counter = _names().get(slot.counter_id, slot.counter_id)
    return f"{slot.ward}役所 {counter} {console_text.day_ja(slot.day)} {slot.start}"


def _counter_of(fields: dict) -> str:
    """The posted counter, one of the ward office's (the form offers no other)."""
    if fields["counter"] not in _names():
        raise SlotError(console_text.SLOT_PROBLEM["unknown_counter"])
    return fields["counter"]


@bp.get("/bookings/slots")
@login_required
def booking_slots():
    return _slots_page(_empty_slot_fields())


@bp.post("/bookings/slots")
@login_required
def booking_slot_add():
    _csrf_ok()
    form = request.form
    one = {key: form.get(key, "") for key in ("ward", "counter", "day", "start", "minutes", "capacity")}
    fields = {**_empty_slot_fields(), "one": one}
    _check_wards([one["ward"]])
    try:
        slot = slots.add_slot(
            _settings().database_url, _console().knowledge(), ward=one["ward"], counter_id=_counter_of(one),
            day=_day(one["day"]), start=one["start"], minutes=_number(one["minutes"]),
            capacity=_number(one["capacity"]), by=current_user.name, today=_today(),
        )  # fmt: skip
    except SlotError as err:
        return _slots_page(fields, {"one": str(err)}, status=400)
    except KnowledgeError:
        return _slots_page(fields, {"one": console_text.SLOT_PROBLEM["no_knowledge"]}, status=503)
    _audit("slot-add", f"slot:{slot.id}", f"{slot.ward} {slot.counter_id} {slot.day} {slot.start} "
           f"{slot.minutes}min x{slot.capacity}")  # fmt: skip
    flash(f"{_slot_name(slot)}〜{slot.end}（定員{slot.capacity}人）の予約枠を公開しました。")
    return redirect(url_for("staff.booking_slots"))


@bp.post("/bookings/slots/weekly")
@login_required
def booking_slots_weekly():
    """A weekly pattern: the page shows every slot added and every day skipped, with the reason."""
    _csrf_ok()
    form = request.form
    keys = ("ward", "counter", "start", "minutes", "capacity", "first", "last", "exceptions")
    weekly = {key: form.get(key, "") for key in keys}
    weekly["weekdays"] = [d for d in DAYS if d in form.getlist("weekdays")]
    fields = {**_empty_slot_fields(), "weekly": weekly}
    _check_wards([weekly["ward"]])
    try:
        counter = _counter_of(weekly)
        first, last = _day(weekly["first"]), _day(weekly["last"])
        result = slots.add_weekly(
            _settings().database_url, _console().knowledge(), ward=weekly["ward"], counter_id=counter,
            weekdays=weekly["weekdays"], start=weekly["start"], minutes=_number(weekly["minutes"]),
            capacity=_number(weekly["capacity"]), first=first, last=last,
            exceptions=_exceptions(weekly["exceptions"]), by=current_user.name, today=_today(),
        )  # fmt: skip
    except SlotError as err:
        return _slots_page(fields, {"weekly": str(err)}, status=400)
    except KnowledgeError:
        return _slots_page(fields, {"weekly": console_text.SLOT_PROBLEM["no_knowledge"]}, status=503)
    _audit("slot-pattern", f"{weekly['ward']}:{counter}", f"{first}..{last} {','.join(weekly['weekdays'])} "
           f"{weekly['start']}: {len(result.added)} added, {len(result.skipped)} skipped")  # fmt: skip
    return _slots_page(fields, result=result)


@bp.post("/bookings/slots/<int:slot_id>/close")
@login_required
def booking_slot_close(slot_id: int):
    _csrf_ok()
    slot = slots.get(_settings().database_url, slot_id)
    if slot is None or slot.ward not in _my_wards():
        abort(404)  # another ward's slot does not exist for this user
    name = _slot_name(slot)
    if slots.close(_settings().database_url, slot_id):
        _audit("slot-close", f"slot:{slot_id}", f"{slot.ward} {slot.counter_id} {slot.day} {slot.start}")
        flash(f"{name} の予約枠の受付を締め切りました。入っている予約はそのままです。")
    else:
        flash(f"{name} の予約枠はもう締め切られています。")
    return redirect(url_for("staff.booking_slots"))


# --- the day's bookings ----------------------------------------------------------------------


def _chosen_day(text: str | None) -> date:
    if not text:
        return _today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        abort(400)


def _groups(rows: list[Reservation]) -> list[dict]:
    """The day's bookings per ward office counter, in the order day_view gives them."""
    names = _names()
    groups: list[dict] = []
    for r in rows:
        key = (r.slot.ward, r.slot.counter_id)
        if not groups or groups[-1]["key"] != key:
            name = names.get(r.slot.counter_id, r.slot.counter_id)
            groups.append({"key": key, "ward": r.slot.ward, "counter": name, "rows": []})
        groups[-1]["rows"].append(r)
    return groups


@bp.get("/bookings")
@login_required
def bookings():
    day = _chosen_day(request.args.get("day"))
    ward = request.args.get("ward") or ""
    if ward and ward not in _my_wards():
        abort(404)
    rows = reservations.day_view(_settings().database_url, day, [ward] if ward else _my_wards())
    counts = {s: sum(r.status == s for r in rows) for s in console_text.BOOKING_STATUS}
    return render_template(
        "staff/bookings.html", day=day, ward=ward, wards=_my_wards(), groups=_groups(rows), counts=counts,
        today=_today(), form=ActionForm(),
    )  # fmt: skip


def _visible_booking(day: str, booking_id: int) -> Reservation:
    """A booking of that day in the user's wards; any other does not exist for this user."""
    try:
        wanted = date.fromisoformat(day)
    except ValueError:
        abort(404)
    rows = reservations.day_view(_settings().database_url, wanted, _my_wards())
    found = [r for r in rows if r.id == booking_id]
    if not found:
        abort(404)
    return found[0]


def _back(booking: Reservation):
    return redirect(url_for("staff.bookings", day=booking.slot.day.isoformat()))


@bp.post("/bookings/<day>/<int:booking_id>/mark")
@login_required
def booking_mark(day: str, booking_id: int):
    """来庁 / 来なかった: from the booking's day on (a booking marked early could no longer be
    cancelled, nor seen by its resident)."""
    _csrf_ok()
    booking = _visible_booking(day, booking_id)
    status = request.form.get("status")
    if status not in ("arrived", "no_show"):
        abort(400)
    if booking.slot.day > _today():
        flash(console_text.BOOKING_PROBLEM["not_yet"])
    elif reservations.mark(_settings().database_url, booking.id, status):
        _audit("booking-mark", f"booking:{booking.id}", f"{booking.slot.ward} {booking.slot.day} {status}")
        flash(f"予約番号 {booking.number} を「{console_text.BOOKING_STATUS[status]}」にしました。")
    else:
        flash(console_text.BOOKING_PROBLEM["not_active"])
    return _back(booking)


def _draft(booking: Reservation) -> str:
    s = booking.slot
    return console_text.BOOKING_CANCEL_DRAFT.format(
        number=booking.number, day=console_text.day_ja(s.day), start=s.start, end=s.end, ward=s.ward,
        counter=_names().get(s.counter_id, s.counter_id),
    )  # fmt: skip


def _cancel_page(booking: Reservation, message: str, problem: str | None = None, status: int = 200):
    page = render_template(
        "staff/booking_cancel.html", b=booking, counter=_names().get(booking.slot.counter_id,
        booking.slot.counter_id), message=message, problem=problem, form=ActionForm(),
    )  # fmt: skip
    return page, status


def _deliver(booking: Reservation, text: str) -> None:
    """Through the console's staff-reply delivery; DeliveryError says why it did not go out."""
    delivery = _console().escalations.delivery
    if delivery is None:
        raise DeliveryError(console_text.BOOKING_PROBLEM["no_delivery"])
    delivery.send(Addressee(booking.conversation, booking.channel, booking.id), text)


@bp.route("/bookings/<day>/<int:booking_id>/cancel", methods=["GET", "POST"])
@login_required
def booking_cancel(day: str, booking_id: int):
    if request.method == "POST":
        _csrf_ok()
    booking = _visible_booking(day, booking_id)
    if booking.status != "booked":
        flash(console_text.BOOKING_PROBLEM["not_active"])
        return _back(booking)
    if request.method == "GET":
        return _cancel_page(booking, _draft(booking))
    message = request.form.get("message", "").replace("\r\n", "\n").strip()  # a browser posts CRLF
    if not message:
        return _cancel_page(booking, message, console_text.BOOKING_PROBLEM["no_message"], 400)
    if len(message) > MESSAGE_CHARS:
        return _cancel_page(booking, message, console_text.BOOKING_PROBLEM["too_long"], 400)
    delivered = booking.conversation is not None  # a conversation erased at retention: no one to tell
    try:
        if delivered:
            _deliver(booking, message)
        reservations.cancel(
            _settings().database_url, booking.number, by=current_user.name, message=mask(message)
        )
    except DeliveryError as err:
        return _cancel_page(booking, message, str(err), 502)
    except BookingError:  # the resident cancelled it a moment ago
        flash(console_text.BOOKING_PROBLEM["not_active"])
        return _back(booking)
    s = booking.slot
    _audit("booking-cancel", f"booking:{booking.id}", f"{s.ward} {s.counter_id} {s.day} {s.start}"
           + ("" if delivered else " (not delivered: no conversation)"))  # fmt: skip
    told = (
        "住民にメッセージを送りました。" if delivered else "会話が残っていないため、住民には届いていません。"
    )
    flash(f"予約番号 {booking.number} をキャンセルしました。{told}")
    return _back(booking)
