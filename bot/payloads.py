"""The payloads residents may send: only those the bot offers, with their entities validated.

Rasa parses any message that starts with "/" as an intent with entities (its RegexMessageHandler,
through YAMLStoryReader.unpack_regex_message), skipping the NLU: typed by a resident, `/restart`
or `/inform_ward{"ward": "<b>x</b>"}` would drive the dialogue directly. The residents' channel
(bot/rasa_server/channels.py, which the widget and LINE both go through) therefore passes a
message through `screen`: an offered payload with valid entities goes on in its canonical form;
anything else is text, masked like any text and `neutralised` so that Rasa's NLU reads it.

Where the bot offers payloads: ward and hand-off buttons (bot/answering/composer.py, built from
the declarations below), the widget's starters (web/static/widget.js), LINE postbacks of those
buttons and LINE's follow event (bot/line_messaging.py, web/line.py), the feedback buttons under an
answer (`/feedback{"helpful": true}`, actions/common.py), the booking form's quick replies
(`/book{...}`, `/my_bookings`, `/cancel_booking{...}`, actions/bookings.py).

Runs in both environments (the Rasa server's has pydantic 1, so nothing from bot.knowledge here).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.notices.topics import TOPIC_IDS  # plain Python: no SQLAlchemy, no bot.storage (a test checks)

# The seven wards of Kawasaki, as bot.knowledge.WARDS (a test checks they are the same).
WARDS: tuple[str, ...] = ("川崎区", "幸区", "中原区", "高津区", "宮前区", "多摩区", "麻生区")
PREFIX = "/"  # rasa.shared.constants.INTENT_MESSAGE_PREFIX
# What a refused payload's "/" becomes: looks the same to the resident and to staff reading the
# transcript, but is not Rasa's prefix (FULLWIDTH SOLIDUS).
NEUTRAL_PREFIX = "／"
MAX_PAYLOAD_CHARS = 300  # LINE postback data is cut at 300 (bot/line_messaging.py)
_INTENT = re.compile(r"[a-z_]{1,64}")  # one character class, fullmatch: linear


class KnowledgeIds:
    """The ids in the knowledge folder's files, re-read when a file changes (staff edit the
    knowledge while the servers run). No folder: no id exists."""

    def __init__(self, folder: Path | str | None) -> None:
        self.folder = Path(folder) if folder else None
        self._cache: dict[str, tuple[tuple[int, int], frozenset[str]]] = {}

    def of(self, file: str) -> frozenset[str]:
        if self.folder is None:
            return frozenset()
        path = self.folder / file
        try:
            stat = path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            return frozenset()
        cached = self._cache.get(file)
        if cached is None or cached[0] != stamp:
            entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
            ids = frozenset(str(e["id"]) for e in entries if isinstance(e, dict) and "id" in e)
            cached = self._cache[file] = (stamp, ids)
        return cached[1]


Check = Callable[[Any, KnowledgeIds], bool]


def one_of(values: tuple[str, ...]) -> Check:
    allowed = frozenset(values)
    return lambda value, _ids: isinstance(value, str) and value in allowed


def knowledge_id(*files: str) -> Check:
    """An id that exists in one of these knowledge files (e.g. "counters.yml")."""
    return lambda value, ids: isinstance(value, str) and any(value in ids.of(f) for f in files)


def boolean(value: Any, _ids: KnowledgeIds) -> bool:
    return isinstance(value, bool)


def pattern(regex: str) -> Check:
    """Text that the whole of matches `regex` (keep it linear: one class or literal per part)."""
    compiled = re.compile(regex)
    return lambda value, _ids: isinstance(value, str) and compiled.fullmatch(value) is not None


# bookings (issue 19): the forms the booking payloads carry. A booking number is drawn from
# bot.bookings.reservations.NUMBER_ALPHABET, NUMBER_LENGTH long (a test checks they are the same;
# that module needs SQLAlchemy, so it is not imported here).
DATE_PATTERN = r"\d{4}-\d{2}-\d{2}"  # YYYY-MM-DD
TIME_PATTERN = r"\d{2}:\d{2}"  # HH:MM (JST)
NUMBER_PATTERN = r"[34679ACDEFGHJKMNPQRTUVWXY]{8}"


@dataclass(frozen=True)
class Entity:
    check: Check
    required: bool = False


@dataclass(frozen=True)
class Offer:
    """A payload the bot offers: its intent and the entities it may carry."""

    intent: str
    entities: Mapping[str, Entity] = field(default_factory=dict)

    def payload(self, **entities: Any) -> str:
        """The payload's text, as buttons carry it and as `screen` passes it on."""
        return PREFIX + self.intent + (json.dumps(entities, ensure_ascii=False) if entities else "")

    def accepts(self, entities: Mapping[str, Any], ids: KnowledgeIds) -> bool:
        if set(entities) - set(self.entities):
            return False
        if any(spec.required and name not in entities for name, spec in self.entities.items()):
            return False
        return all(self.entities[name].check(value, ids) for name, value in entities.items())


