"""Embeddings computed once and kept under ``bench/.cache``: the 100k-chunk index is built from them.

Keys are hashes of the chunk text, so any corpus that repeats a text reuses its vector. Vectors come
from docbot's own :class:`~index.embeddings.Embedder` at its default precision (bfloat16 where the CPU
has it natively), or are read back from an index it built.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bot.config import Settings
from index.embeddings import Embedder
from index.store import PAGE, sentences_of

#: New vectors are written to disk in shards of this many, so an interrupted run keeps its work.
SHARD = 5000


def text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


class VectorCache:
    """text hash → unit vector, persisted as ``shard-*.npz`` files in one folder per model."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._rows: dict[bytes, np.ndarray] = {}
        self._unsaved: dict[bytes, np.ndarray] = {}
        folder.mkdir(parents=True, exist_ok=True)
        for shard in sorted(folder.glob("shard-*.npz")):
            with np.load(shard) as data:
                for key, vector in zip(data["keys"], data["vectors"], strict=True):
                    self._rows[bytes(key)] = vector

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, key: bytes) -> bool:
        return key in self._rows

    def __getitem__(self, key: bytes) -> np.ndarray:
        return self._rows[key]

    def add(self, pairs: Iterable[tuple[bytes, np.ndarray]]) -> None:
        for key, vector in pairs:
            if key not in self._rows:
                self._rows[key] = vector
                self._unsaved[key] = vector
        if len(self._unsaved) >= SHARD:
            self.save()

    def save(self) -> None:
        if not self._unsaved:
            return
        number = len(list(self.folder.glob("shard-*.npz")))
        keys = np.frombuffer(b"".join(self._unsaved), dtype=np.uint8).reshape(-1, 16)
        vectors = np.stack(list(self._unsaved.values())).astype(np.float32)
        staging = self.folder / f".shard-{number:05d}.tmp.npz"
        np.savez(staging, keys=keys, vectors=vectors)
        staging.replace(self.folder / f"shard-{number:05d}.npz")
        self._unsaved.clear()


class CachedEmbedder(Embedder):
    """docbot's embedder, answering from the cache where it can and counting the corpus vectors it computes."""

    def __init__(self, settings: Settings, cache: VectorCache) -> None:
        super().__init__(settings.embedding_model, settings.embed_batch_size, "auto")
        self.cache = cache
        self.computed = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        keys = [text_key(t) for t in texts]
        missing = [i for i, key in enumerate(keys) if key not in self.cache]
        if missing:
            fresh = super().encode([texts[i] for i in missing])
            self.cache.add((keys[i], fresh[row]) for row, i in enumerate(missing))
            self.computed += len(missing)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self.cache[key] for key in keys]).astype(np.float32)


def absorb_index(cache: VectorCache, settings: Settings) -> int:
    """Copy the vectors of an index docbot built (in ``settings.chroma_dir``) into the cache, its chunks' and their
    sentences' (keyed by the sentence text, cut from the chunk by the stored span); how many."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.PersistentClient(
        path=str(settings.chroma_dir), settings=ChromaSettings(anonymized_telemetry=False)
    )
    texts: dict[str, str] = {}
    for page in _pages(client.get_collection(settings.collection), ["documents", "embeddings"]):
        texts.update(zip(page["ids"], (text or "" for text in page["documents"]), strict=True))
        cache.add(
            (text_key(text or ""), np.asarray(vector, dtype=np.float32))
            for text, vector in zip(page["documents"], page["embeddings"], strict=True)
        )
    copied = len(texts)
    for page in _pages(client.get_collection(sentences_of(settings.collection)), ["metadatas", "embeddings"]):
        cache.add(
            (text_key(texts[str(m["chunk_id"])][int(m["start"]) : int(m["end"])]), np.asarray(v, dtype=np.float32))
            for m, v in zip(page["metadatas"], page["embeddings"], strict=True)
            if str(m["chunk_id"]) in texts
        )
        copied += len(page["ids"])
    cache.save()
    return copied


def _pages(collection: Any, include: list[str]) -> Iterator[Any]:
    offset = 0
    while True:
        page = collection.get(include=include, limit=PAGE, offset=offset)
        if not page["ids"]:
            return
        yield page
        offset += len(page["ids"])
