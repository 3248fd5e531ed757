"""The composer's sentence parts, per language, as domain.yml holds them (`utter_phrase_*`
responses, read by bot/wording.py). Facts never live there: only the sentences that put knowledge
entries together. Japanese is the default; English answers keep office and counter names in
Japanese beside the English."""

from __future__ import annotations

from bot.wording import LANGUAGES, phrases

PHRASES: dict[str, dict[str, str]] = {lang: phrases(lang) for lang in LANGUAGES}


def bilingual(japanese: str, english: str, lang: str) -> str:
    """A name as a resident reading `lang` needs it: English answers keep the Japanese name."""
    if lang == "en" and english:
        return f"{english} ({japanese})"
    return japanese
