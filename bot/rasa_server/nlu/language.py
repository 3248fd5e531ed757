"""A `language` entity on every message, so the `language` slot is set before any action runs and
Rasa utters each response in the resident's language (its conditional variations).

The slot must be filled from the message itself: an action's slot events come after the words it
asked Rasa to utter. A button's payload (`/inform_ward{...}`) skips the pipeline and keeps the
language of the last typed message.
"""

from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import (
    ENTITIES,
    ENTITY_ATTRIBUTE_END,
    ENTITY_ATTRIBUTE_START,
    ENTITY_ATTRIBUTE_TYPE,
    ENTITY_ATTRIBUTE_VALUE,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message

from bot.wording import language_of

ENTITY = "language"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class LanguageExtractor(GraphComponent, EntityExtractorMixin):
    """`language`: `en` when most letters are Latin, else `ja` (bot.wording.language_of, the
    same test the answering core uses)."""

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> LanguageExtractor:
        return cls()

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get(TEXT) or ""
            entity = {
                ENTITY_ATTRIBUTE_TYPE: ENTITY,
                ENTITY_ATTRIBUTE_VALUE: language_of(text),
                ENTITY_ATTRIBUTE_START: 0,
                ENTITY_ATTRIBUTE_END: len(text),
            }
            found = self.add_extractor_name([entity])
            message.set(ENTITIES, message.get(ENTITIES, []) + found, add_to_output=True)
        return messages
