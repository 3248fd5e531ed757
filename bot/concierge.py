"""The answering core used by the actions: knowledge + index + gazetteer + composer.

Loaded once per process (encoders take a second or two); a rebuilt index is picked up on the
next question without a restart.
"""

from __future__ import annotations

import logging
import threading

from bot.answer import Answer, AnswerComposer
from bot.japanese import is_mostly_latin
from bot.knowledge import KnowledgeBase, load_knowledge
from bot.places import Gazetteer, PlaceMatch
from bot.retrieval.encoders import make_encoder
from bot.retrieval.index import Retriever
from bot.settings import Settings, get_settings

log = logging.getLogger(__name__)


class Concierge:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.encoders = [make_encoder(spec, settings.encoder_threads) for spec in settings.encoders]
        self.retriever = Retriever(settings.index_dir, self.encoders, settings.retrieval_weights)
        self._set_knowledge(load_knowledge(settings.knowledge_dir))

    def _set_knowledge(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self.gazetteer = Gazetteer(kb)
        self.composer = AnswerComposer(kb, self.settings.answer_min_score)

    def refresh(self) -> None:
        """Swap in a rebuilt index and the knowledge it was built from."""
        if self.retriever.reload_if_changed():
            self._set_knowledge(load_knowledge(self.settings.knowledge_dir))
            log.info("reloaded the knowledge index")

    def find_place(self, text: str) -> PlaceMatch | None:
        return self.gazetteer.find(text)

    def answer(self, text: str, ward: str | None = None, intent: str | None = None) -> Answer:
        self.refresh()
        query = text[: self.settings.max_message_chars]
        places = self.gazetteer.names_in(query)  # they pick the ward, not the topic
        lang = "en" if is_mostly_latin(query) else "ja"
        if intent == "ask_hours":
            hits = self.retriever.search(query, k=1, kinds=("service", "office"), places=places)
            hit = hits[0] if hits else None
            if hit is None or hit.confidence < self.settings.answer_min_score:
                return self.composer.hours(ward, lang)
            return self.composer.compose(hit, ward, intent, lang)
        hits = self.retriever.search(query, k=1, places=places)
        return self.composer.compose(hits[0] if hits else None, ward, intent, lang)


_instance: Concierge | None = None
_lock = threading.Lock()


def get_concierge() -> Concierge:
    global _instance
    with _lock:
        if _instance is None:
            _instance = Concierge(get_settings())
        return _instance
