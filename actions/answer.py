"""action_answer: answer a question from the knowledge index."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import intent_of, resident_ward, send
from bot.concierge import get_concierge


class ActionAnswer(Action):
    def name(self) -> str:
        return "action_answer"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        concierge = get_concierge()
        text = tracker.latest_message.get("text") or ""
        if not text.strip():
            dispatcher.utter_message(response="utter_empty")
            return []
        ward = resident_ward(concierge, tracker)
        answer = concierge.answer(text, ward, intent_of(tracker))
        send(dispatcher, answer)
        return [SlotSet("ward", ward), SlotSet("last_question", None if answer.unresolved else text)]
