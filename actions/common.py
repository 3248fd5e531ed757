"""What the actions share: the resident's ward and language, sending an Answer, handing off to staff.

Their words are responses in domain.yml: a message of its own is uttered by Rasa
(`response=`, the variation for the `language` slot); words added to a composed Answer are read
from the same responses through bot/wording.py."""

from __future__ import annotations

import abc
import asyncio
import logging
from datetime import datetime
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import runtime
from bot.answering.composer import HANDOFF_BUTTON, Answer, ward_buttons
from bot.answering.concierge import Concierge
from bot.business_hours import JST, schedules_for, when_staff_answer
from bot.escalation import StorageUnavailable
from bot.knowledge import WARDS
from bot.knowledge.model import SensitiveTopic
from bot.payloads import OFFERS
from bot.phrases import bilingual
from bot.wording import DEFAULT_LANGUAGE, LANGUAGES, say

log = logging.getLogger(__name__)
DEFAULT_DEPARTMENT = "総合案内"
TRANSCRIPT_LINES = 30


class ConciergeAction(Action, abc.ABC):
    """An action whose work blocks (encoders, Sudachi, the database). rasa-sdk awaits `run`, which
    hands `respond` to a worker thread, so the action server keeps serving other residents
    meanwhile (the encoders release the GIL while they embed)."""

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        events = await asyncio.to_thread(self.respond, dispatcher, tracker, domain)
        # a slot set to the value it already has changes nothing but costs Rasa a stored event
        return [
            e for e in events if not (e.get("event") == "slot" and tracker.get_slot(e["name"]) == e["value"])
        ]

    @abc.abstractmethod
    def respond(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        """The action's work, in a worker thread."""


def resident_ward(concierge: Concierge, tracker: Tracker) -> str | None:
    """Ward from this message (entity, town, station or reading), else from earlier on."""
    for entity in tracker.latest_message.get("entities", []):
        if entity.get("entity") == "ward" and entity.get("value") in WARDS:
            return entity["value"]
    match = concierge.find_place(tracker.latest_message.get("text") or "")
    if match:
        return match.ward
    slot = tracker.get_slot("ward")
    return slot if slot in WARDS else None


def resident_language(tracker: Tracker) -> str:
    """The `language` slot (set from each typed message by bot.rasa_server.nlu.language), as Rasa reads it."""
    lang = tracker.get_slot("language")
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def send(dispatcher: CollectingDispatcher, answer: Answer, feedback: bool = False) -> None:
    """The answer's text, quick replies and card; with `feedback`, 「解決しましたか？」 too."""
    payload = answer.payload()
    if feedback:
        payload["feedback"] = feedback_offer(answer.lang)
    dispatcher.utter_message(text=answer.text, buttons=answer.buttons or None, json_message=payload)


def feedback_offer(lang: str) -> dict[str, Any]:
    """「解決しましたか？」 with はい / いいえ, apart from the answer's quick replies (REST `custom`):
    the widget shows it under that answer, LINE adds it to the quick replies (bot/line_messaging.py)."""
    offer = OFFERS["feedback"]
    return {
        "question": say("utter_feedback_question", lang),
        "buttons": [
            {"title": say("utter_feedback_yes", lang), "payload": offer.payload(helpful=True)},
            {"title": say("utter_feedback_no", lang), "payload": offer.payload(helpful=False)},
        ],
    }


def record_outcome(
    concierge: Concierge,
    tracker: Tracker,
    ward: str | None,
    outcome: str,
    entry: str | None = None,
    topic: str | None = None,
) -> None:
    """One AnswerEvent for this reply (bot/analytics.py); a failure must not silence the bot."""
    try:
        channel = tracker.get_latest_input_channel()
        concierge.answers.record(tracker.sender_id, ward, channel, outcome, entry, topic)
    except Exception:
        log.exception("could not record the outcome of a reply")  # no sender id in logs


def intent_of(tracker: Tracker) -> str | None:
    intent: dict[str, Any] = tracker.latest_message.get("intent") or {}
    return intent.get("name")


def offer_handoff(answer: Answer, lang: str) -> Answer:
    """After repeated failures: say so and put the way to a person in front."""
    answer.text += "\n" + say("utter_offer_handoff", lang)
    answer.buttons = [HANDOFF_BUTTON]
    return answer


def sensitive_answer(topic: SensitiveTopic, lang: str) -> Answer:
    """The specialist counters first, with their sources; a person is one tap away."""
    contacts = [
        say("utter_sensitive_contact", lang, name=c.name, phone=c.phone, note=c.note) for c in topic.contacts
    ]
    sources = [c.source for c in topic.contacts]
    text = say(
        "utter_sensitive",
        lang,
        topic=topic.label,
        contacts="\n".join(contacts),
        sources="／".join(dict.fromkeys(s.label for s in sources)),
    )
    counter, counter_id = (topic.counter.name, topic.counter.id) if topic.counter else (None, None)
    return Answer(
        text=text, sources=sources, counter=counter, counter_id=counter_id, buttons=[HANDOFF_BUTTON]
    )


def transcript(tracker: Tracker) -> list[tuple[str, str]]:
    lines = [
        ("resident" if e["event"] == "user" else "bot", e.get("text") or "")
        for e in tracker.events
        if e.get("event") in ("user", "bot") and e.get("text")
    ]
    return lines[-TRANSCRIPT_LINES:]


def hand_off(
    concierge: Concierge, dispatcher: CollectingDispatcher, tracker: Tracker, ward: str, reason: str
) -> list[EventType]:
    """Open a ticket (committed first), tell the resident what happens next, pause the bot."""
    remembered = tracker.get_slot("last_counter")  # a counter's id (its name before issue 15)
    counters = concierge.kb.counters
    counter = counters.get(remembered) or next((c for c in counters.values() if c.name == remembered), None)
    department = counter.name if counter else DEFAULT_DEPARTMENT
    sender, address = tracker.sender_id, client_address(tracker)
    limiter = runtime.handoff_limiter()
    if not limiter.allowed(sender, address):  # a person stays reachable: by phone
        log.warning("hand-off limit reached for a sender; no ticket opened")
        office = concierge.kb.ward_office(ward)
        lang = resident_language(tracker)
        name = bilingual(office.name, office.name_en, lang) if office else ward
        dispatcher.utter_message(text=say("utter_handoff_limited", lang, office=name))
        return [SlotSet("handoff_pending", None), SlotSet("misses", 0)]
    try:
        ticket_id: int | None = concierge.escalations.open_ticket(
            ward=ward,
            department=department,
            reason=reason,
            channel=tracker.get_latest_input_channel() or "rest",
            sender=sender,
            transcript=transcript(tracker),
        )
    except StorageUnavailable:  # kept in the spool: staff get it as soon as the database is back
        ticket_id = None
    limiter.opened(sender, address)
    record_outcome(concierge, tracker, ward, "handoff")
    office = concierge.kb.ward_office(ward)
    # the same schedules the staff's "answered within the promise" figure uses for this ticket
    schedules = schedules_for(concierge.kb, ward, counter.id if counter else None)
    when = when_staff_answer(schedules, datetime.now(JST))
    hours = "／".join(s.text for s in schedules)
    card = Answer(text="", ward=ward, counter=department if counter else None, handoff=True)
    card.office = office.name if office else None
    # the response carries the 「ボットに戻る」 button; the card says where and that it is a hand-off
    dispatcher.utter_message(
        response="utter_handoff_spooled" if ticket_id is None else "utter_handoff_opened",
        json_message=card.payload(),
        ticket=ticket_id,
        ward=ward,
        department=department,
        when=when,
        hours=hours,
    )
    return [SlotSet("handoff_pending", None), SlotSet("misses", 0), ConversationPaused()]


def client_address(tracker: Tracker) -> str | None:
    """The widget's hashed client address that came with this message (REST metadata)."""
    metadata = tracker.latest_message.get("metadata") or {}
    address = metadata.get("address") if isinstance(metadata, dict) else None
    return address if isinstance(address, str) else None


def ask_ward_for_handoff(dispatcher: CollectingDispatcher, reason: str) -> list[EventType]:
    dispatcher.utter_message(response="utter_handoff_ask_ward", buttons=ward_buttons())
    return [SlotSet("handoff_pending", reason)]
