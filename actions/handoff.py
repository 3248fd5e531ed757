"""action_handoff: the resident asked for a person: open a ticket and pause the bot."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import ConciergeAction, ask_ward_for_handoff, hand_off, resident_ward
from actions.runtime import get_concierge


class ActionHandoff(ConciergeAction):
    def name(self) -> str:
        return "action_handoff"

    def respond(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        concierge = get_concierge()
        ward = resident_ward(concierge, tracker)
        if ward is None:
            return ask_ward_for_handoff(dispatcher, "requested")
        return hand_off(concierge, dispatcher, tracker, ward, "requested")
