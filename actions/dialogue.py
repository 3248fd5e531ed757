"""The turns action_answer and action_set_ward share, and the one router that picks between them.

Rasa's rules send ask_*/out_of_scope/nlu_fallback to action_answer and inform_ward to
action_set_ward. What a rule cannot know needs the knowledge: whether 「幸区」 says more than a
place, whether a message names a sensitive topic. `route` decides that, once, for both actions;
the steps below only carry the decision out. Both actions import this module (never each other).
"""

from __future__ import annotations

import logging
import re
from enum import Enum

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import (
    hand_off,
    intent_of,
    offer_handoff,
    record_outcome,
    resident_language,
    resident_ward,
    send,
    sensitive_answer,
)
from bot.answering.composer import OTHER_WARD_PAYLOAD, Answer, ward_buttons
from bot.answering.concierge import Concierge
from bot.japanese import nfkc, to_katakana
from bot.wording import say

log = logging.getLogger(__name__)


# Intents learnt from a few dozen examples each (issues 18 and 19). DIET puts some questions of other
# matters under them: 「健康保険をやめたい」 under unsubscribe_notices, 「週末は雨が降りますか」 under
# ask_special_opening, a long message full of masked numbers under my_bookings. A typed message under
# one of them must carry each of its cue groups (any word of a group; plain alternations over the
# NFKC, katakana form of the text: linear), else it is answered as a question. A test checks that
# every NLU example of these intents carries its cues. Payloads (「/my_bookings」) were screened.
_BOOKING = "予約 よやく book reserv appointment"
_NOTICES = "知らせ おしらせ 配信 はいしん 通知 購読 notice subscri"
_DAYS_OFF = "土曜 どよう 休日 休み 臨時 開庁 かいちょう 日曜 祝日 週末 saturday sunday weekend holiday"
_CUE_GROUPS: dict[str, tuple[str, ...]] = {  # groups of space-separated words, all groups needed
    "request_booking": (_BOOKING,),
    "my_bookings": (_BOOKING,),
    "cancel_booking": (f"{_BOOKING} きゃんせる cancel 取り?消",),
    "change_booking": (f"{_BOOKING} 変更 変え ずら change",),
    "subscribe_notices": (f"{_NOTICES} 登録 とうろく 受信 情報 alert news",),
    "unsubscribe_notices": (f"{_NOTICES} 停止 ていし 解除 登録 stop",),
    "my_subscriptions": (f"{_NOTICES} 登録 とうろく 受け?取",),
    "ask_congestion": ("混 こん 空い 空き すい すき 待 まち 並 wait busy crowd queue",),
    "ask_special_opening": (
        _DAYS_OFF,
        "区役所 窓口 開庁 かいちょう 開い 開く やって 手続 課 臨時 休日 できる 受け?取 行け office open",
    ),
    "ask_shelter": ("避難 ひなん 逃げ にげ shelter evacuat",),
}
CUES: dict[str, tuple[re.Pattern[str], ...]] = {
    intent: tuple(re.compile(to_katakana("|".join(group.split()))) for group in groups)
    for intent, groups in _CUE_GROUPS.items()
}
BOOKING_INTENTS = frozenset({"request_booking", "my_bookings", "cancel_booking", "change_booking"})


def lacks_cue(tracker: Tracker) -> bool:
    """The latest message was typed, its intent is one of CUES, and it misses a cue group."""
    text = tracker.latest_message.get("text") or ""
    cues = CUES.get(intent_of(tracker) or "")
    if cues is None or text.lstrip().startswith("/"):
        return False
    norm = to_katakana(nfkc(text))
    return not all(cue.search(norm) for cue in cues)


def answer_instead(concierge: Concierge, tracker: Tracker) -> bool:
    """Whether a typed message under a notice, board or booking intent belongs to the answering
    path after all (`respond`): it misses its cues; it names a sensitive topic (the specialist
    counter comes first, whatever the intent); or it asks to book a matter another body handles
    that the knowledge names (「図書館の本を予約したい」, 「火葬場を予約したい」: not a ward-office
    consultation — the referral answers it)."""
    if lacks_cue(tracker):
        return True
    text = tracker.latest_message.get("text") or ""
    if intent_of(tracker) not in CUES or text.lstrip().startswith("/"):
        return False
    if concierge.sensitive_topic(text):
        return True
    return intent_of(tracker) in BOOKING_INTENTS and concierge.names_referral(text)


class Step(Enum):
    EMPTY = "empty"  # nothing was typed
    WHICH_WARD = "which_ward"  # 「別の区」 tapped: ask which one
    WARD_UNKNOWN = "ward_unknown"  # inform_ward, but no ward could be read
    WARD_GIVEN = "ward_given"  # only a place: finish what was waiting for the ward
    SENSITIVE = "sensitive"  # a topic with a specialist counter, whatever the intent
    OUT_OF_SCOPE = "out_of_scope"
    QUESTION = "question"  # answer from the knowledge index


