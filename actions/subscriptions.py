"""action_notice_subscription: a LINE resident's notice subscriptions, in the conversation (issue 18).

Typed (「中原区のお知らせを受け取る」, 「お知らせ停止」, 「登録内容を確認」) or tapped (the payloads
/subscribe, /unsubscribe and /subscriptions of bot/payloads.py), it subscribes, stops or shows, and
offers the next steps as quick replies built from those same payloads. Only on LINE: the LINE user
id (the sender id there) is the address a notice is multicast to; anywhere else the resident is told
where notices are. The database away: a polite "try again later" and nothing changed (each change
is one transaction in bot/notices/subscriptions.py). No resident id is logged.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.exc import SQLAlchemyError

from actions import runtime
from actions.common import ConciergeAction, intent_of, resident_language
from actions.dialogue import answer_instead
from actions.dialogue import respond as dialogue_respond
from bot.japanese import nfkc
from bot.knowledge import WARDS
from bot.notices import subscriptions
from bot.notices.subscriptions import Subscribed
from bot.notices.topics import TOPIC_IDS, topic_id, topic_label
from bot.payloads import OFFERS
from bot.wording import say

log = logging.getLogger(__name__)

SUBSCRIBE = frozenset({"subscribe_notices", "subscribe"})
UNSUBSCRIBE = frozenset({"unsubscribe_notices", "unsubscribe"})
SHOW = frozenset({"my_subscriptions", "subscriptions"})
LINE_USER_ID = re.compile(r"U[0-9a-f]{32}")  # LINE's user id: "U" and 32 hex digits
LABEL_CHARS = 20  # a quick reply's label on LINE

# Words in a typed message that name a topic (the label's parts, and how residents say them).
TOPIC_WORDS: dict[str, tuple[str, ...]] = {
    "bousai": ("防災", "災害", "避難"),
    "kosodate": ("子育て", "子ども", "子供", "保育"),
    "madoguchi": ("窓口", "臨時開庁", "休日開庁", "開庁"),
    "fukushi": ("健康", "福祉", "介護"),
    "event": ("イベント", "催し"),
}


class ActionNoticeSubscription(ConciergeAction):
    def name(self) -> str:
        return "action_notice_subscription"

    def respond(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        if answer_instead(runtime.get_concierge(), tracker):  # not about notices after all
            return dialogue_respond(runtime.get_concierge(), dispatcher, tracker)
        return handle(runtime.settings().database_url, dispatcher, tracker)


def on_line(tracker: Tracker) -> bool:
    """The message came through LINE, so the sender id is a LINE user id a notice can go to."""
    return tracker.get_latest_input_channel() == "line" and bool(LINE_USER_ID.fullmatch(tracker.sender_id))


def handle(database_url: str, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
    if not on_line(tracker):
        dispatcher.utter_message(response="utter_notice_line_only")
        return []
    intent = intent_of(tracker)
    replies = Replies(dispatcher, tracker)
    try:
        if intent in UNSUBSCRIBE:
            return stop(database_url, replies, tracker)
        if intent in SHOW:
            return show(database_url, replies, tracker)
        return start(database_url, replies, tracker)
    except SQLAlchemyError as err:  # one transaction per change: nothing is stored half
        log.warning("notice subscriptions unavailable (%s)", type(err).__name__)
        dispatcher.utter_message(response="utter_notice_unavailable")
        return []


def named_topics(tracker: Tracker) -> list[str]:
    """Topics the message names: the payload's `topic`, else topic words in the typed text."""
    for entity in tracker.latest_message.get("entities", []):
        if entity.get("entity") == "topic" and isinstance(entity.get("value"), str):
            tid = topic_id(entity["value"])
            if tid:
                return [tid]
    text = nfkc(tracker.latest_message.get("text") or "")
    if text.startswith("/"):  # a payload without a topic names none
        return []
    return [tid for tid in TOPIC_IDS if any(word in text for word in TOPIC_WORDS[tid])]


def named_ward(tracker: Tracker) -> str | None:
    """The ward this message names (entity, town, station), not one remembered from before:
    subscribing to a remembered ward the resident did not name would be a guess."""
    for entity in tracker.latest_message.get("entities", []):
        if entity.get("entity") == "ward" and entity.get("value") in WARDS:
            return entity["value"]
    text = tracker.latest_message.get("text") or ""
    if text.startswith("/"):
        return None
    match = runtime.get_concierge().find_place(text)
    return match.ward if match else None


