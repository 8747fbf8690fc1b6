"""A deterministic hashing embedder: no model, no weights, the same vector for the same text on every machine.

Each lower-cased word and character trigram inside a word is counted sublinearly and hashed (BLAKE2b, not
Python's salted ``hash``) to a signed position of a fixed-size vector; the vector is normalised to unit length.
Texts that share words point the same way, so retrieval over it finds passages by their words. It implements
``index.protocols.Embedder`` and LangChain's ``Embeddings``: the fast test tier uses it wherever the real model is
not the subject (``build(settings, embedder=HashingEmbedder())``).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter

import numpy as np
from langchain_core.embeddings import Embeddings

_WORD = re.compile(r"\w+")


class HashingEmbedder(Embeddings):
    """Word and character-trigram feature hashing into ``dimension`` signed buckets, unit length."""

    def __init__(self, dimension: int = 384) -> None:
        if dimension < 8:
            raise ValueError(f"a hashing embedder needs at least 8 dimensions, not {dimension}")
        self.dimension = dimension
        self.name = f"docbot/hashing-{dimension}"

    def _features(self, text: str) -> dict[str, float]:
        """Words (weight 1) and word-internal trigrams (0.25), each counted sublinearly (1 + ln n): a word
        repeated in a text adds a little, so "the" cannot dominate yet repeated passages stay apart."""
        counts: Counter[str] = Counter()
        for word in _WORD.findall(text.lower()):
            counts[f"w:{word}"] += 1
            padded = f"<{word}>"
            counts.update(f"c:{padded[i : i + 3]}" for i in range(len(padded) - 2))
        return {
            feature: (1.0 if feature.startswith("w:") else 0.25) * (1.0 + math.log(n)) for feature, n in counts.items()
        }

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dimension, dtype=np.float32)
        for feature, weight in self._features(text).items():
            digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
            value = int.from_bytes(digest, "little")
            vector[value % self.dimension] += weight if (value >> 63) & 1 else -weight
        norm = float(np.linalg.norm(vector))
        if norm == 0.0:  # no word at all: a fixed unit vector rather than zeros (cosine of zeros is undefined)
            vector[0] = 1.0
            return vector
        return vector / norm

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._vector(text) for text in texts]).astype(np.float32)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Questions are hashed like documents."""
        return self.encode(texts)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode_queries([text])[0].tolist()
