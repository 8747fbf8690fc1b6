"""Hybrid retrieval: dense search in Chroma and BM25 over the same chunks, fused by reciprocal rank.

Also a LangChain ``BaseRetriever``, so it plugs into any LangChain chain.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from threading import RLock
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, PrivateAttr, SkipValidation

from index.calibration import Calibration, evidence, sync_calibration
from index.filters import Filter, FilterTable
from index.lexical import LexicalIndex, sync_lexical
from index.protocols import Embedder, Store
from index.settings import IndexSettings
from index.store import StoredChunk

_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class Passage:
    """A retrieved chunk with where it sits in its document and how it ranked."""

    id: str
    text: str
    source: str
    title: str
    page: int | None
    start: int
    end: int
    score: float  # fused RRF score
    similarity: float | None  # cosine similarity to the query, when dense search found it
    collection: str = ""  # the collection it comes from, when retrieved through index.fusion

    @classmethod
    def from_stored(cls, chunk: StoredChunk, score: float, similarity: float | None) -> Passage:
        meta = chunk.metadata
        return cls(
            id=chunk.id,
            text=chunk.text,
            source=chunk.source,
            title=str(meta.get("title", chunk.source)),
            page=chunk.page,
            start=int(meta.get("start", 0)),
            end=int(meta.get("end", 0)),
            score=score,
            similarity=similarity,
        )


@dataclass(frozen=True, slots=True)
class Retrieval:
    passages: list[Passage]
    best_similarity: float  # highest cosine similarity among dense candidates (-1 when none)
    evidence: float  # how strongly the index bears on the query (index.calibration.evidence)
    floor: float  # the evidence this index needs to count a query as covered (index.calibration)
    covered: bool  # False: the documents do not cover the query


def _tokens(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def near_duplicate(a: str, b: str, threshold: float) -> bool:
    ta, tb = _tokens(a), _tokens(b)
    if not ta or not tb:
        return False
    return len(ta & tb) / len(ta | tb) >= threshold


class HybridRetriever(BaseRetriever):
    """Dense + BM25, fused; ``search`` returns typed passages, the LangChain API returns Documents."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    settings: IndexSettings
    # Typed against the protocols (not checked by pydantic): the real parts and any fake with the same shape.
    embedder: SkipValidation[Embedder]
    store: SkipValidation[Store]
    _lexical: LexicalIndex = PrivateAttr()
    _calibration: Calibration = PrivateAttr()
    _table: FilterTable | None = PrivateAttr(default=None)
    _lock: Any = PrivateAttr(default_factory=RLock)

    def model_post_init(self, context: Any, /) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Pick up what an index run changed (the BM25 side and the calibration are redone if out of step)."""
        lexical = sync_lexical(self.store, self.settings.lexical_dir)
        calibration = sync_calibration(self.store, self.embedder, lexical, self.settings.index_home)
        with self._lock:
            self._lexical = lexical
            self._calibration = calibration
            self._table = None

    def _mask(self, lexical: LexicalIndex, where: Filter) -> np.ndarray:
        """The rows of ``lexical``'s corpus that ``where`` keeps (the chunks' filter fields are read on the first
        filtered search after each refresh)."""
        with self._lock:
            table = self._table if self._lexical is lexical else None
        if table is None:
            metadata = {chunk_id: meta for chunk_id, _, meta in self.store.iter_all(with_text=False)}
            table = FilterTable(lexical.ids, metadata)
            with self._lock:
                if self._lexical is lexical:
                    self._table = table
        return table.mask(where)

    @property
    def floor(self) -> float:
        """The evidence (index.calibration.evidence) a query needs to count as covered: this index's own floor."""
        return self._calibration.floor

    def search(
        self,
        query: str,
        k: int | None = None,
        *,
        lexical: bool = True,
        dense: bool = True,
        where: Filter | None = None,
        vector: np.ndarray | None = None,
    ) -> Retrieval:
        """The top ``k`` passages for ``query``; ``lexical``/``dense`` off leave that side out (for comparisons:
        without the dense side nothing counts as covered). ``where``: only chunks that pass this filter, on both
        sides. ``vector``: the query's embedding, when the caller has it already."""
        settings = self.settings
        k = k or settings.k
        fetch = max(settings.fetch_k, k)
        where = None if where is None or where.empty else where
        with self._lock:
            side = self._lexical
        mask = self._mask(side, where) if where is not None and lexical else None
        if dense:
            vector = self.embedder.encode([query])[0] if vector is None else vector
            dense_hits = self.store.query(vector, fetch, where.chroma_where() if where is not None else None)
        else:
            dense_hits = []
        with self._lock:
            lexical_hits = side.search(query, fetch, mask) if lexical else []
        scores: dict[str, float] = {}
        similarity: dict[str, float] = {}
        chunks: dict[str, StoredChunk] = {}
        for rank, hit in enumerate(dense_hits):
            scores[hit.chunk.id] = settings.dense_weight / (settings.rrf_k + rank + 1)
            similarity[hit.chunk.id] = hit.similarity
            chunks[hit.chunk.id] = hit.chunk
        for rank, lex in enumerate(lexical_hits):
            scores[lex.id] = scores.get(lex.id, 0.0) + settings.lexical_weight / (settings.rrf_k + rank + 1)
        missing = [i for i in scores if i not in chunks]
        chunks.update({c.id: c for c in self.store.get(missing)})
        ranked = sorted((i for i in scores if i in chunks), key=lambda i: scores[i], reverse=True)
        passages: list[Passage] = []
        for chunk_id in ranked:
            text = chunks[chunk_id].text
            if any(near_duplicate(text, p.text, settings.duplicate_threshold) for p in passages):
                continue
            passages.append(Passage.from_stored(chunks[chunk_id], scores[chunk_id], similarity.get(chunk_id)))
            if len(passages) == k:
                break
        best = max((hit.similarity for hit in dense_hits), default=-1.0)
        with self._lock:
            found = evidence(best, self._lexical.known_share(query))
            floor = self._calibration.floor if settings.coverage == "calibrated" else -math.inf
        covered = bool(passages) and found >= floor and best >= self.settings.relevance_floor
        return Retrieval(passages, best, found, floor, covered)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[LCDocument]:
        retrieval = self.search(query)
        if not retrieval.covered:
            return []
        return [
            LCDocument(
                page_content=p.text,
                id=p.id,
                metadata={
                    "source": p.source,
                    "title": p.title,
                    "page": p.page,
                    "start": p.start,
                    "end": p.end,
                    "score": p.score,
                    "similarity": p.similarity,
                },
            )
            for p in retrieval.passages
        ]
