"""Talk to a running Rasa server: the REST channel for messages, the HTTP API for trackers.

Both want the Rasa token (bot/internal_auth.py): Rasa's HTTP API reads it from the `token` query
parameter only, so every request carries it there (Rasa's access log is off; nginx logs no
query strings)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote

import requests

if TYPE_CHECKING:
    from bot.settings import Settings


@dataclass
class Reply:
    """Everything the bot said for one message, with what the NLU understood."""

    messages: list[dict] = field(default_factory=list)
    intent: str | None = None
    confidence: float | None = None

    @property
    def text(self) -> str:
        return "\n".join(m["text"] for m in self.messages if m.get("text"))

    @property
    def custom(self) -> dict:
        """The structured payload of the last answer that carried one."""
        payloads = [m["custom"] for m in self.messages if isinstance(m.get("custom"), dict)]
        return payloads[-1] if payloads else {}


class RasaClient:
    def __init__(self, base_url: str, timeout: float = 30.0, token: str = "") -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.http = requests.Session()
        if token:
            self.http.params = {"token": token}

    @classmethod
    def from_settings(cls, settings: Settings, timeout: float | None = None) -> RasaClient:
        """A client of the settings' Rasa server with its token."""
        from bot.internal_auth import rasa_token

        return cls(settings.rasa_base_url, settings.request_timeout_s if timeout is None else timeout,
                   rasa_token(settings))  # fmt: skip

    def is_ready(self) -> bool:
        try:
            resp = self.http.get(f"{self.base_url}/status", timeout=2)
            return resp.ok and bool(resp.json().get("model_file"))
        except (requests.RequestException, ValueError):
            return False

    def send(
        self, sender: str, text: str, input_channel: str | None = None, metadata: dict | None = None
    ) -> list[dict]:
        """`metadata` reaches the actions with the message (the widget's hashed client address)."""
        body: dict = {"sender": sender, "message": text}
        if input_channel:
            body["input_channel"] = input_channel
        if metadata:
            body["metadata"] = metadata
        resp = self.http.post(
            f"{self.base_url}/webhooks/rest/webhook",
            json=body,
            timeout=self.timeout,
        )
        resp.raise_for_status()
        return resp.json()

    def tracker(self, sender: str) -> dict:
        resp = self.http.get(
            f"{self.base_url}/conversations/{quote(sender, safe='')}/tracker", timeout=self.timeout
        )
        resp.raise_for_status()
        return resp.json()

    def append_events(self, sender: str, events: list[dict]) -> None:
        resp = self.http.post(
            f"{self.base_url}/conversations/{quote(sender, safe='')}/tracker/events",
            json=events,
            timeout=self.timeout,
        )
        resp.raise_for_status()

    def set_slot(self, sender: str, name: str, value: str) -> None:
        # Open the conversation first: Rasa stamps appended events before the session-start events
        # it adds for a new conversation, and its SQL tracker store then drops them on reload.
        self.append_events(sender, [{"event": "action", "name": "action_listen"}])
        self.append_events(sender, [{"event": "slot", "name": name, "value": value}])

    def staff_messages(self, sender: str, after: float = 0.0) -> list[dict]:
        """Messages staff sent to this resident after `after` (a Unix time), via the channel."""
        resp = self.http.post(  # POST: the sender id stays out of URLs and access logs
            f"{self.base_url}/webhooks/rest/messages",
            json={"sender": sender, "after": after},
            timeout=self.timeout,
        )
        resp.raise_for_status()
        return resp.json()

    def ask(self, sender: str, text: str) -> Reply:
        messages = self.send(sender, text)
        latest = self.tracker(sender).get("latest_message") or {}
        intent = latest.get("intent") or {}
        return Reply(messages=messages, intent=intent.get("name"), confidence=intent.get("confidence"))
