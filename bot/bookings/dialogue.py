"""The booking conversation (issue 19), without Rasa: what booking_form's validate action and
action_bookings say and which slots they set, from the slots, the latest message and the database.

The form goes counter → ward → day → time. Each question comes with quick replies that are partial
`/book{…}` payloads (bot/payloads.py), each one carrying everything chosen so far, so a tap is
never read against stale slots; the time's quick reply is the full payload, which books at once.
A typed time is confirmed first (はい is that full payload). Whatever cannot be booked — a past
date, a full or closed slot, no slot at that time, a time outside the counter's hours — ends the
form with the reason and the next free slots as full payloads. The database away ends it with a
polite "try again later": a booking is one transaction (bot/bookings/reservations.py), so nothing
is left half done.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from bot.answering.board_answers import find_counter
from bot.answering.composer import HANDOFF_BUTTON, Answer
from bot.bookings import reservations
from bot.bookings.reservations import BookingError, Reservation
from bot.bookings.slots import JST, Slot, SlotError, check_within_hours
from bot.japanese import nfkc
from bot.knowledge.model import KnowledgeBase
from bot.payloads import OFFERS, WARDS
from bot.phrases import bilingual
from bot.wording import say

log = logging.getLogger(__name__)

SLOTS = ("booking_counter", "booking_ward", "booking_date", "booking_time", "booking_topic", "booking_change")
CLEARED: dict[str, Any] = dict.fromkeys(SLOTS)
MAX_BUTTONS = 13  # LINE's quick replies
MAX_DAYS = 10
LABEL_CHARS = 20
MAX_LISTED = 5  # bookings listed with their buttons: two each, and 「予約を確認」 within 13
WEEKDAYS = "月火水木金土日"
LEAVE = frozenset({"request_human", "goodbye", "thank", "greet", "resume_bot", "stop_booking"})
MANAGE = frozenset({"my_bookings", "cancel_booking", "change_booking"})
# A question typed where a ward, a day or a time was asked (the topic step takes any question)
QUESTIONS = frozenset({"ask_procedure", "ask_hours", "ask_policy", "ask_congestion", "ask_special_opening",
                       "ask_shelter"})  # fmt: skip
# Typed dates and times: 「2月2日」「2027-02-02」「2/2」, 「10:00」「10時」「10時半」 (NFKC first). Linear:
# each part a bounded digit run or a literal.
TYPED_DATE = re.compile(r"(?:(\d{4})[-/年])?(\d{1,2})[-/月](\d{1,2})日?")
TYPED_TIME = re.compile(r"(\d{1,2})(?::(\d{2})|時(半|(\d{1,2})分)?)")
# はい / いいえ typed to 「次の内容で予約しますか」 (NFKC, lower case; the whole message)
YES = re.compile(
    r"(?:はい|お願いします|おねがいします|それで|それでお願いします|ok|yes|予約する|うん|ええ)[。!！]?"
)
NO = re.compile(r"(?:いいえ|いや|違います|ちがいます|no|やめます)[。!！]?")


@dataclass
class Say:
    """One message: a domain.yml response with its values, quick replies and custom payload, or an
    answer from the concierge (sent like any answer)."""

    response: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    buttons: list[dict[str, str]] = field(default_factory=list)
    custom: dict[str, Any] | None = None
    answer: Answer | None = None


@dataclass
class Turn:
    says: list[Say]
    slots: dict[str, Any]
    done: bool = False  # the form ends (booked, stopped, or nothing to book)
    booked: Reservation | None = None
    requested: str | None = None  # the slot to ask for although it is set (the time, to confirm)


@dataclass(frozen=True)
class Message:
    """What the resident sent: the intent, the payload's entities (validated by the channel), the text."""

    intent: str | None
    entities: dict[str, Any]
    text: str


