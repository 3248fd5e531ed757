"""Keep the on-disk index usable: build it from knowledge/, and rebuild it when it is missing or
corrupt instead of failing every question.

Several processes (action servers on one machine) may find a broken index at the same moment; a
file lock makes one of them rebuild while the others wait and then load its result.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from bot.retrieval.answer_model import AnswerModel, load_answer_model
from bot.retrieval.encoders import Encoder
from bot.retrieval.index import Retriever, build_index
from bot.settings import Settings

log = logging.getLogger(__name__)

# What a missing, truncated or garbled index raises while loading (FAISS raises RuntimeError).
UNUSABLE = (OSError, ValueError, KeyError, IndexError, RuntimeError)


@contextmanager
def _build_lock(settings: Settings) -> Iterator[None]:
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.var_dir / "index.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(settings: Settings, encoders: Sequence[Encoder], show_progress: bool = False) -> dict:
    from bot.knowledge import load_knowledge
    from bot.retrieval.documents import documents_from

    docs = documents_from(load_knowledge(settings.knowledge_dir))
    return build_index(
        docs, list(encoders), settings.index_dir, settings.cache_dir, show_progress, settings.build_workers
    )


def build_from_knowledge(
    settings: Settings, encoders: Sequence[Encoder], show_progress: bool = False
) -> dict:
    """Index the knowledge folder (re-embedding only texts that changed)."""
    with _build_lock(settings):
        return _build(settings, encoders, show_progress)


def _answer_model(settings: Settings, encoders: Sequence[Encoder]) -> AnswerModel | None:
    return load_answer_model(encoders=[e.name for e in encoders]) if settings.answer_model else None


def _retriever(settings: Settings, encoders: Sequence[Encoder]) -> Retriever:
    return Retriever(
        settings.index_dir,
        list(encoders),
        settings.retrieval_weights,
        query_cache=settings.query_cache_size,
        answer_model=_answer_model(settings, encoders),
    )


def load_or_rebuild(settings: Settings, encoders: Sequence[Encoder]) -> Retriever:
    """The index under var/, rebuilt from knowledge/ first if it cannot be loaded."""
    try:
        return _retriever(settings, encoders)
    except UNUSABLE as err:
        log.error(
            "knowledge index at %s is missing or corrupt (%s: %s); rebuilding it from %s",
            settings.index_dir,
            type(err).__name__,
            err,
            settings.knowledge_dir,
        )
    with _build_lock(settings):
        try:  # another process may have rebuilt it while this one waited for the lock
            return _retriever(settings, encoders)
        except UNUSABLE:
            stats = _build(settings, encoders)
    log.warning("rebuilt the knowledge index: %s documents in %.1fs", stats["documents"], stats["seconds"])
    return _retriever(settings, encoders)
