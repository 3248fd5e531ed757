"""SudachiPy tokenizer for Rasa: Japanese has no spaces, so WhitespaceTokenizer cannot be used.

Each token keeps offsets into the original message (for entity extraction) and carries three
views of the word: `text` (NFKC, lower case), `lemma` (Sudachi normalized form) and the
`reading` (katakana), which `ReadingCountVectorsFeaturizer` turns into features.

Only the first `max_tokens` morphemes go on to the featurizers and DIET: what a message asks is
said early, and a 2,000-character message would otherwise cost the Rasa server seconds of its
event loop and hundreds of MB (DIET's attention grows with the square of the tokens). The whole
text still reaches the tracker and the actions.
"""

from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.tokenizers.tokenizer import Token, Tokenizer
from rasa.shared.nlu.training_data.message import Message

from bot.japanese import default_analyzer


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class SudachiTokenizer(Tokenizer):
    """Splits Japanese text into Sudachi morphemes (split mode C by default)."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            "intent_tokenization_flag": False,
            "intent_split_symbol": "_",
            "token_pattern": None,
            "prefix_separator_symbol": None,
            "split_mode": "C",
            "max_tokens": 128,
        }

    @staticmethod
    def required_packages() -> list[str]:
        return ["sudachipy"]

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self._analyzer = default_analyzer(config["split_mode"])  # shared with the masking check
        self._max_tokens = int(config["max_tokens"])

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SudachiTokenizer:
        return cls(config)

    def tokenize(self, message: Message, attribute: str) -> list[Token]:
        text = message.get(attribute) or ""
        tokens = [
            Token(m.text, m.start, m.end, data={"reading": m.reading, "pos": m.pos}, lemma=m.normalized)
            for m in self._analyzer.analyze(text)[: self._max_tokens]
        ]
        return self._apply_token_pattern(tokens)