def start(database_url: str, replies: Replies, tracker: Tracker) -> list[EventType]:
    topics = named_topics(tracker)
    ward = named_ward(tracker)
    if ward is None:
        known = tracker.get_slot("ward")
        held = subscriptions.current(database_url, tracker.sender_id).ward
        first = known if known in WARDS else held
        replies.ask_ward(first, topics[0] if len(topics) == 1 else None)
        return []
    done = subscriptions.subscribe(database_url, tracker.sender_id, ward, topics or None)
    if topics:
        replies.say("utter_notice_subscribed_topic", done, [replies.see(), replies.stop()], topics)
    else:
        stop_some = [replies.stop_topic(t) for t in done.topics]
        replies.say("utter_notice_subscribed_all", done, [*stop_some, replies.see(), replies.stop()])
    return [SlotSet("ward", ward)]


def show(database_url: str, replies: Replies, tracker: Tracker) -> list[EventType]:
    now = subscriptions.current(database_url, tracker.sender_id)
    if now.ward is None or not now.topics:
        known = tracker.get_slot("ward")
        replies.ward_buttons("utter_notice_subscriptions_none", known if known in WARDS else None, None)
        return []
    change = [replies.stop_topic(t) if t in now.topics else replies.add_topic(now.ward, t) for t in TOPIC_IDS]
    replies.say("utter_notice_subscriptions", now, [*change, replies.stop()])
    return []


def stop(database_url: str, replies: Replies, tracker: Tracker) -> list[EventType]:
    topics = named_topics(tracker)
    before = subscriptions.current(database_url, tracker.sender_id)
    if before.ward is None or not before.topics:
        replies.plain("utter_notice_nothing_to_stop")
        return []
    if topics and not set(topics) & set(before.topics):
        replies.say("utter_notice_topic_not_subscribed", before, [replies.see(), replies.stop()], topics)
        return []
    after = subscriptions.unsubscribe(database_url, tracker.sender_id, topics or None)
    if after.topics:
        stopped = [t for t in topics if t in before.topics]
        replies.say("utter_notice_unsubscribed_topic", after, [replies.see(), replies.stop()], stopped)
    else:  # all of them, or the last one
        replies.plain("utter_notice_unsubscribed_all")
    return []


class Replies:
    """The messages and quick replies of this turn, in the resident's language."""

    def __init__(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> None:
        self.dispatcher = dispatcher
        self.lang = resident_language(tracker)

    def labels(self, topics: list[str] | tuple[str, ...]) -> str:
        return say("utter_phrase_list_sep", self.lang).join(topic_label(t) for t in topics)

    def say(
        self, response: str, now: Subscribed, buttons: list[dict], topics: list[str] | None = None
    ) -> None:
        self.dispatcher.utter_message(
            response=response,
            buttons=buttons,
            ward=now.ward,
            topics=self.labels(now.topics),
            topic=self.labels(topics or []),
        )

    def plain(self, response: str) -> None:
        self.dispatcher.utter_message(response=response)

    def button(self, title: str, payload: str) -> dict[str, str]:
        return {"title": title[:LABEL_CHARS], "payload": payload}

    def see(self) -> dict[str, str]:
        return self.button(say("utter_notice_button_see", self.lang), OFFERS["subscriptions"].payload())

    def stop(self) -> dict[str, str]:
        return self.button(say("utter_notice_button_stop", self.lang), OFFERS["unsubscribe"].payload())

    def stop_topic(self, tid: str) -> dict[str, str]:
        title = say("utter_notice_button_stop_topic", self.lang, topic=topic_label(tid))
        return self.button(title, OFFERS["unsubscribe"].payload(topic=tid))

    def add_topic(self, ward: str, tid: str) -> dict[str, str]:
        title = say("utter_notice_button_add_topic", self.lang, topic=topic_label(tid))
        return self.button(title, OFFERS["subscribe"].payload(ward=ward, topic=tid))

    def ask_ward(self, first: str | None, topic: str | None) -> None:
        self.ward_buttons("utter_notice_which_ward", first, topic)

    def ward_buttons(self, response: str, first: str | None, topic: str | None) -> None:
        """The seven wards as /subscribe buttons, a ward the bot knows first."""
        wards = [first, *(w for w in WARDS if w != first)] if first in WARDS else list(WARDS)
        extra = {"topic": topic} if topic else {}
        buttons = [self.button(w, OFFERS["subscribe"].payload(ward=w, **extra)) for w in wards]
        self.dispatcher.utter_message(response=response, buttons=buttons)