@dataclass
class State:
    counter: str | None = None
    ward: str | None = None
    date: str | None = None
    time: str | None = None
    topic: str | None = None
    change: str | None = None

    @classmethod
    def of(cls, slots: dict[str, Any]) -> State:
        def text(name: str) -> str | None:
            value = slots.get(name)
            return value if isinstance(value, str) and value else None

        return cls(*(text(s) for s in SLOTS))

    def as_slots(self) -> dict[str, Any]:
        return dict(
            zip(SLOTS, (self.counter, self.ward, self.date, self.time, self.topic, self.change), strict=True)
        )


@dataclass(frozen=True)
class Found:
    """What a typed matter led to: the answer, the counter that handles it, the entry's title."""

    answer: Answer
    counter: str | None
    topic: str | None


@dataclass
class Context:
    database_url: str
    kb: KnowledgeBase
    conversation: str
    channel: str | None
    lang: str
    now: datetime
    known_ward: str | None = None  # the `ward` slot, or a ward the message names
    last_counter: str | None = None  # the answer the resident just got (actions/dialogue.py)
    last_topic: str | None = None  # that answer's entry title
    find: Callable[[str, str | None], Found | None] | None = None  # ask the concierge

    def say(self, name: str, **values: Any) -> str:
        return say(name, self.lang, **values)


# ---- words ------------------------------------------------------------------------------------


def day_label(day: date) -> str:
    """「2月2日（火）」."""
    return f"{day.month}月{day.day}日（{WEEKDAYS[day.weekday()]}）"


def when_label(slot: Slot) -> str:
    """「2月2日（火）10:00〜10:30」 (JST)."""
    return f"{day_label(slot.day)}{slot.start}〜{slot.end}"


def office_of(ctx: Context, ward: str) -> tuple[str, str, str]:
    """The ward office's name, address and its phone as a line (empty if the knowledge has none)."""
    office = ctx.kb.ward_office(ward)
    if office is None:
        return ward, "", ""
    phone = ctx.say("utter_booking_phone", phone=office.phone) if office.phone else ""
    return bilingual(office.name, office.name_en, ctx.lang), office.address, phone


def counter_name(ctx: Context, counter_id: str) -> str:
    counter = ctx.kb.counters.get(counter_id)
    return bilingual(counter.name, counter.name_en, ctx.lang) if counter else counter_id


def counter_hours(ctx: Context, counter_id: str) -> str:
    counter = ctx.kb.counters.get(counter_id)
    hours = (counter.hours_en if ctx.lang == "en" and counter and counter.hours_en else None) or (
        counter.hours if counter else ()
    )
    return say("utter_phrase_hours_sep", ctx.lang).join(hours)


def bring_of(kb: KnowledgeBase, topic: str | None) -> list[str]:
    """What to bring for the entry the consultation is about (its service's list, as the answers
    give it), found by the entry's title; nothing for a topic the knowledge does not list."""
    if not topic:
        return []
    for service in kb.services.values():
        if service.name == topic:
            return list(service.bring)
    for faq in kb.faqs.values():
        if faq.questions and faq.questions[0] == topic:
            return [item for sid in faq.services if sid in kb.services for item in kb.services[sid].bring]
    return []


def button(title: str, payload: str) -> dict[str, str]:
    return {"title": title[:LABEL_CHARS], "payload": payload}


def book_payload(state: State, **more: str) -> str:
    entities = {"ward": state.ward, "counter": state.counter, "change": state.change, **more}
    return OFFERS["book"].payload(**{k: v for k, v in entities.items() if v})


def stop_button(ctx: Context) -> dict[str, str]:
    return button(ctx.say("utter_booking_button_stop"), OFFERS["stop_booking"].payload())


# ---- the form ---------------------------------------------------------------------------------


def step(ctx: Context, slots: dict[str, Any], message: Message) -> Turn:
    """One turn of booking_form: the slots it sets and what it says."""
    try:
        return _step(ctx, State.of(slots), message)
    except SQLAlchemyError as err:  # one transaction per booking: nothing was stored half
        log.warning("bookings unavailable (%s)", type(err).__name__)
        return Turn([Say("utter_booking_unavailable")], dict(CLEARED), done=True)


