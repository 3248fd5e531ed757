"""LINE Messaging API (line-bot-sdk v3): turn the bot's replies into LINE messages and send them.

LINE limits a reply or push to 5 messages of at most 5,000 characters and 13 quick replies with
labels of 20 characters; answers are split and cut to fit. A multicast (notices) reaches at most 500
user ids and carries a retry key: LINE takes a key once in 24 hours and answers a repeat 409. The
API host is configurable, so tests point the SDK at a local server standing in for LINE. Every call
has a timeout, and whatever the SDK raises when LINE is unreachable, slow or refuses becomes one
LineApiError, with LINE's status and Retry-After when it answered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import urllib3
from linebot.v3.messaging import (
    ApiClient,
    Configuration,
    FlexContainer,
    FlexMessage,
    MessagingApi,
    MulticastRequest,
    PostbackAction,
    PushMessageRequest,
    QuickReply,
    QuickReplyItem,
    ReplyMessageRequest,
    TextMessage,
)
from linebot.v3.messaging.exceptions import ApiException, OpenApiException

from bot.settings import Settings

MAX_MESSAGES = 5
MAX_TEXT = 5000
MAX_QUICK_REPLIES = 13
MAX_LABEL = 20
MAX_MULTICAST = 500  # user ids in one multicast


@dataclass(frozen=True)
class LineConfig:
    channel_secret: str
    access_token: str
    api_base: str = "https://api.line.me"
    timeout: float = 10.0  # seconds to wait for the LINE API (connect and read)

    @classmethod
    def from_settings(cls, settings: Settings) -> LineConfig | None:
        """None unless both credentials are set: then the LINE route is off."""
        secret = settings.line_channel_secret.get_secret_value()
        token = settings.line_channel_access_token.get_secret_value()
        if not (secret and token):
            return None
        return cls(secret, token, settings.line_api_base, settings.line_api_timeout_s)


class LineApiError(Exception):
    """The LINE API was unreachable, too slow, or refused the request (the text holds no message).

    `status` is LINE's HTTP status (None when LINE did not answer: unreachable or too slow), and
    `retry_after` the seconds LINE asked to wait (its Retry-After header), when it said."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def _retry_after(err: ApiException) -> float | None:
    """Retry-After in seconds (LINE sends a number); None when absent or not a number."""
    value = (err.headers or {}).get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


# What the SDK raises when LINE is unreachable or slow (urllib3, sockets) or answers an error status.
_SDK_ERRORS = (OpenApiException, urllib3.exceptions.HTTPError, OSError)


def _split(text: str) -> list[str]:
    return [text[i : i + MAX_TEXT] for i in range(0, len(text), MAX_TEXT)] or [""]


def office_card(card: dict) -> FlexMessage:
    """A Flex bubble: office, counter, ward, address, hours, what to bring, map and source links."""
    rows = []
    for label, value in (
        ("窓口", card.get("counter")),
        ("区", card.get("ward")),
        ("住所", card.get("address")),
        ("受付時間", " ／ ".join(card.get("hours") or [])),
        ("持ち物", "、".join(card.get("bring") or [])),
    ):
        if value:
            rows.append(
                {
                    "type": "box",
                    "layout": "baseline",
                    "spacing": "sm",
                    "contents": [
                        {"type": "text", "text": label, "size": "sm", "color": "#52606d", "flex": 2},
                        {"type": "text", "text": str(value)[:300], "size": "sm", "wrap": True, "flex": 5},
                    ],
                }
            )
    links = [("地図を開く", card.get("map_url")), ("出典", (card.get("source") or {}).get("url"))]
    footer = [_link_button(label, uri) for label, uri in links if uri]
    title = card.get("office") or card.get("counter") or "窓口のご案内"
    bubble = {
        "type": "bubble",
        "body": {
            "type": "box",
            "layout": "vertical",
            "spacing": "md",
            "contents": [
                {"type": "text", "text": title, "weight": "bold", "size": "lg", "wrap": True},
                *rows,
            ],
        },
    }
    if footer:
        bubble["footer"] = {"type": "box", "layout": "vertical", "contents": footer}
    return FlexMessage(alt_text=f"{title}のご案内"[:400], contents=FlexContainer.from_dict(bubble))


