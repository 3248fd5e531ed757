"""action_answer: answer a question from the knowledge index (or hand the resident to care)."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.board import remind_of_disaster
from actions.common import ConciergeAction
from actions.dialogue import respond
from actions.runtime import get_concierge


class ActionAnswer(ConciergeAction):
    def name(self) -> str:
        return "action_answer"

    def respond(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        remind_of_disaster(dispatcher, tracker)  # notices: board answers (issue 18)
        return respond(get_concierge(), dispatcher, tracker)
