from pathlib import Path

import pytest

from bot.knowledge import WARDS, KnowledgeError, load_knowledge
from bot.settings import ROOT


def test_project_knowledge_loads_and_covers_every_ward():
    kb = load_knowledge(ROOT / "knowledge")
    assert len(kb.services) >= 20
    for ward in WARDS:
        office = kb.ward_office(ward)
        assert office is not None and office.address and office.hours
    assert all(s.source.title for s in kb.services.values())
    assert {o.name for o in kb.closed_offices()} >= {"宮前連絡所", "柿生連絡所"}


def test_missing_source_and_broken_reference_are_reported_with_lines(small_knowledge: Path):
    services = small_knowledge / "services.yml"
    text = services.read_text(encoding="utf-8")
    text = text.replace("counter: doro-koen", "counter: no-such-counter")
    text = text.replace("  source: seed / 第4章 1(2)\n", "")
    services.write_text(text, encoding="utf-8")
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(small_knowledge)
    problems = "\n".join(err.value.problems)
    assert "services.yml:1: missing 'source'" in problems
    assert "unknown counter 'no-such-counter'" in problems
