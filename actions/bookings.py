"""validate_booking_form and action_bookings: booking a consultation in the conversation (issue 19).

Thin: the conversation's logic is bot/bookings/dialogue.py (testable without Rasa); these classes
read the tracker (slots, the latest message, the channel) and send what it decided. booking_form
has no utter_ask_* responses: validate_booking_form asks itself, with quick replies built from the
free slots, and ends the form by setting `requested_slot` to None.
"""

from __future__ import annotations

import asyncio
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import runtime
from actions.common import ConciergeAction, intent_of, resident_language, resident_ward, send
from actions.dialogue import answer_instead
from actions.dialogue import respond as dialogue_respond
from bot.answering.concierge import Concierge
from bot.bookings import dialogue
from bot.bookings.dialogue import Context, Found, Message, Say

ENTITIES = ("ward", "counter", "date", "time", "change", "number")


def now():
    """The actions' clock (a test may replace it)."""
    return dialogue.now_jst()


def message_of(tracker: Tracker) -> Message:
    entities = {
        e["entity"]: e["value"]
        for e in tracker.latest_message.get("entities", [])
        if e.get("entity") in ENTITIES and isinstance(e.get("value"), str)
    }
    return Message(intent_of(tracker), entities, (tracker.latest_message.get("text") or "").strip())


def context_of(concierge: Concierge, tracker: Tracker) -> Context:
    def find(text: str, ward: str | None) -> Found:
        answer = concierge.answer(text, ward)
        if answer.unresolved:
            return Found(answer, None, None)
        topic = concierge.title_of(answer.entry) if answer.entry else None
        return Found(answer, answer.counter_id, topic)

    entry = tracker.get_slot("answered_entry")
    last = tracker.get_slot("last_counter")
    return Context(
        database_url=runtime.settings().database_url,
        kb=concierge.kb,
        conversation=tracker.sender_id,
        channel=tracker.get_latest_input_channel(),
        lang=resident_language(tracker),
        now=now(),
        known_ward=resident_ward(concierge, tracker),
        last_counter=last if isinstance(last, str) else None,
        last_topic=concierge.title_of(entry) if isinstance(entry, str) and entry else None,
        find=find,
    )


def utter(dispatcher: CollectingDispatcher, says: list[Say]) -> None:
    for s in says:
        if s.answer is not None:
            send(dispatcher, s.answer)
        elif s.response:
            dispatcher.utter_message(
                response=s.response, buttons=s.buttons or None, json_message=s.custom, **s.values
            )


class ValidateBookingForm(ConciergeAction):
    """booking_form's brain: every turn of the form comes here (never rejected: anything typed is
    read as the topic, a ward, a date or a time, or answered with 「選んでください」)."""

    def name(self) -> str:
        return "validate_booking_form"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        # every slot is set, even unchanged: a form validation with no SlotSet is a rejection
        return await asyncio.to_thread(self.respond, dispatcher, tracker, domain)

    def respond(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        concierge = runtime.get_concierge()
        if answer_instead(concierge, tracker):  # a question after all: the form ends unopened
            return [*dialogue_respond(concierge, dispatcher, tracker), SlotSet("requested_slot", None)]
        slots = {name: tracker.get_slot(name) for name in dialogue.SLOTS}
        turn = dialogue.step(context_of(concierge, tracker), slots, message_of(tracker))
        utter(dispatcher, turn.says)
        events: list[EventType] = [SlotSet(k, v) for k, v in turn.slots.items()]
        if turn.done:
            events.append(SlotSet("requested_slot", None))
        elif turn.requested:  # asked again although set: the typed time, to be confirmed
            events.append(SlotSet("requested_slot", turn.requested))
        return events


class ActionBookings(ConciergeAction):
    """「予約を確認」「予約をキャンセル」「予約を変更したい」 and their quick replies."""

    def name(self) -> str:
        return "action_bookings"

    def respond(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        concierge = runtime.get_concierge()
        if answer_instead(concierge, tracker):  # a question after all
            return dialogue_respond(concierge, dispatcher, tracker)
        utter(dispatcher, dialogue.manage(context_of(concierge, tracker), message_of(tracker)))
        return []
