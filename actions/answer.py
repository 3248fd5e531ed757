"""action_answer: answer a question from the knowledge index (or hand the resident to care)."""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import ConciergeAction, intent_of, offer_handoff, resident_ward, send, sensitive_answer
from actions.runtime import get_concierge
from actions.ward import set_ward
from bot.concierge import Concierge

log = logging.getLogger(__name__)


def record_unresolved(
    concierge: Concierge, tracker: Tracker, text: str, ward: str | None, score: float
) -> None:
    """Log the question as a regional issue; a database failure must not silence the bot."""
    try:
        concierge.issues.record(
            text, ward, score, tracker.get_latest_input_channel(), topic=concierge.topic_of(text)
        )
    except Exception:
        log.exception("could not record an unresolved question for %s", tracker.sender_id)


class ActionAnswer(ConciergeAction):
    def name(self) -> str:
        return "action_answer"

    def respond(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        concierge = get_concierge()
        text = tracker.latest_message.get("text") or ""
        if not text.strip():
            dispatcher.utter_message(response="utter_empty")
            return []
        ward = resident_ward(concierge, tracker)
        place = concierge.find_place(text)
        if place and not concierge.says_more_than_place(text):  # 「幸区」 alone, whatever NLU thought
            return set_ward(concierge, dispatcher, tracker, place.ward)
        topic = concierge.sensitive_topic(text)
        if topic:
            answer = sensitive_answer(topic)
            send(dispatcher, answer)
            return [SlotSet("ward", ward), SlotSet("last_counter", answer.counter)]
        intent = intent_of(tracker)
        if intent == "out_of_scope":
            dispatcher.utter_message(response="utter_out_of_scope")
            return []
        answer = concierge.answer(text, ward, intent)
        if not answer.unresolved:
            send(dispatcher, answer)
            return [
                SlotSet("ward", ward),
                SlotSet("last_question", text),
                SlotSet("last_counter", answer.counter),
                SlotSet("misses", 0),
            ]
        record_unresolved(concierge, tracker, text, ward, answer.confidence)
        misses = int(tracker.get_slot("misses") or 0) + 1
        if misses >= concierge.settings.misses_before_handoff:
            answer = offer_handoff(answer)
        send(dispatcher, answer)
        return [SlotSet("ward", ward), SlotSet("last_question", None), SlotSet("misses", misses)]
