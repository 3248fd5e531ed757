"""Find the resident's ward in what they typed: a ward name, a town or station, or its reading."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.japanese import default_analyzer, nfkc, to_katakana
from bot.knowledge import WARDS, KnowledgeBase


@dataclass(frozen=True)
class PlaceMatch:
    ward: str
    name: str  # what matched: the ward itself or a town/station name


class Gazetteer:
    """Longest-match look-up of ward and town names, on NFKC text and on katakana readings."""

    def __init__(self, kb: KnowledgeBase) -> None:
        analyzer = default_analyzer()
        names: dict[str, PlaceMatch] = {}
        readings: dict[str, PlaceMatch] = {}
        for ward in WARDS:
            names[nfkc(ward)] = PlaceMatch(ward, ward)
            readings[analyzer.reading(ward)] = PlaceMatch(ward, ward)
        for town in kb.towns:
            names.setdefault(nfkc(town.name), PlaceMatch(town.ward, town.name))
            if len(town.reading) >= 3:
                readings.setdefault(to_katakana(nfkc(town.reading)), PlaceMatch(town.ward, town.name))
        self._names = sorted(names.items(), key=lambda kv: -len(kv[0]))
        # Romaji ward names as foreign residents type them: "Nakahara", "Nakahara-ku", "Tama ward"
        self._romaji = [
            (re.compile(rf"\b{re.escape(en.lower())}(?:[- ]?ku\b|\s+ward\b|\b)"), PlaceMatch(ward, ward))
            for ward, en in kb.ward_names_en.items()
        ]
        # Facility names that contain a place name (柿生連絡所, 中原区役所) are topics, not places.
        self._facilities = sorted({nfkc(o.name) for o in kb.offices.values()}, key=len, reverse=True)
        self._readings = sorted(readings.items(), key=lambda kv: -len(kv[0]))

    def names_in(self, text: str) -> list[str]:
        """Every ward or town name written in `text` (kanji forms), outside facility names."""
        norm = nfkc(text)
        for facility in self._facilities:
            norm = norm.replace(facility, "\0")
        return [name for name, _ in self._names if name in norm]

    def strip_places(self, text: str) -> str:
        """The text (NFKC) with its ward and town names blanked out: kanji, kana or romaji."""
        rest = nfkc(text)
        kana = to_katakana(rest)  # aligned with rest character by character

        def blank(start: int, end: int) -> None:
            nonlocal rest, kana
            rest = rest[:start] + " " * (end - start) + rest[end:]
            kana = kana[:start] + " " * (end - start) + kana[end:]

        for name, _ in self._names:
            while (i := rest.find(name)) >= 0:
                blank(i, i + len(name))
        for reading, _ in self._readings:
            while (i := kana.find(reading)) >= 0:
                blank(i, i + len(reading))
        for pattern, _ in self._romaji:
            for m in list(pattern.finditer(rest)):
                blank(m.start(), m.end())
        return rest

    def find(self, text: str) -> PlaceMatch | None:
        """The longest ward/town name in `text` (kanji or kana), or None."""
        norm = nfkc(text)
        for name, match in self._names:
            if name in norm:
                return match
        kana = to_katakana(norm).replace(" ", "")
        for reading, match in self._readings:
            if reading in kana:
                return match
        for pattern, match in self._romaji:
            if pattern.search(norm):
                return match
        return None
