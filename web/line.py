"""LINE channel: the Messaging API webhook at /line/callback (line-bot-sdk v3).

Every request's X-Line-Signature is verified with the channel secret first; a missing or forged
signature gets 400 and nothing is queued. A signed request's events go onto the task queue
(bot/tasks.py) and LINE gets 200 at once: the worker talks to Rasa and answers (reply, or push when
the reply fails; bot/line_events.py), so a slow bot or a LINE API that is down never makes the
webhook slow or fail. Only a queue that cannot take the events answers 503, so that LINE delivers
them again (the worker skips an event it has already handled).
"""

from __future__ import annotations

import json

from flask import Blueprint, abort, current_app, request
from linebot.v3 import WebhookParser
from linebot.v3.exceptions import InvalidSignatureError

from bot.line_messaging import LineConfig
from bot.tasks import TaskQueue


def create_blueprint(config: LineConfig, queue: TaskQueue) -> Blueprint:
    bp = Blueprint("line", __name__, url_prefix="/line")
    parser = WebhookParser(config.channel_secret)

    @bp.post("/callback")
    def callback():
        signature = request.headers.get("X-Line-Signature", "")
        body = request.get_data(as_text=True)
        try:
            events = parser.parse(body, signature)
            raw_events = json.loads(body)["events"]
        except InvalidSignatureError:
            abort(400)
        except (ValueError, TypeError, KeyError, AttributeError):  # signed, but not LINE's shape
            current_app.logger.warning("LINE webhook body is not a LINE event list")
            abort(400)
        wanted = [raw for raw, ev in zip(raw_events, events, strict=True) if _from_a_user(ev)]
        try:
            for raw in wanted:
                queue.line_event(raw)
        except Exception as err:  # queue store down or locked: let LINE deliver again
            current_app.logger.error("LINE events not queued (%s)", type(err).__name__)
            abort(503)
        return "OK"

    return bp


def _from_a_user(event: object) -> bool:
    """Events the bot answers come from a user (not a group or room)."""
    return bool(getattr(getattr(event, "source", None), "user_id", None))
