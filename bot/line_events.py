"""LINE webhook events, handled by the task worker (bot/tasks.py), off the webhook's request path.

Each event is taken once: its webhookEventId goes into the `line_events` table (primary key) before
anything else, so LINE's redelivery of an event — or two workers given the same one — answers once
and files one hand-off at most. A text or postback goes to Rasa with the LINE user id as sender; the
answer goes back with the reply token, and when LINE refuses it (tokens are single use and expire
after about a minute, or LINE is down) it is pushed instead, with retries and back-off. An unfollow,
or the message 「会話を削除」 / "delete conversation", erases the conversation (bot/retention.py).
Nothing logged here holds the resident's text or user id.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import requests
from linebot.v3.messaging import Message, TextMessage
from linebot.v3.webhooks import (
    Event,
    FollowEvent,
    MessageEvent,
    PostbackEvent,
    TextMessageContent,
    UnfollowEvent,
)
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from bot.line_messaging import LineApiError, LineClient, LineConfig, to_line_messages
from bot.rasa_client import RasaClient
from bot.rate_limit import SenderRateLimiter
from bot.retention import RetentionError, erase_conversation, is_erase_request
from bot.settings import Settings
from bot.storage.db import session_scope
from bot.storage.models import HandledLineEvent, utcnow
from bot.wording import language_of, say

log = logging.getLogger(__name__)

# LINE redelivers for a while after a failed delivery; ids older than this are forgotten.
REMEMBER_EVENTS = timedelta(days=3)
class LineEvents:
    """Handles one webhook event at a time; several worker threads may share one instance."""

    def __init__(
        self, settings: Settings, push_later: Callable[[str, list[dict[str, Any]]], object] | None = None
    ) -> None:
        """`push_later(user_id, messages)` queues a push (bot/tasks.py); without it, one try now."""
        config = LineConfig.from_settings(settings)
        if config is None:
            raise RuntimeError("LINE events need LINE_CHANNEL_SECRET and LINE_CHANNEL_ACCESS_TOKEN")
        self.settings = settings
        self.push_later = push_later
        self.line = LineClient(config)
        self.limiter = SenderRateLimiter(settings.rate_limit, settings.rate_limit_storage)
        # one Rasa client (its HTTP session and kept-alive connection) per worker thread, not per
        # event: requests' Session is not documented as safe to share between threads
        self._local = threading.local()

    def first_delivery(self, event_id: str | None) -> bool:
        """Claim the event id; False when it was claimed before (here or by another worker)."""
        if not event_id:
            return True  # nothing to de-duplicate on (LINE always sends one)
        try:
            with session_scope(self.settings.database_url) as session:
                session.add(HandledLineEvent(webhook_event_id=event_id[:64]))
        except IntegrityError:
            return False
        with session_scope(self.settings.database_url) as session:
            cutoff = utcnow() - REMEMBER_EVENTS
            session.execute(delete(HandledLineEvent).where(HandledLineEvent.handled_at < cutoff))
        return True

    def handle(self, raw: dict[str, Any]) -> None:
        """One event as LINE sent it (a dict of the webhook body's `events`)."""
        event = Event.from_dict(raw)
        user_id = getattr(getattr(event, "source", None), "user_id", None)
        if not user_id:
            return
        if not self.first_delivery(getattr(event, "webhook_event_id", None)):
            log.info("LINE event delivered again; already handled, skipped")
            return
        if isinstance(event, UnfollowEvent):  # the resident blocked the bot: forget the conversation
            self._erase(user_id)
            return
        messages = self.answer(event, user_id)
        if messages:
            self.deliver(user_id, getattr(event, "reply_token", None), messages)

    def answer(self, event: Event, user_id: str) -> list:
        """The LINE messages that answer the event (none for events the bot does not answer)."""
        text = event.message.text if isinstance(event, MessageEvent) and isinstance(
            event.message, TextMessageContent) else None  # fmt: skip
        if text is not None and is_erase_request(text):  # before the limit: a resident may always leave
            return [TextMessage(text=say(self._erase(user_id), language_of(text)))]
        if not self.limiter.allow("line", user_id):
            seconds = self.limiter.retry_after("line", user_id)
            return [TextMessage(text=say("utter_rate_limited", seconds=seconds))]
        if isinstance(event, FollowEvent):
            return self._ask(user_id, "/greet")
        if text is not None:
            return self._ask(user_id, text)
        if isinstance(event, PostbackEvent):
            return self._ask(user_id, event.postback.data)
        if isinstance(event, MessageEvent):
            return [TextMessage(text=say("utter_not_text"))]
        return []

    def rasa(self) -> RasaClient:
        """This thread's Rasa client, made on first use."""
        if getattr(self._local, "rasa", None) is None:
            self._local.rasa = RasaClient.from_settings(self.settings)
        return self._local.rasa

    def _ask(self, user_id: str, text: str) -> list:
        rasa = self.rasa()
        try:
            return to_line_messages(rasa.send(user_id, text, "line"))
        except requests.RequestException as err:
            log.warning("Rasa did not answer a LINE message (%s)", type(err).__name__)
            return [TextMessage(text=say("utter_bot_down", language_of(text)))]

    def _erase(self, user_id: str) -> str:
        """Erases the conversation; the name of the response that tells the resident how it went."""
        try:
            counts = erase_conversation(self.settings, user_id)
        except RetentionError as err:  # the resident is told; the failure is logged without the id
            log.warning("could not erase a LINE conversation (%s)", type(err).__name__)
            return "utter_erase_failed"
        log.info("erased a LINE conversation: %s", counts)
        kept = counts["open_tickets_kept"]
        return "utter_conversation_erased_handoff_kept" if kept else "utter_conversation_erased"

    def deliver(self, user_id: str, reply_token: str | None, messages: list) -> None:
        """Reply; when LINE refuses the reply (or there is no token), push on the queue."""
        if reply_token:
            try:
                self.line.reply(reply_token, messages)
                return
            except LineApiError as err:
                log.warning("LINE reply not delivered (%s); pushing instead", err)
        payload = [m.to_dict() for m in messages]
        if self.push_later is None:
            self.push(user_id, payload, last_try=True)
        else:
            self.push_later(user_id, payload)

    def push(self, user_id: str, messages: list[dict[str, Any]], last_try: bool) -> None:
        """Push the messages; raises LineApiError for the queue to try again, unless `last_try`."""
        try:
            self.line.push(user_id, [Message.from_dict(m) for m in messages])
        except LineApiError as err:
            if not last_try:
                log.warning("LINE push not delivered (%s); trying again later", err)
                raise
            log.error("LINE push not delivered (%s); giving up", err)
        else:
            log.info("LINE answer pushed after the reply failed")
