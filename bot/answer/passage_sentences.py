"""The sentences of a turn's passages with their vectors: read from the index, which embedded them when it stored
the chunk, and embedded here only for a chunk the index has none for (an index made before sentence vectors)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from index.protocols import Embedder, Store
from index.sentences import Span, sentence_id, sentence_spans
from index.types import Passage


@dataclass(frozen=True, slots=True)
class PassageSentences:
    """Every sentence of the passages, passage after passage: (passage index, span in its text), text and vector."""

    candidates: list[tuple[int, Span]]
    texts: list[str]
    vectors: np.ndarray  # one unit-length row a sentence

    @classmethod
    def of(cls, passages: list[Passage], store: Store, embedder: Embedder) -> PassageSentences:
        candidates: list[tuple[int, Span]] = []
        ids: list[str | None] = []
        for i, passage in enumerate(passages):
            spans = sentence_spans(passage.text)
            stored = passage.sentences == len(spans)  # else the sentences were cut otherwise when it was indexed
            candidates += [(i, span) for span in spans]
            ids += [sentence_id(passage.id, n) if stored else None for n in range(len(spans))]
        texts = [passages[i].text[lo:hi] for i, (lo, hi) in candidates]
        found = store.sentence_vectors([i for i in ids if i is not None])
        missing = [n for n, i in enumerate(ids) if i not in found]
        vectors = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
        for n, record_id in enumerate(ids):
            if record_id in found:
                vectors[n] = found[record_id]
        if missing:
            vectors[missing] = embedder.encode([texts[n] for n in missing])
        return cls(candidates, texts, vectors)
