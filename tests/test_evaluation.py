"""The dev-set gate and its bookkeeping (the figures themselves come from `make eval`)."""

from __future__ import annotations

from bot.evaluation import EvalResult, gate_failures, kind_of, part_of


def _result(right: int, wrong: int, abstained: int) -> EvalResult:
    result = EvalResult()
    for outcome, n in (("right", right), ("wrong", wrong), ("abstained", abstained)):
        for _ in range(n):
            result.overall.add(outcome, outcome == "right", float(outcome == "right"))
    return result


def test_the_gate_fails_on_too_few_right_or_too_many_confidently_wrong():
    assert gate_failures(_result(96, 2, 2)) == []
    assert gate_failures(_result(94, 1, 5)) == ["top-1 0.940 is below 0.95"]
    assert gate_failures(_result(96, 4, 0)) == ["confidently wrong 0.040 is above 0.03"]


def test_kinds_and_the_held_out_part_are_stable():
    assert kind_of({"id": "d1", "entry": "service:juminhyo"}) == "routing"
    assert kind_of({"id": "en3", "entry": "service:juminhyo"}) == "english"
    assert kind_of({"id": "x", "entry": None}) == "unanswerable"
    assert kind_of({"id": "r1", "entry": "referral:passport"}) == "referral"
    assert kind_of({"id": "p1", "entry": "policy:c2-1", "kind": "policy-fact"}) == "policy-fact"
    parts = [part_of({"id": f"q{i}"}) for i in range(1000)]
    assert parts == [part_of({"id": f"q{i}"}) for i in range(1000)]  # the same on every run
    assert 150 < parts.count("held-out") < 250  # about one in five
    assert part_of({"id": "q1", "split": "held-out"}) == "held-out"


def test_a_fact_is_found_however_the_era_and_the_spaces_are_written():
    from bot.evaluation import _compact

    assert _compact("H26 年度") in _compact("（平成26年度に「区の課題即応事業費」を新設）")
    assert _compact("平成 27 年 3 月") in _compact("平成27年3月に廃止されました")
    assert _compact("H22年度") not in _compact("平成23年度に設置")


def test_a_referral_to_the_same_body_is_right_and_to_another_is_not():
    from bot.evaluation import _same_body
    from bot.knowledge import load_knowledge
    from bot.settings import ROOT

    class KnowledgeOnly:  # the judge reads only the knowledge here
        kb = load_knowledge(ROOT / "knowledge")

    concierge = KnowledgeOnly()
    water = [r.id for r in concierge.kb.referrals.values() if r.handled_by == "川崎市上下水道局"]
    assert len(water) >= 2
    assert _same_body(concierge, f"referral:{water[0]}", f"referral:{water[1]}")
    assert not _same_body(concierge, "referral:passport", f"referral:{water[0]}")
    assert not _same_body(concierge, "service:juminhyo", f"referral:{water[0]}")
