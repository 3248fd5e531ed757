"""action_set_ward: remember the resident's ward and answer the question they asked before."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import ConciergeAction, hand_off, resident_ward, send
from actions.runtime import get_concierge
from bot.answer import OTHER_WARD_PAYLOAD, ward_buttons
from bot.concierge import Concierge


def set_ward(
    concierge: Concierge, dispatcher: CollectingDispatcher, tracker: Tracker, ward: str
) -> list[EventType]:
    """The resident told us only where they live: finish what was waiting for the ward."""
    if tracker.get_slot("handoff_pending"):
        return [
            SlotSet("ward", ward),
            *hand_off(concierge, dispatcher, tracker, ward, tracker.get_slot("handoff_pending")),
        ]
    pending = tracker.get_slot("last_question")
    if pending:
        send(dispatcher, concierge.answer(pending, ward))
        return [SlotSet("ward", ward), SlotSet("last_question", None)]
    office = concierge.kb.ward_office(ward)
    place = f"{office.name}（{office.address}）" if office else f"{ward}の区役所"
    dispatcher.utter_message(
        text=f"{ward}ですね。{place}をご案内します。ご用件（例:「住民票がほしい」）をどうぞ。"
    )
    return [SlotSet("ward", ward)]


class ActionSetWard(ConciergeAction):
    def name(self) -> str:
        return "action_set_ward"

    def respond(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        concierge = get_concierge()
        if (tracker.latest_message.get("text") or "").strip() == OTHER_WARD_PAYLOAD:
            # 「別の区」 after an answer: which one? The answer is given again for the ward picked.
            dispatcher.utter_message(text="どの区の窓口をご案内しましょうか。", buttons=ward_buttons())
            return []
        ward = resident_ward(concierge, tracker)
        if ward is None:
            dispatcher.utter_message(
                text="すみません、お住まいの区がわかりませんでした。次から選んでください。",
                buttons=ward_buttons(),
            )
            return []
        text = tracker.latest_message.get("text") or ""
        if concierge.says_more_than_place(text):  # 「多摩区に住んでいます。空き家が…」: answer it too
            from actions.answer import ActionAnswer

            return [SlotSet("ward", ward), *ActionAnswer().respond(dispatcher, tracker, domain)]
        return set_ward(concierge, dispatcher, tracker, ward)
