"""The knowledge base: YAML files under knowledge/, loaded into typed records."""

from bot.knowledge.loader import KnowledgeError, load_knowledge
from bot.knowledge.model import (
    WARDS,
    Counter,
    Faq,
    KnowledgeBase,
    Office,
    PolicyChunk,
    Referral,
    Service,
    Source,
)

__all__ = [
    "WARDS",
    "Counter",
    "Faq",
    "KnowledgeBase",
    "KnowledgeError",
    "Office",
    "PolicyChunk",
    "Referral",
    "Service",
    "Source",
    "load_knowledge",
]
