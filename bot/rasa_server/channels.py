"""The residents' REST channel of the Rasa server, with the door duties a city needs.

Runs inside the Rasa server (Rasa's environment). Compared with Rasa's RestInput it:
- masks personal data before Rasa sees the text, so trackers and logs never hold it (in worker
  threads: masking a long message is CPU work that would stop the event loop for everyone);
- lets through only the payloads the bot offers, with valid entities (bot/payloads.py); any other
  message starting with "/" is text, neutralised so that Rasa's NLU classifies it;
- refuses over-long messages with a polite reply (nothing of them is processed or stored);
- lets a resident leave a staff hand-off with 「ボットに戻る」 (the conversation is paused);
- apologises instead of answering nothing when an action failed (e.g. action server down);
- serves staff replies: POST /webhooks/rest/messages {sender, after (Unix time)} — a body, not a
  query string, so the sender id never stands in a URL or an access log;
- wants the Rasa token like Rasa's HTTP API (`?token=` or `Authorization: Bearer`): the web app
  and LINE webhook are its only callers, and without it anyone who reaches the port could write
  as any resident, file tickets or read staff replies (401 otherwise);
- passes on one piece of metadata, the widget's hashed client address (`address`), which the
  hand-off action counts (bot/handoff_limits.py).
Registered in credentials.yml under the name `rest`, so the URL is Rasa's usual one.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.events import ActionExecuted, ConversationResumed
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import payloads
from bot.japanese import nfkc
from bot.privacy import mask
from bot.wording import language_of, say

log = logging.getLogger(__name__)

RESUME_WORDS = frozenset({"ボットに戻る", "ぼっとにもどる", "ボットにもどる", "bot", "back to bot"})
CHANNELS = frozenset({"rest", "widget", "line"})
# C0/C1 controls but tab and newline: a NUL in what reaches PostgreSQL raises ValueError, which
# Rasa's SQL tracker store answers by exiting the server (tracker_store.py: session_scope).
CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
HASHED_ADDRESS = re.compile(r"[0-9a-f]{32}")  # bot.internal_auth.hashed_address; never a raw address


def token_given(request: Request, token: str) -> bool:
    """Whether the request carries the token, as `?token=` (what Rasa's HTTP API reads) or as a
    bearer header; compared in constant time."""
    scheme, _, bearer = (request.headers.get("authorization") or "").partition(" ")
    given = request.args.get("token") or (bearer.strip() if scheme.lower() == "bearer" else "")
    return hmac.compare_digest(given.encode(), token.encode())


def sender_of(body: dict, default: str = "") -> str | None:
    """The conversation id a request names, or None when it cannot be one: an id with a control
    character or a lone surrogate would stop the server at the tracker store (see CONTROLS)."""
    sender = str(body.get("sender") or default)[:128]
    return sender if sender.isprintable() else None


def message_metadata(body: dict) -> dict[str, str] | None:
    """The metadata a message may carry into the tracker: a hashed address, nothing else."""
    given = body.get("metadata")
    address = given.get("address") if isinstance(given, dict) else None
    return {"address": address} if isinstance(address, str) and HASHED_ADDRESS.fullmatch(address) else None


# Masking (patterns, Sudachi, GiNZA on long texts) runs here rather than on the event loop, so one
# long message does not keep the server from answering others; one worker per core. Long texts
# (up to a second each at the cap) have workers of their own, so a resident's short question
# never queues behind a few of them (GiNZA's lock is taken per 500-character window: they interleave).
LONG_TEXT_CHARS = 200
_MASKING = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mask")
_MASKING_LONG = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mask-long")


async def mask_off_loop(text: str) -> str:
    """`mask` in a worker thread; the event loop serves other residents meanwhile."""
    pool = _MASKING_LONG if len(text) > LONG_TEXT_CHARS else _MASKING
    return await asyncio.get_running_loop().run_in_executor(pool, mask, text)


def is_resume_request(text: str) -> bool:
    return nfkc(text).strip().rstrip("。!！") in {nfkc(w) for w in RESUME_WORDS}


class ConciergeRestInput(RestInput):
    """Runs inside the Rasa server, which never imports bot.settings: its one setting comes in
    through the credentials file that bot/supervisor/processes.py writes from the settings."""

    def __init__(
        self, max_message_chars: int = 2000, token: str = "", knowledge_dir: str | None = None
    ) -> None:
        """`token`: empty only for a hand-started `rasa run` with the repository's credentials.yml
        (then the channel is as open as Rasa's own; bot/supervisor always sets one)."""
        self.max_message_chars = max_message_chars
        self.token = token
        self.knowledge_ids = payloads.KnowledgeIds(knowledge_dir)  # ids a payload may name

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> ConciergeRestInput:
        return cls(**(credentials or {}))

    @classmethod
    def name(cls) -> str:
        return "rest"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = Blueprint("concierge_rest", __name__)
        max_chars = self.max_message_chars
        token = self.token
        mask("")  # load the name recogniser now rather than on the first resident's message

        @bp.middleware("request")
        async def check_token(request: Request) -> HTTPResponse | None:
            if not token or token_given(request, token) or request.path.rstrip("/") == "/webhooks/rest":
                return None  # the bare health check says "ok" and nothing else
            return response.json({"error": "NotAuthenticated"}, status=401)

        @bp.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @bp.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            body = request.json if isinstance(request.json, dict) else {}
            sender = sender_of(body, "default")
            if sender is None:
                return response.json({"error": "sender must be printable text"}, status=400)
            raw = body.get("message")
            if isinstance(raw, str) and len(raw) > max_chars:
                said = say("utter_too_long", language_of(raw), limit=max_chars)
                return response.json([{"recipient_id": sender, "text": said}])
            text = await self.resident_text(raw if isinstance(raw, str) else "")
            channel = body.get("input_channel") if body.get("input_channel") in CHANNELS else self.name()
            agent = request.app.ctx.agent
            if is_resume_request(text):
                await _resume_if_paused(agent, sender)
            collector = CollectingOutputChannel()
            try:
                message = UserMessage(
                    text, collector, sender, input_channel=channel, metadata=message_metadata(body)
                )
                await on_new_message(message)
            except Exception:  # logged without the text: it is the resident's
                log.exception("a message failed")  # nor the sender id: it is the key to the conversation
            messages = collector.messages
            if not messages and not await _is_paused(agent, sender):
                messages = [{"recipient_id": sender, "text": say("utter_apology", language_of(text))}]
            return response.json(messages)

        @bp.route("/messages", methods=["POST"])
        async def staff_messages(request: Request) -> HTTPResponse:
            body = request.json if isinstance(request.json, dict) else {}
            sender = sender_of(body)
            try:
                after = float(body.get("after") or 0)
            except (TypeError, ValueError):
                return response.json({"error": "after must be a Unix time"}, status=400)
            if not sender:
                return response.json({"error": "sender is required"}, status=400)
            tracker = await request.app.ctx.agent.tracker_store.retrieve(sender)
            events = tracker.events if tracker else []
            found = [
                {"text": e.text, "timestamp": e.timestamp, "ticket": e.metadata.get("ticket")}
                for e in events
                if getattr(e, "type_name", "") == "bot"
                and (e.metadata or {}).get("staff")
                and e.timestamp > after
            ]
            return response.json(found)

        return bp

    async def resident_text(self, raw: str) -> str:
        """What Rasa gets of a resident's message: an offered payload in its canonical form, or
        the masked text that no payload parser will take for one."""
        raw = CONTROLS.sub("", raw).encode("utf-8", "replace").decode("utf-8")  # no NUL, no lone surrogate
        offered = payloads.screen(raw, self.knowledge_ids)
        return offered if offered is not None else payloads.neutralise(await mask_off_loop(raw))


async def _is_paused(agent: Any, sender: str) -> bool:
    tracker = await agent.tracker_store.retrieve(sender)
    return bool(tracker and tracker.is_paused())


async def _resume_if_paused(agent: Any, sender: str) -> None:
    async with agent.lock_store.lock(sender):
        tracker = await agent.tracker_store.retrieve(sender)
        if tracker and tracker.is_paused():
            tracker.update(ConversationResumed())
            tracker.update(ActionExecuted(ACTION_LISTEN_NAME))  # ready for the next message
            await agent.tracker_store.save(tracker)
