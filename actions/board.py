"""action_board_answer and action_greet: answers from the staff's board and the shelters, and the
greeting that leads with the alert while disaster mode is on. The answers are built by
bot/answering/board_answers.py; these classes find the ward, the language and the clock."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.exc import SQLAlchemyError

from actions.common import ConciergeAction, intent_of, resident_language, resident_ward
from actions.dialogue import answer_instead, respond
from actions.runtime import disaster_alerts, get_concierge, settings
from bot.answering import board_answers
from bot.answering.board_answers import Reply
from bot.answering.composer import OTHER_WARD_PAYLOAD
from bot.answering.concierge import Concierge
from bot.business_hours import JST

log = logging.getLogger(__name__)


def now() -> datetime:
    """The actions' clock (a test may replace it)."""
    return datetime.now(JST)


def utter(dispatcher: CollectingDispatcher, reply: Reply) -> None:
    if reply.response:
        dispatcher.utter_message(response=reply.response, buttons=reply.buttons or None, **reply.values)
    else:
        dispatcher.utter_message(text=reply.text, buttons=reply.buttons or None)


def _entity(tracker: Tracker, name: str) -> str | None:
    for entity in tracker.latest_message.get("entities", []):
        if entity.get("entity") == name and isinstance(entity.get("value"), str):
            return entity["value"]
    return None


class ActionBoardAnswer(ConciergeAction):
    """ask_congestion, ask_special_opening and ask_shelter, routed by the intent."""

    def name(self) -> str:
        return "action_board_answer"

    def respond(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        return board_answer(dispatcher, tracker)


BOARD_INTENTS = ("ask_congestion", "ask_special_opening", "ask_shelter")


def board_answer(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
    """A board question; or, right after one (the rule), a ward typed alone, which answers that
    question for the ward. Anything more than a ward is handed to the usual ward step."""
    concierge = get_concierge()
    if answer_instead(concierge, tracker):  # not about the board after all: answered as a question
        return [SlotSet("board_question", None), *respond(concierge, dispatcher, tracker)]
    intent, counter = intent_of(tracker), _entity(tracker, "counter")
    if intent not in BOARD_INTENTS:
        pending = _pending(concierge, tracker)
        if pending is None:
            return [SlotSet("board_question", None), *respond(concierge, dispatcher, tracker)]
        intent, counter = pending
    kb, database_url = concierge.kb, settings().database_url
    ward, lang = resident_ward(concierge, tracker), resident_language(tracker)
    text = tracker.latest_message.get("text") or ""
    try:
        if intent == "ask_shelter":
            reply = board_answers.shelters_reply(kb, ward, lang)
        elif intent == "ask_special_opening":
            reply = board_answers.openings_reply(kb, database_url, ward, lang, now())
        else:
            reply = board_answers.congestion_reply(kb, database_url, ward, text, lang, now(), counter)
            found = kb.counters.get(counter or "") or board_answers.find_counter(kb, text)
            counter = found.id if found else None
    except SQLAlchemyError:  # the board is away: say so, with the hours that do not change
        log.exception("could not read the board")
        office = kb.ward_office(ward) if ward else None
        hours = "／".join(office.hours) if office else ""
        reply = Reply("utter_board_unavailable", {"hours": hours})
    utter(dispatcher, reply)
    question = f"{intent} {counter}" if counter else intent
    return [SlotSet("board_question", question), *([SlotSet("ward", ward)] if ward else [])]


def _pending(concierge: Concierge, tracker: Tracker) -> tuple[str, str | None] | None:
    """The board question a ward typed alone answers (the `board_question` slot), if this is one."""
    intent, _, counter = (tracker.get_slot("board_question") or "").partition(" ")
    text = tracker.latest_message.get("text") or ""
    if (
        intent_of(tracker) != "inform_ward"
        or intent not in BOARD_INTENTS
        or tracker.get_slot("handoff_pending")
    ):
        return None
    if text.strip() == OTHER_WARD_PAYLOAD or concierge.says_more_than_place(text):
        return None
    if resident_ward(concierge, tracker) is None:
        return None
    return intent, counter or None


def remind_of_disaster(dispatcher: CollectingDispatcher, tracker: Tracker) -> None:
    """While disaster mode covers the resident's ward (or the whole city), one line with the staff's
    message before the answer; the answer itself comes as usual."""
    try:
        ward = resident_ward(get_concierge(), tracker)
        alert = next((a for a in disaster_alerts() if a.covers(ward)), None)
    except SQLAlchemyError:  # the answer matters more than the reminder
        log.warning("could not read disaster mode before an answer")
        return
    if alert is not None:
        dispatcher.utter_message(response="utter_disaster_reminder", message=alert.message)


class ActionGreet(ConciergeAction):
    """The greeting: utter_greet, or in disaster mode the alert first with a button to shelters."""

    def name(self) -> str:
        return "action_greet"

    def respond(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        return greet(dispatcher, tracker)


def greet(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
    ward = tracker.get_slot("ward")
    try:
        reply = board_answers.disaster_greeting(
            settings().database_url, ward if isinstance(ward, str) else None, resident_language(tracker)
        )
    except SQLAlchemyError:  # a greeting never fails for the board
        log.exception("could not read disaster mode for the greeting")
        reply = None
    if reply is None:
        dispatcher.utter_message(response="utter_greet")
    else:
        utter(dispatcher, reply)
    return []
