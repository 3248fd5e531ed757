"""What the actions share: reading the resident's ward and sending an Answer."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.answer import Answer
from bot.concierge import Concierge
from bot.knowledge import WARDS


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


def send(dispatcher: CollectingDispatcher, answer: Answer) -> None:
    dispatcher.utter_message(text=answer.text, buttons=answer.buttons or None, json_message=answer.payload())


def intent_of(tracker: Tracker) -> str | None:
    intent: dict[str, Any] = tracker.latest_message.get("intent") or {}
    return intent.get("name")
