"""What the bot says, read from the `responses:` of domain.yml: the one place for resident wording.

Rasa's server utters these responses itself when an action names one. The texts other processes
build (the composer's sentences, the web channels' refusals, the hand-off's closing notice) are
read from the same file here, so no resident-facing sentence is written in Python. A response has
one variation without a condition (Japanese) and one for `language: en`, as Rasa picks them.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import yaml

from bot.japanese import is_mostly_latin

DOMAIN = Path(__file__).resolve().parents[1] / "domain.yml"
LANGUAGES = ("ja", "en")
DEFAULT_LANGUAGE = "ja"
PHRASE_PREFIX = "utter_phrase_"  # the composer's sentence parts
_VARIABLE = re.compile(r"{([^\n{}]+?)}")  # Rasa's own pattern for {slot} and {kwarg}


_KANA = re.compile("[\u3041-\u309f\u30a1-\u30ff\uff66-\uff9f]")  # hiragana, katakana, half-width kana


def language_of(text: str) -> str:
    """The resident's language for this message: English when most letters are Latin. A payload
    (`/greet`, `/inform_ward{...}`) is in no language: the default, not English."""
    if text.startswith("/") or _KANA.search(text):  # kana: Japanese, whatever Latin is around it
        return DEFAULT_LANGUAGE
    return "en" if is_mostly_latin(text) else DEFAULT_LANGUAGE


def _language_of_variation(variation: dict[str, Any]) -> str | None:
    conditions = variation.get("condition") or []
    for condition in conditions:
        if condition.get("type") == "slot" and condition.get("name") == "language":
            return str(condition.get("value"))
    return None if conditions else DEFAULT_LANGUAGE


@functools.cache
def texts(path: Path = DOMAIN) -> dict[str, dict[str, str]]:
    """Response name → language → text, loaded once per process."""
    domain = yaml.safe_load(path.read_text(encoding="utf-8"))
    found: dict[str, dict[str, str]] = {}
    for name, variations in (domain.get("responses") or {}).items():
        for variation in variations:
            lang = _language_of_variation(variation)
            if lang in LANGUAGES and "text" in variation:
                found.setdefault(name, {}).setdefault(lang, variation["text"])
    return found


def template(name: str, lang: str = DEFAULT_LANGUAGE) -> str:
    """The response's text in `lang`, its variables left in (Japanese when `lang` has none)."""
    variations = texts()[name]
    return variations.get(lang) or variations[DEFAULT_LANGUAGE]


def say(response: str, lang: str = DEFAULT_LANGUAGE, /, **values: Any) -> str:
    """The response filled in as Rasa fills it; a variable without a value is an error here.
    Positional-only, so a variable may be called `name` or `response`."""
    return _VARIABLE.sub(lambda m: str(values[m.group(1)]), template(response, lang))


def phrases(lang: str) -> dict[str, str]:
    """The composer's sentence parts (`utter_phrase_hours` → `hours`), unformatted."""
    return {
        name.removeprefix(PHRASE_PREFIX): template(name, lang)
        for name in texts()
        if name.startswith(PHRASE_PREFIX)
    }
