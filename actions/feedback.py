"""action_feedback: the resident's 「解決しましたか？」 on the latest answer (the payload
`/feedback{"helpful": true|false}`, bot/payloads.py).

The rating goes onto that answer's AnswerEvent (bot/analytics.py). 「いいえ」 is a question the bot
did not answer: it is recorded for the regional issues, and the resident gets the entries nearest
to their question after the one that did not help, the chance to ask in other words, and a person.
A rating with no recent answer to rate gets a polite word and changes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import ConciergeAction, resident_language
from actions.dialogue import record_unresolved
from actions.runtime import get_concierge
from bot.analytics import AnswerLogUnavailable
from bot.answering.composer import HANDOFF_BUTTON
from bot.answering.concierge import Concierge
from bot.knowledge import WARDS
from bot.payloads import OFFERS
from bot.wording import say

log = logging.getLogger(__name__)
CHOICE_LABEL_CHARS = 20  # a quick reply's label on LINE


def helpful_of(tracker: Tracker) -> bool | None:
    """The rating the payload carries (the channel let only a JSON boolean through)."""
    for entity in tracker.latest_message.get("entities", []):
        if entity.get("entity") == "helpful" and isinstance(entity.get("value"), bool):
            return entity["value"]
    return None


class ActionFeedback(ConciergeAction):
    def name(self) -> str:
        return "action_feedback"

    def respond(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        return rate(get_concierge(), dispatcher, tracker)


def rate(concierge: Concierge, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
    helpful = helpful_of(tracker)
    if helpful is None:
        dispatcher.utter_message(response="utter_feedback_nothing")
        return []
    question = tracker.get_slot("answered_question")
    try:
        event = concierge.answers.rate(tracker.sender_id, helpful)
        rated, entry = event is not None, event.entry if event else None
    except AnswerLogUnavailable:  # the rating is lost, the resident is still helped
        rated, entry = bool(question), tracker.get_slot("answered_entry")
    if not rated:
        dispatcher.utter_message(response="utter_feedback_nothing")
        return []
    if helpful:
        dispatcher.utter_message(response="utter_feedback_thanks")
        return []
    ward = tracker.get_slot("ward")
    ward = ward if ward in WARDS else None
    choices: list[str] = []
    if question:
        record_unresolved(concierge, tracker, question, ward, 0.0)
        try:
            choices = concierge.alternatives(question, entry)
        except Exception:  # the index failing must not cost the resident the way to a person
            log.exception("could not look up other topics after a rating")
    lang = resident_language(tracker)
    rephrase = {"title": say("utter_feedback_rephrase_button", lang), "payload": OFFERS["rephrase"].payload()}
    buttons = [{"title": c[:CHOICE_LABEL_CHARS], "payload": c} for c in choices]
    if choices:
        dispatcher.utter_message(
            response="utter_feedback_alternatives",
            choices="\n".join(f"・{c}" for c in choices),
            buttons=[*buttons, rephrase, HANDOFF_BUTTON],
        )
    else:
        buttons = [rephrase, HANDOFF_BUTTON]
        dispatcher.utter_message(response="utter_feedback_no_alternatives", buttons=buttons)
    return [SlotSet("misses", int(tracker.get_slot("misses") or 0) + 1)]
