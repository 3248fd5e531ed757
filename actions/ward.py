"""action_set_ward: remember the resident's ward and answer the question they asked before."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import ConciergeAction
from actions.dialogue import respond
from actions.runtime import get_concierge


class ActionSetWard(ConciergeAction):
    def name(self) -> str:
        return "action_set_ward"

    def respond(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        return respond(get_concierge(), dispatcher, tracker)