def _declare(*offers: Offer) -> dict[str, Offer]:
    return {o.intent: o for o in offers}


OFFERS: dict[str, Offer] = _declare(
    Offer("greet"),  # LINE's follow event (web/line.py)
    Offer("request_human"),  # 「担当者と話したい」 buttons and the widget's starter
    # ward buttons and starters; bare, 「別の区」 (the bot asks which)
    Offer("inform_ward", {"ward": Entity(one_of(WARDS))}),
    # 「解決しましたか？」 under an answer: はい / いいえ (actions/feedback.py), a JSON boolean only
    Offer("feedback", {"helpful": Entity(boolean, required=True)}),
    Offer("rephrase"),  # 「言い換えて質問する」 after 「いいえ」
    # notices: subscriptions (issue 18) — LINE quick replies of actions/subscriptions.py
    # a ward's notices on every topic, or on one; stop all, or one topic; see what is received
    Offer("subscribe", {"ward": Entity(one_of(WARDS), required=True), "topic": Entity(one_of(TOPIC_IDS))}),
    Offer("unsubscribe", {"topic": Entity(one_of(TOPIC_IDS))}),
    Offer("subscriptions"),
    # notices: board answers (issue 18): the ward buttons of a board question (actions/board.py),
    # the counter buttons of 「どの窓口？」, the disaster greeting's 「避難所を調べる」
    Offer("ask_congestion", {"ward": Entity(one_of(WARDS)), "counter": Entity(knowledge_id("counters.yml"))}),
    Offer("ask_special_opening", {"ward": Entity(one_of(WARDS))}),
    Offer("ask_shelter", {"ward": Entity(one_of(WARDS))}),
    # bookings (issue 19), actions/bookings.py: the full form books at once (a time's quick reply);
    # partial forms continue the booking form (a counter, a ward, a day); `change` names the booking
    # the new time replaces (「変更」 under 「予約を確認」)
    Offer(
        "book",
        {
            "ward": Entity(one_of(WARDS)),
            "counter": Entity(knowledge_id("counters.yml")),
            "date": Entity(pattern(DATE_PATTERN)),
            "time": Entity(pattern(TIME_PATTERN)),
            "change": Entity(pattern(NUMBER_PATTERN)),
        },
    ),
    Offer("my_bookings"),  # 「予約を確認」
    Offer("cancel_booking", {"number": Entity(pattern(NUMBER_PATTERN))}),  # bare: which one?
    Offer("stop_booking"),  # 「予約をやめる」 during the booking form
)

_NO_IDS = KnowledgeIds(None)


def screen(text: str, ids: KnowledgeIds = _NO_IDS) -> str | None:
    """The canonical payload if `text` is an offered payload with valid entities, else None
    (then the message is text: mask it and `neutralise` it)."""
    stripped = text.strip()
    if not stripped.startswith(PREFIX) or len(stripped) > MAX_PAYLOAD_CHARS:
        return None
    intent, brace, rest = stripped[len(PREFIX) :].partition("{")
    offer = OFFERS.get(intent) if _INTENT.fullmatch(intent) else None
    if offer is None:
        return None
    entities: Any = {}
    if brace:
        try:
            entities = json.loads(brace + rest)
        except ValueError:
            return None
        if not isinstance(entities, dict):
            return None
    return offer.payload(**entities) if offer.accepts(entities, ids) else None


def neutralise(text: str) -> str:
    """Text that Rasa will not take for a payload: a leading "/" (after the whitespace Rasa strips)
    becomes "／", so the NLU classifies the message like any other; the rest is kept as typed."""
    stripped = text.lstrip()
    return NEUTRAL_PREFIX + stripped[len(PREFIX) :] if stripped.startswith(PREFIX) else text
