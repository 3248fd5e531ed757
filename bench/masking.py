"""Masking cost on text built to backtrack: each family of adversarial input repeated up to the
message cap, patterns alone and the whole mask (Sudachi and GiNZA included). Linear work shows
as time that doubles with the length, not one that multiplies."""

from __future__ import annotations

import time

from bot.privacy import PATTERNS, mask

# Repeated place suffixes, digits and separators, kana, e-mail look-alikes and mixes.
FAMILIES = (
    "市区", "県市区町村", "区1-", "丁目1-", "1-", "１－", "(0", "+81-",
    "あ区", "ア", "a@b.", "中原区新丸子東1-", "山田",
)  # fmt: skip
LENGTHS = (500, 1000, 2000)


def _repeated(unit: str, length: int) -> str:
    return (unit * (length // len(unit) + 1))[:length]


def _seconds(fn, text: str, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn(text)
        best = min(best, time.perf_counter() - started)
    return best


def _patterns(text: str) -> None:
    for pattern in PATTERNS:
        pattern.sub(text)


def run() -> dict[str, dict[str, float]]:
    """Per family: patterns ms and whole-mask ms at each length (best of a few runs)."""
    mask("山田太郎と申します")  # GiNZA loaded before timing
    figures: dict[str, dict[str, float]] = {}
    for unit in FAMILIES:
        row: dict[str, float] = {}
        for length in LENGTHS:
            text = _repeated(unit, length)
            row[f"patterns_ms_{length}"] = _seconds(_patterns, text, 5) * 1000
            row[f"mask_ms_{length}"] = _seconds(mask, text, 2) * 1000
        figures[unit] = row
    return figures
