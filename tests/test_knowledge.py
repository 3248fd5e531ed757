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


def test_check_command_reports_a_near_duplicate_with_its_place(small_knowledge: Path, capsys):
    from bot.cli import main

    assert main(["knowledge", "check", "--folder", str(small_knowledge)]) == 0
    services = small_knowledge / "services.yml"
    services.write_text(
        services.read_text(encoding="utf-8") + "- id: juminhyo-copy\n"
        "  name: 住民票の写し\n"
        "  questions: [住民票はどこで取れますか, 住民票を取りたい]\n"
        "  counter: kumin\n"
        "  offices: [区役所]\n"
        "  source: seed / 第4章 1(2)\n",
        encoding="utf-8",
    )
    assert main(["knowledge", "check", "--folder", str(small_knowledge)]) == 1
    err = capsys.readouterr().err
    assert (
        "services.yml:16: service:juminhyo-copy nearly duplicates service:juminhyo at services.yml:1" in err
    )


def test_check_command_fails_on_a_broken_reference(small_knowledge: Path, capsys):
    from bot.cli import main

    counters = small_knowledge / "counters.yml"
    counters.write_text(
        counters.read_text(encoding="utf-8").replace("id: kumin", "id: kumin-renamed"), encoding="utf-8"
    )
    assert main(["knowledge", "check", "--folder", str(small_knowledge)]) == 1
    assert "services.yml:1: unknown counter 'kumin'" in capsys.readouterr().err