def _step(ctx: Context, state: State, message: Message) -> Turn:
    intent = message.intent
    if state.date and state.time and not message.text.startswith("/"):  # 「予約しますか」 answered
        said = nfkc(message.text).strip().lower()
        if YES.fullmatch(said):
            return advance(ctx, state)
        if NO.fullmatch(said):
            return advance(
                ctx, State(state.counter, state.ward, state.date, topic=state.topic, change=state.change)
            )
    if intent in LEAVE:  # a person asked for: stopped, and the way to one is the quick reply
        person = [HANDOFF_BUTTON] if intent == "request_human" else []
        return Turn([Say("utter_booking_stopped", buttons=person)], dict(CLEARED), done=True)
    if intent in MANAGE and not message.text.startswith("/book"):
        return Turn(manage(ctx, message), dict(CLEARED), done=True)
    if intent == "book":
        return _payload(ctx, state, message.entities)
    if intent == "request_booking" or (state.counter is None and not state.topic):
        if intent == "request_booking":
            state = State(ward=state.ward, change=state.change)
        return _start(ctx, state, message)
    return _typed(ctx, state, message)


def _payload(ctx: Context, state: State, entities: dict[str, Any]) -> Turn:
    """A quick reply: it carries every choice so far (a bare /book starts over at the topic)."""
    counter = entities.get("counter")
    # the topic goes with its counter, chosen or (no counter yet) just proposed
    topic = state.topic if counter and state.counter in (counter, None) else None
    if counter and topic is None and counter == ctx.last_counter:
        topic = ctx.last_topic
    new = State(
        counter=counter,
        ward=entities.get("ward") or (state.ward if counter == state.counter else None) or ctx.known_ward,
        date=entities.get("date"),
        time=entities.get("time"),
        topic=topic,
        change=entities.get("change"),
    )
    if new.counter is None:
        return Turn([Say("utter_booking_ask_topic", buttons=[stop_button(ctx)])], dict(CLEARED))
    return advance(ctx, new)


def _start(ctx: Context, state: State, message: Message) -> Turn:
    """「予約したい」: a counter the text names, else the one the resident was just told about,
    else the question 「どのようなご相談ですか」."""
    named = find_counter(ctx.kb, message.text) if message.text and not message.text.startswith("/") else None
    ward = state.ward or ctx.known_ward
    if named is not None:
        return advance(ctx, State(counter=named.id, ward=ward, change=state.change))
    if message.intent == "request_booking" and ctx.last_counter in ctx.kb.counters:
        proposed = State(ward=ward, topic=ctx.last_topic)
        return Turn([propose(ctx, ctx.last_counter, ward, ctx.last_topic)], proposed.as_slots())
    if message.intent != "request_booking" and message.text and not message.text.startswith("/"):
        return _topic(ctx, State(ward=ward), message.text)
    return Turn([Say("utter_booking_ask_topic", buttons=[stop_button(ctx)])], State(ward=ward).as_slots())


def propose(ctx: Context, counter_id: str, ward: str | None, topic: str | None) -> Say:
    """「〇〇の担当窓口は…です。この窓口の相談を予約しますか。」 with この窓口で予約 / ほかの相談 / やめる."""
    place = office_of(ctx, ward)[0] if ward else ctx.say("utter_phrase_your_ward_office")
    this = book_payload(State(counter=counter_id, ward=ward))
    buttons = [
        button(ctx.say("utter_booking_button_this"), this),
        button(ctx.say("utter_booking_button_other"), OFFERS["book"].payload()),
        stop_button(ctx),
    ]
    values = {
        "topic": topic or counter_name(ctx, counter_id),
        "place": place,
        "counter": counter_name(ctx, counter_id),
    }
    return Say("utter_booking_propose", values, buttons)