def route(concierge: Concierge, tracker: Tracker) -> tuple[Step, str | None]:
    """The step for the latest message and the ward it goes with. The intent comes from Rasa; the
    checks here are the ones that need the knowledge (places, sensitive keywords)."""
    text = tracker.latest_message.get("text") or ""
    intent = intent_of(tracker)
    if intent == "inform_ward":
        if text.strip() == OTHER_WARD_PAYLOAD:
            return Step.WHICH_WARD, None
        ward = resident_ward(concierge, tracker)
        if ward is None:
            return Step.WARD_UNKNOWN, None
        if not concierge.says_more_than_place(text):
            return Step.WARD_GIVEN, ward
        # 「多摩区に住んでいます。空き家が…」: a question too, answered like any other
    elif not text.strip():
        return Step.EMPTY, None
    else:
        place = concierge.find_place(text)
        if place and not concierge.says_more_than_place(text):  # 「幸区」 alone, whatever NLU thought
            return Step.WARD_GIVEN, place.ward
    ward = resident_ward(concierge, tracker)
    if concierge.sensitive_topic(text):
        return Step.SENSITIVE, ward
    if intent == "out_of_scope":
        return Step.OUT_OF_SCOPE, ward
    return Step.QUESTION, ward


def respond(concierge: Concierge, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
    """Carry out the routed step."""
    step, ward = route(concierge, tracker)
    text = tracker.latest_message.get("text") or ""
    if step is Step.EMPTY:
        dispatcher.utter_message(response="utter_empty")
        return []
    if step is Step.WHICH_WARD:
        # 「別の区」 after an answer: which one? The answer is given again for the ward picked.
        dispatcher.utter_message(response="utter_which_ward", buttons=ward_buttons())
        return []
    if step is Step.WARD_UNKNOWN:
        dispatcher.utter_message(response="utter_ward_unknown", buttons=ward_buttons())
        return []
    if step is Step.WARD_GIVEN:
        assert ward is not None
        return set_ward(concierge, dispatcher, tracker, ward)
    if step is Step.SENSITIVE:
        topic = concierge.sensitive_topic(text)
        assert topic is not None
        answer = sensitive_answer(topic, resident_language(tracker))
        send(dispatcher, answer)
        record_outcome(concierge, tracker, ward, "sensitive", f"sensitive:{topic.id}", topic.label)
        return [SlotSet("ward", ward), SlotSet("last_counter", answer.counter_id)]
    if step is Step.OUT_OF_SCOPE:
        dispatcher.utter_message(response="utter_out_of_scope")
        record_outcome(concierge, tracker, ward, "out_of_scope")
        return []
    return answer_question(concierge, dispatcher, tracker, text, ward)


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
        answer = concierge.answer(pending, ward)
        events = answered(concierge, dispatcher, tracker, pending, ward, answer)
        return [SlotSet("ward", ward), SlotSet("last_question", None), *events]
    office = concierge.kb.ward_office(ward)
    lang = resident_language(tracker)
    if office:
        place = say("utter_ward_office_at", lang, office=office.name, address=office.address)
    else:
        place = say("utter_ward_office_of", lang, ward=ward)
    dispatcher.utter_message(response="utter_ward_noted", ward=ward, place=place)
    return [SlotSet("ward", ward)]


def answer_question(
    concierge: Concierge, dispatcher: CollectingDispatcher, tracker: Tracker, text: str, ward: str | None
) -> list[EventType]:
    """An answer from the index; a miss is recorded, and repeated misses offer a person."""
    answer = concierge.answer(text, ward, intent_of(tracker))
    if not answer.unresolved:
        return [
            SlotSet("ward", ward),
            SlotSet("last_question", text),
            SlotSet("last_counter", answer.counter_id),
            SlotSet("misses", 0),
            *answered(concierge, dispatcher, tracker, text, ward, answer),
        ]
    record_unresolved(concierge, tracker, text, ward, answer.confidence)
    misses = int(tracker.get_slot("misses") or 0) + 1
    if misses >= concierge.settings.misses_before_handoff:
        answer = offer_handoff(answer, answer.lang)
    send(dispatcher, answer)
    record_outcome(concierge, tracker, ward, "not_sure")
    return [SlotSet("ward", ward), SlotSet("last_question", None), SlotSet("misses", misses)]


def answered(
    concierge: Concierge,
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    question: str,
    ward: str | None,
    answer: Answer,
) -> list[EventType]:
    """Send an answer and record what came of it. An answer from an entry asks 「解決しましたか？」,
    and the dialogue remembers the question and the entry that rating is about."""
    if answer.unresolved:  # the pending question of set_ward may find nothing either
        send(dispatcher, answer)
        record_outcome(concierge, tracker, ward, "not_sure")
        return []
    send(dispatcher, answer, feedback=answer.entry is not None)
    topic = concierge.title_of(answer.entry) if answer.entry else None
    record_outcome(concierge, tracker, answer.ward or ward, "answered", answer.entry, topic)
    if answer.entry is None:  # e.g. the offices' hours: nothing to rate
        return []
    return [SlotSet("answered_question", question), SlotSet("answered_entry", answer.entry)]


def record_unresolved(
    concierge: Concierge, tracker: Tracker, text: str, ward: str | None, score: float
) -> None:
    """Log the question as a regional issue; a database failure must not silence the bot."""
    try:
        concierge.issues.record(
            text, ward, score, tracker.get_latest_input_channel(), topic=concierge.topic_of(text)
        )
    except Exception:
        log.exception("could not record an unresolved question")  # no sender id in logs
