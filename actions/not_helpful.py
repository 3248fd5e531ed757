"""action_not_helpful: the resident says the answer did not help: a failure like a fallback."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import ConciergeAction, offer_handoff, resident_language, resident_ward, send
from actions.dialogue import record_unresolved
from actions.runtime import get_concierge
from bot.answering.composer import Answer
from bot.wording import say


class ActionNotHelpful(ConciergeAction):
    def name(self) -> str:
        return "action_not_helpful"

    def respond(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        concierge = get_concierge()
        ward = resident_ward(concierge, tracker)
        question = tracker.get_slot("last_question")
        if question:
            record_unresolved(concierge, tracker, question, ward, 0.0)
        misses = int(tracker.get_slot("misses") or 0) + 1
        lang = resident_language(tracker)
        answer = Answer(text=say("utter_not_helpful", lang), ward=ward)
        if misses >= concierge.settings.misses_before_handoff:
            answer = offer_handoff(answer, lang)
        send(dispatcher, answer)
        return [SlotSet("misses", misses), SlotSet("last_question", None)]