def to_line_messages(rasa_messages: list[dict]) -> list:
    """Rasa REST output → at most 5 LINE messages; quick replies ride on the last one. An answer's
    「解決しましたか？」 (custom `feedback`) is the last message, its はい / いいえ the last quick replies."""
    texts: list[str] = []
    buttons: list[dict] = []
    cards: list[dict] = []
    feedback: dict | None = None
    for m in rasa_messages:
        if m.get("text"):
            texts.extend(_split(m["text"]))
        buttons = m.get("buttons") or buttons
        custom = m.get("custom")
        if isinstance(custom, dict) and custom.get("card"):
            cards.append(custom["card"])
        if isinstance(custom, dict) and isinstance(custom.get("feedback"), dict):
            feedback = custom["feedback"]
    messages: list = [TextMessage(text=t) for t in texts]
    messages += [office_card(c) for c in cards]
    asked = feedback.get("question") if feedback else None
    room = MAX_MESSAGES - (1 if asked else 0)
    if len(messages) > room:  # keep the card: it carries where to go
        keep_cards = messages[-len(cards) :] if cards else []
        messages = messages[: room - len(keep_cards)] + keep_cards
    if asked and messages:
        messages.append(TextMessage(text=str(asked)[:MAX_TEXT]))
    rating = list(feedback.get("buttons") or [])[:2] if feedback and messages else []
    buttons = buttons[: MAX_QUICK_REPLIES - len(rating)] + rating
    if buttons and messages:
        items = [
            QuickReplyItem(
                action=PostbackAction(
                    label=b["title"][:MAX_LABEL], data=b["payload"][:300], display_text=b["title"][:300]
                )
            )
            for b in buttons[:MAX_QUICK_REPLIES]
        ]
        messages[-1].quick_reply = QuickReply(items=items)
    return messages


class LineClient:
    def __init__(self, config: LineConfig) -> None:
        self.config = config
        self._configuration = Configuration(access_token=config.access_token, host=config.api_base)

    def _call(self, send: Callable[[MessagingApi, float], object]) -> None:
        try:
            with ApiClient(self._configuration) as client:
                send(MessagingApi(client), self.config.timeout)
        except _SDK_ERRORS as err:
            if isinstance(err, ApiException) and err.status:  # status 0: the SDK's own (TLS) failure
                raise LineApiError(
                    f"{type(err).__name__} HTTP {err.status}", err.status, _retry_after(err)
                ) from err
            raise LineApiError(type(err).__name__) from err

    def reply(self, reply_token: str, messages: list) -> None:
        request = ReplyMessageRequest(reply_token=reply_token, messages=messages[:MAX_MESSAGES])
        self._call(lambda api, timeout: api.reply_message(request, _request_timeout=timeout))

    def push(self, user_id: str, messages: list, retry_key: str | None = None) -> None:
        """With a `retry_key`, a push sent again that LINE took before is answered 409, not delivered
        twice (booking reminders)."""
        request = PushMessageRequest(to=user_id, messages=messages[:MAX_MESSAGES])
        self._call(
            lambda api, timeout: api.push_message(
                request, x_line_retry_key=retry_key, _request_timeout=timeout
            )
        )

    def multicast(self, user_ids: list[str], messages: list, retry_key: str) -> None:
        """The same messages to up to 500 users. Send a batch again with the same `retry_key`: if
        LINE took it before, it answers 409 (LineApiError.status) and delivers nothing twice."""
        if not 0 < len(user_ids) <= MAX_MULTICAST:
            raise ValueError(f"a multicast goes to 1 to {MAX_MULTICAST} users")
        request = MulticastRequest(to=user_ids, messages=messages[:MAX_MESSAGES])
        self._call(
            lambda api, timeout: api.multicast(request, x_line_retry_key=retry_key, _request_timeout=timeout)
        )


def _link_button(label: str, uri: str) -> dict:
    """A Flex footer button that opens a web page."""
    return {
        "type": "button",
        "style": "link",
        "height": "sm",
        "action": {"type": "uri", "label": label, "uri": uri},
    }
