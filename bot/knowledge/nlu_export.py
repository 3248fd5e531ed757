"""Write Rasa lookup tables and synonyms from knowledge/, so NLU and knowledge never disagree.

Output goes to nlu_data/generated/ (not committed); `make train` regenerates it first.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.knowledge import WARDS, KnowledgeBase


def nlu_lookups(kb: KnowledgeBase) -> dict:
    places = sorted({t.name for t in kb.towns})
    procedures = sorted({a for s in kb.services.values() for a in (s.name, *s.aliases)})
    synonyms = [
        {"synonym": s.name, "examples": "".join(f"- {a}\n" for a in s.aliases)}
        for s in kb.services.values()
        if s.aliases
    ]
    return {
        "version": "3.1",
        "nlu": [
            {"lookup": "ward", "examples": "".join(f"- {w}\n" for w in WARDS)},
            {"lookup": "place", "examples": "".join(f"- {p}\n" for p in places)},
            {"lookup": "procedure", "examples": "".join(f"- {p}\n" for p in procedures)},
            *synonyms,
        ],
    }


def export_nlu(kb: KnowledgeBase, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "knowledge.yml"
    text = "# Generated from knowledge/ by `concierge knowledge export-nlu`; do not edit.\n"
    text += yaml.safe_dump(nlu_lookups(kb), allow_unicode=True, sort_keys=False, width=1000)
    path.write_text(text, encoding="utf-8")
    return path