def _topic(ctx: Context, state: State, text: str) -> Turn:
    """The resident said what the consultation is about: answer it and propose its counter."""
    found = ctx.find(text, state.ward) if ctx.find else None
    if found is None or found.counter not in ctx.kb.counters:
        says = [Say(answer=found.answer)] if found and not found.answer.unresolved else []
        return Turn([*says, Say("utter_booking_topic_unknown", buttons=[stop_button(ctx)])], state.as_slots())
    ward = found.answer.ward if found.answer.ward in WARDS else state.ward
    return Turn(
        [Say(answer=found.answer), propose(ctx, found.counter, ward, found.topic)],
        State(ward=ward, topic=found.topic).as_slots(),
    )


def _typed(ctx: Context, state: State, message: Message) -> Turn:
    """Text where a choice was asked: a ward, a date or a time if it says one, else 「選んでください」."""
    text = nfkc(message.text)
    if state.counter is None:
        return _topic(ctx, state, message.text)
    if state.ward is None:
        ward = ctx.known_ward if ctx.known_ward and ctx.known_ward in text else None
        ward = ward or next((w for w in WARDS if w in text), None)
        if ward:
            return advance(ctx, State(state.counter, ward, topic=state.topic, change=state.change))
    elif state.date is None:
        day = typed_date(text, ctx.now)
        if day:
            return advance(ctx, State(state.counter, state.ward, day, topic=state.topic, change=state.change))
    else:
        start = typed_time(text)
        if start:
            return confirm(ctx, state, start)
    if message.intent in QUESTIONS and ctx.find:  # the resident moved on: stop, and answer them
        found = ctx.find(message.text, state.ward)
        if found is not None and not found.answer.unresolved:
            return Turn([Say("utter_booking_stopped"), Say(answer=found.answer)], dict(CLEARED), done=True)
    turn = advance(ctx, state)
    return Turn([Say("utter_booking_choose"), *turn.says], turn.slots, turn.done)


