"""A message an action handed to rasa-sdk's dispatcher, as the Rasa server would send it: a
`response=` is filled in from domain.yml with the message's own variables (the actions pass every
variable their responses use, never relying on a slot)."""

from __future__ import annotations

from bot.wording import say


def text_of(message: dict, lang: str = "ja") -> str:
    if message.get("response"):
        return say(message["response"], lang, **message)
    return message["text"]
