"""LINE channel: the Messaging API webhook at /line/callback (line-bot-sdk v3).

Every request's X-Line-Signature is verified with the channel secret first; a missing or forged
signature gets 400 and nothing is processed or stored. Text and postbacks go to Rasa with the
LINE user id as sender; replies use the reply token (text, quick replies, a Flex office card).
A validly signed request always gets 200: an error status would only make LINE deliver the events
again (and file a hand-off twice). A reply the LINE API does not take is logged, without the text.
"""

from __future__ import annotations

import requests
from flask import Blueprint, abort, current_app, request
from linebot.v3 import WebhookParser
from linebot.v3.exceptions import InvalidSignatureError
from linebot.v3.messaging import TextMessage
from linebot.v3.webhooks import (
    FollowEvent,
    MessageEvent,
    PostbackEvent,
    TextMessageContent,
    UnfollowEvent,
)

from bot.line_messaging import LineApiError, LineClient, LineConfig, to_line_messages
from bot.rasa_client import RasaClient
from bot.wording import language_of, say


def create_blueprint(config: LineConfig) -> Blueprint:
    bp = Blueprint("line", __name__, url_prefix="/line")
    parser = WebhookParser(config.channel_secret)
    line = LineClient(config)

    def rasa() -> RasaClient:
        config = current_app.config
        return RasaClient(config["RASA_URL"], timeout=config["REQUEST_TIMEOUT"], token=config["RASA_TOKEN"])

    def answer(user_id: str, text: str) -> list:
        try:
            return to_line_messages(rasa().send(user_id, text, "line"))
        except requests.RequestException:
            return [TextMessage(text=say("utter_bot_down", language_of(text)))]

    @bp.post("/callback")
    def callback():
        signature = request.headers.get("X-Line-Signature", "")
        body = request.get_data(as_text=True)
        try:
            events = parser.parse(body, signature)
        except InvalidSignatureError:
            abort(400)
        except (ValueError, TypeError, KeyError, AttributeError):  # signed, but not LINE's shape
            current_app.logger.warning("LINE webhook body is not a LINE event list")
            abort(400)
        for event in events:
            user_id = getattr(event.source, "user_id", None)
            if not user_id:
                continue
            if isinstance(event, UnfollowEvent):  # the resident blocked the bot: forget the conversation
                try:
                    rasa().append_events(user_id, [{"event": "restart"}])
                except requests.RequestException:
                    current_app.logger.warning("could not reset the LINE conversation")
                continue
            limiter = current_app.extensions["rate_limiter"]
            if not limiter.allow("line", user_id):
                seconds = limiter.retry_after("line", user_id)
                messages = [TextMessage(text=say("utter_rate_limited", seconds=seconds))]
            elif isinstance(event, FollowEvent):
                messages = answer(user_id, "/greet")
            elif isinstance(event, MessageEvent) and isinstance(event.message, TextMessageContent):
                messages = answer(user_id, event.message.text)
            elif isinstance(event, PostbackEvent):
                messages = answer(user_id, event.postback.data)
            elif isinstance(event, MessageEvent):
                messages = [TextMessage(text=say("utter_not_text"))]
            else:
                continue
            if messages and getattr(event, "reply_token", None):
                try:
                    line.reply(event.reply_token, messages)
                except LineApiError as err:
                    current_app.logger.warning("LINE reply not delivered (%s)", err)
        return "OK"

    return bp
