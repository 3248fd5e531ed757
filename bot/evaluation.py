"""Evaluate the answering core on a question set: is the right entry, counter and office on top?

A question set is JSON lines {"id", "q", "entry", "ward"?}: `entry` is the knowledge entry that
answers it ("service:kokuho", "office:kakio-liaison"), or null when the knowledge cannot answer
it and the bot should say so (and log it as unresolved). The expected counter and office follow
from the knowledge base, so the set stays right when an entry is edited.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from bot.concierge import Concierge


@dataclass
class EvalResult:
    total: int = 0
    top1: int = 0  # right counter and office (or right entry where no counter applies)
    entry_top1: int = 0  # exactly the expected entry on top
    reciprocal_ranks: float = 0.0
    misses: list[dict] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.top1 / self.total if self.total else 0.0

    @property
    def entry_accuracy(self) -> float:
        return self.entry_top1 / self.total if self.total else 0.0

    @property
    def mrr(self) -> float:
        return self.reciprocal_ranks / self.total if self.total else 0.0


def _expected(concierge: Concierge, entry: str | None, ward: str | None) -> tuple[str | None, str | None]:
    if entry is None:
        return None, None
    kind, ref = entry.split(":", 1)
    if kind != "service":
        return None, None
    service = concierge.kb.services[ref]
    counter = service.counter.name if service.counter else None
    office = None
    if service.office_ids:
        office = concierge.kb.offices[service.office_ids[0]].name
    elif ward:
        offices = concierge.kb.offices_in(ward, service.office_kinds)
        office = offices[0].name if offices else None
    return counter, office


def evaluate(concierge: Concierge, path: Path, k: int = 10) -> EvalResult:
    result = EvalResult()
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        result.total += 1
        if item["entry"] is None:  # should not be answered
            answer = concierge.answer(item["q"], item.get("ward"))
            result.reciprocal_ranks += answer.unresolved
            result.entry_top1 += answer.unresolved
            result.top1 += answer.unresolved
            if not answer.unresolved:
                result.misses.append({**item, "got": answer.entry, "confidence": answer.confidence})
            continue
        ranked = [h.doc.id for h in concierge.retriever.search(item["q"], k=k)]
        if item["entry"] in ranked:
            result.reciprocal_ranks += 1.0 / (ranked.index(item["entry"]) + 1)
        answer = concierge.answer(item["q"], item.get("ward"))
        counter, office = _expected(concierge, item["entry"], item.get("ward"))
        # Right when the expected entry answered, or, for a procedure, when the answer (e.g. a
        # related FAQ) names the same counter and office: that is what the resident needs.
        same_place = counter is not None and answer.counter == counter
        ok = (answer.entry == item["entry"] or same_place) and (
            (counter is None or answer.counter == counter) and (office is None or answer.office == office)
        )
        result.entry_top1 += answer.entry == item["entry"]
        if ok:
            result.top1 += 1
        else:
            result.misses.append(
                {
                    **item,
                    "got": answer.entry,
                    "counter": answer.counter,
                    "office": answer.office,
                    "confidence": answer.confidence,
                }
            )
    return result
