"""Count-vector features over katakana readings, so 住民票 / じゅうみんひょう / ｼﾞｭｳﾐﾝﾋｮｳ meet.

CountVectorsFeaturizer already featurizes a token's text or lemma; this subclass makes it read
the `reading` that SudachiTokenizer attaches, and changes nothing else.
"""

from __future__ import annotations

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True)
class ReadingCountVectorsFeaturizer(CountVectorsFeaturizer):
    """CountVectorsFeaturizer whose tokens are katakana readings (user text only)."""

    def _get_message_tokens_by_attribute(self, message: Message, attribute: str) -> list[str]:
        tokens = message.get(TOKENS_NAMES[attribute]) or []
        if attribute != TEXT:
            return super()._get_message_tokens_by_attribute(message, attribute)
        return [t.get("reading") or t.text for t in tokens]
