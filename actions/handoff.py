"""action_handoff: the resident asked for a person."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import resident_ward, send
from bot.answer import Answer, ward_buttons
from bot.concierge import get_concierge


class ActionHandoff(Action):
    def name(self) -> str:
        return "action_handoff"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        concierge = get_concierge()
        ward = resident_ward(concierge, tracker)
        office = concierge.kb.ward_office(ward) if ward else None
        if office:
            text = (
                f"職員がご相談を承ります。{office.name}（{office.address}）の窓口へお越しください。\n"
                "受付時間: " + "／".join(office.hours)
            )
            answer = Answer(text=text, sources=[office.source], office=office.name, ward=ward, handoff=True)
        else:
            answer = Answer(
                text="職員におつなぎします。お住まいの区を教えてください。",
                buttons=ward_buttons(),
                handoff=True,
            )
        send(dispatcher, answer)
        return []