def typed_date(text: str, now: datetime) -> str | None:
    m = TYPED_DATE.search(text)
    if not m:
        return None
    year = int(m.group(1)) if m.group(1) else now.year
    try:
        day = date(year, int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None
    if not m.group(1) and day < now.date():  # 「1月10日」 in December: next year's
        day = day.replace(year=year + 1)
    return day.isoformat()


def typed_time(text: str) -> str | None:
    m = TYPED_TIME.search(text)
    if not m:
        return None
    hour = int(m.group(1))
    minute = int(m.group(2) or m.group(4) or (30 if m.group(3) == "半" else 0))
    if hour > 23 or minute > 59:
        return None
    return f"{hour:02d}:{minute:02d}"


def confirm(ctx: Context, state: State, start: str) -> Turn:
    """A typed time: はい books it (the full payload), いいえ shows the day's times again."""
    office = office_of(ctx, state.ward or "")[0]
    day = date.fromisoformat(state.date or "")
    when = f"{day_label(day)}{start}"
    buttons = [
        button(ctx.say("utter_booking_button_yes"), book_payload(state, date=state.date, time=start)),
        button(ctx.say("utter_booking_button_no"), book_payload(state, date=state.date)),
        stop_button(ctx),
    ]
    values = {"office": office, "counter": counter_name(ctx, state.counter or ""), "when": when}
    pending = State(state.counter, state.ward, state.date, start, state.topic, state.change)
    return Turn([Say("utter_booking_confirm", values, buttons)], pending.as_slots(), requested="booking_time")


def advance(ctx: Context, state: State) -> Turn:
    """Ask for what is missing, or book when the day and the time are there."""
    assert state.counter is not None
    if state.ward is None:
        buttons = [button(w, book_payload(state, ward=w)) for w in WARDS]
        return Turn([Say("utter_booking_which_ward", buttons=[*buttons, stop_button(ctx)])], state.as_slots())
    office, _, phone = office_of(ctx, state.ward)
    facts = {"office": office, "counter": counter_name(ctx, state.counter), "phone": phone,
             "hours": counter_hours(ctx, state.counter)}  # fmt: skip
    if not reservations.takes_bookings(ctx.database_url, state.ward, state.counter, now=ctx.now):
        return Turn([Say("utter_booking_not_bookable", facts)], dict(CLEARED), done=True)
    if state.date and state.time:
        return book(ctx, state)
    free = reservations.free_slots(ctx.database_url, state.ward, state.counter, now=ctx.now, limit=200)
    if not free:
        return Turn([Say("utter_booking_no_free", facts)], dict(CLEARED), done=True)
    if state.date:
        day = date.fromisoformat(state.date)
        that_day = [s for s in free if s.day == day][:MAX_BUTTONS]
        if that_day:
            buttons = [
                button(f"{s.start}〜{s.end}", book_payload(state, date=state.date, time=s.start))
                for s in that_day
            ]
            return Turn([Say("utter_booking_which_time", {"day": day_label(day)}, buttons)], state.as_slots())
        reason = "utter_booking_past" if day < ctx.now.date() else "utter_booking_no_slot"
        first = Say(reason, {"when": day_label(day)})
        state.date = None
        turn = advance(ctx, state)
        return Turn([first, *turn.says], turn.slots, turn.done)
    days = list(dict.fromkeys(s.day for s in free))[: min(MAX_DAYS, MAX_BUTTONS - 1)]
    buttons = [button(day_label(d), book_payload(state, date=d.isoformat())) for d in days]
    return Turn([Say("utter_booking_which_day", facts, [*buttons, stop_button(ctx)])], state.as_slots())


def book(ctx: Context, state: State) -> Turn:
    """The full payload: take the seat (or move the booking `change` names to it)."""
    assert state.counter and state.ward and state.date and state.time
    day = date.fromisoformat(state.date)
    try:
        if state.change:
            done = reservations.change(
                ctx.database_url,
                state.change,
                conversation=ctx.conversation,
                day=day,
                start=state.time,
                now=ctx.now,
            )
        else:
            done = reservations.book(
                ctx.database_url,
                ward=state.ward,
                counter_id=state.counter,
                day=day,
                start=state.time,
                conversation=ctx.conversation,
                channel=ctx.channel,
                topic=state.topic,
                now=ctx.now,
            )
    except BookingError as err:
        return Turn(refused(ctx, state, err.reason), dict(CLEARED), done=True)
    says = (
        [Say("utter_booking_changed", {"old": state.change})]
        if state.change and done.number != state.change
        else []
    )
    return Turn([*says, booked(ctx, done)], dict(CLEARED), done=True, booked=done)


def refused(ctx: Context, state: State, reason: str) -> list[Say]:
    """Why not, and the next free slots of that counter as quick replies that book at once."""
    if reason in ("not_found", "not_yours"):  # a change of a booking that is not this conversation's
        return [Say("utter_booking_not_found")]
    if reason == "not_active":
        return [Say("utter_booking_not_active")]
    assert state.counter and state.ward and state.date and state.time
    day = date.fromisoformat(state.date)
    when = f"{day_label(day)}{state.time}"
    values: dict[str, Any] = {"when": when}
    name = {"past": "utter_booking_past", "full": "utter_booking_full", "closed": "utter_booking_closed"}.get(
        reason, "utter_booking_no_slot"
    )
    if reason == "no_slot":
        try:
            check_within_hours(ctx.kb, state.counter, day, state.time, 30)
        except (SlotError, ValueError, KeyError):
            name = "utter_booking_outside_hours"
            values |= {
                "counter": counter_name(ctx, state.counter),
                "hours": counter_hours(ctx, state.counter),
            }
    buttons = offer_buttons(ctx, state)
    if buttons:
        return [Say(name, values, buttons)]
    office, _, phone = office_of(ctx, state.ward)
    return [Say(name, values), Say("utter_booking_no_other", {"office": office, "phone": phone})]


def offer_buttons(ctx: Context, state: State) -> list[dict[str, str]]:
    """The next free slots of the counter as full /book payloads (they book at once)."""
    assert state.counter and state.ward
    free = reservations.free_slots(ctx.database_url, state.ward, state.counter, now=ctx.now)
    return [
        button(f"{day_label(s.day)}{s.start}", book_payload(state, date=s.day.isoformat(), time=s.start))
        for s in free
    ]


def booked(ctx: Context, done: Reservation) -> Say:
    """The booking number, where and when, what to bring; on the widget the card and the .ics link."""
    slot = done.slot
    office, address, _ = office_of(ctx, slot.ward)
    items = bring_of(ctx.kb, done.topic)
    bring = say("utter_phrase_bring", ctx.lang, items="、".join(items)) + "\n" if items else ""
    when = when_label(slot)
    counter = counter_name(ctx, slot.counter_id)
    values = {"number": done.number, "office": office, "address": address, "counter": counter, "when": when,
              "bring": bring}  # fmt: skip
    custom = {
        "booking": {
            "number": done.number,
            "office": office,
            "address": address,
            "counter": counter,
            "ward": slot.ward,
            "when": when,
            "bring": items,
            "ics_label": ctx.say("utter_booking_ics"),
        }
    }
    see = button(ctx.say("utter_booking_button_see"), OFFERS["my_bookings"].payload())
    return Say("utter_booking_done", values, [see], custom)


# ---- 「予約を確認」「予約をキャンセル」「予約を変更したい」 -------------------------------------------


def manage(ctx: Context, message: Message) -> list[Say]:
    """action_bookings: list, cancel (only this conversation's) or pick one to change."""
    try:
        return _manage(ctx, message)
    except SQLAlchemyError as err:
        log.warning("bookings unavailable (%s)", type(err).__name__)
        return [Say("utter_booking_unavailable")]


def _manage(ctx: Context, message: Message) -> list[Say]:
    intent = message.intent
    if intent == "stop_booking":
        return [Say("utter_booking_stopped")]
    number = message.entities.get("number") if intent == "cancel_booking" else None
    if isinstance(number, str):
        try:
            gone = reservations.cancel(ctx.database_url, number, conversation=ctx.conversation)
        except BookingError as err:  # not_found and not_yours say the same: nothing is revealed
            return [
                Say("utter_booking_not_active" if err.reason == "not_active" else "utter_booking_not_found")
            ]
        office = office_of(ctx, gone.slot.ward)[0]
        values = {"number": gone.number, "when": when_label(gone.slot), "office": office,
                  "counter": counter_name(ctx, gone.slot.counter_id)}  # fmt: skip
        return [Say("utter_booking_cancelled", values)]
    mine = reservations.of_conversation(ctx.database_url, ctx.conversation, now=ctx.now)
    if not mine:
        return [Say("utter_bookings_none")]
    shown = mine[:MAX_LISTED]
    lines = "\n".join(
        ctx.say(
            "utter_bookings_line",
            number=r.number,
            when=when_label(r.slot),
            office=office_of(ctx, r.slot.ward)[0],
            counter=counter_name(ctx, r.slot.counter_id),
        )
        for r in shown
    )
    change = [
        button(ctx.say("utter_booking_button_change", number=r.number), _change_payload(r)) for r in shown
    ]
    cancel = [
        button(
            ctx.say("utter_booking_button_cancel", number=r.number),
            OFFERS["cancel_booking"].payload(number=r.number),
        )
        for r in shown
    ]
    if intent == "cancel_booking":
        return [Say("utter_bookings_which_cancel", {"lines": lines}, cancel)]
    if intent == "change_booking":
        return [Say("utter_bookings_which_change", {"lines": lines}, change)]
    both = [b for pair in zip(change, cancel, strict=True) for b in pair]
    return [Say("utter_bookings_list", {"lines": lines}, both)]


def _change_payload(r: Reservation) -> str:
    return OFFERS["book"].payload(ward=r.slot.ward, counter=r.slot.counter_id, change=r.number)


def now_jst() -> datetime:
    return datetime.now(JST)
