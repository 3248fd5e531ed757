"""Any FAQ collection in the LocalgovFAQ JSON form, searched by the same engine as knowledge/.

CORPUS.json is {doc_id: "Question: …\\nAnswer: …"}. Each entry becomes a document with two
views: the question (embedded like a resident's question) and question + answer (a passage).
The index lives under var/faq/<hash of the corpus>/, so a second run only loads it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from bot.japanese import sentences
from bot.retrieval.documents import Document, View
from bot.retrieval.encoders import Encoder
from bot.retrieval.index import DENSE_FIELDS, FIELD_CHANNELS, Retriever, build_index


def parse_entry(raw: str) -> tuple[str, str]:
    """Split "Question: …\\nAnswer: …" into question and answer (tolerating either missing)."""
    text = raw.strip()
    question, answer = text, ""
    if text.startswith("Question:"):
        body = text[len("Question:") :]
        question, _, answer = body.partition("\nAnswer:")
    return question.strip(), answer.strip()


# Which views an entry gets; part of the index's cache key, so a change rebuilds it.
VIEWS = "question, question+answer, answer sentences"


def documents_from_faq(corpus: dict[str, str]) -> list[Document]:
    docs = []
    for doc_id, raw in corpus.items():
        question, answer = parse_entry(raw)
        views = [View(question, "query")]
        if answer:
            views.append(View(f"{question}\n{answer}", "passage"))
            parts = sentences(answer)
            if len(parts) > 1:
                # BM25 then counts the answer's words twice: on dev, hybrid MRR@10 0.666 against
                # 0.654 with the sentences left out of BM25 (0.645 without sentence views at all)
                views += [View(sentence, "passage") for sentence in parts]
        docs.append(Document(f"faq:{doc_id}", "faq", question, tuple(views)))
    return docs


def faq_fields(encoders: list[Encoder]) -> tuple[str, ...]:
    """Channels an FAQ collection adds to the knowledge index's (see FIELD_CHANNELS): each encoder's
    question-view and passage-view cosines apart, words expanded by Sudachi synonym groups, character
    bigrams, and BM25 over the question alone. Their weights are settings.faq_retrieval_weights."""
    return (*FIELD_CHANNELS, *(f"{e.name}:{field}" for e in encoders for field in DENSE_FIELDS))


def faq_retriever(
    corpus_path: Path, encoders: list[Encoder], var_dir: Path, weights: dict[str, float] | None = None
) -> Retriever:
    """Build (once per corpus content) and load the index of an FAQ collection."""
    raw = corpus_path.read_bytes()
    index_dir = var_dir / "faq" / hashlib.sha1(raw + VIEWS.encode()).hexdigest()[:16]
    names = sorted(e.name for e in encoders)
    manifest = index_dir / "manifest.json"
    built = json.loads(manifest.read_text())["encoders"] if manifest.exists() else {}
    if sorted(built) != names:
        corpus = json.loads(raw.decode("utf-8"))
        build_index(
            documents_from_faq(corpus), encoders, index_dir, cache_dir=var_dir / "cache", show_progress=True
        )
    return Retriever(index_dir, encoders, weights, fields=faq_fields(encoders))
