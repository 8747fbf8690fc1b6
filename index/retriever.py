"""Hybrid retrieval: dense search in Chroma and BM25 over the same chunks, fused by reciprocal rank (and, when one is
configured, reranked by a cross-encoder: index.rerank).

Also a LangChain ``BaseRetriever``, so it plugs into any LangChain chain.
"""

from __future__ import annotations

import math
import re
from concurrent.futures import ThreadPoolExecutor
from threading import RLock, Thread
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, PrivateAttr, SkipValidation

from index.coverage import FLOOR, evidence
from index.filter_vectors import FilterVectors
from index.filters import Filter, FilterTable
from index.follow import StoreFollower
from index.lexical import LexicalIndex, sync_lexical
from index.protocols import Embedder, Reranker, Store
from index.rerank import rerank, reranker_from_settings
from index.rrf import fuse
from index.settings import IndexSettings
from index.store import StoredChunk
from index.term_support import term_support
from index.types import Coverage, Passage, Retrieval

_WORD = re.compile(r"\w+")
#: A filter's dense search looks this many times deeper than the share of chunks it keeps asks for ...
OVERFETCH = 3
#: ... when that is at most this deep; else the kept chunks are scored directly, or Chroma filters (see _dense).
MAX_OVERFETCH = 1000
#: Sentences fetched for each chunk wanted when chunks are ranked by their best sentence (a chunk has several).
SENTENCES_PER_CHUNK = 4
#: Threads that run a search's BM25 side and its sentences' query while the calling thread embeds the question and
#: queries the chunks (ONNX Runtime, Chroma and numpy release the GIL while they compute, so the parts overlap).
SIDE_THREADS = 8


#: The passages a question's term support is measured on.
SUPPORT_PASSAGES = 3


def passage_of(chunk: StoredChunk, score: float, similarity: float | None) -> Passage:
    """The passage a stored chunk is, ranked ``score`` (fused RRF) and ``similarity`` close to the query."""
    meta = chunk.metadata
    return Passage(
        id=chunk.id,
        text=chunk.text,
        source=chunk.source,
        title=str(meta.get("title", chunk.source)),
        page=chunk.page,
        start=int(meta.get("start", 0)),
        end=int(meta.get("end", 0)),
        score=score,
        similarity=similarity,
        sentences=int(meta.get("sentences", 0)),
    )


def _tokens(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def near_duplicate(a: str, b: str, threshold: float) -> bool:
    return _overlap_at_least(_tokens(a), _tokens(b), threshold)


def _overlap_at_least(ta: set[str], tb: set[str], threshold: float) -> bool:
    """The word sets' Jaccard overlap is ``threshold`` or more (never for an empty set)."""
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
    #: Orders the first ``rerank_candidates`` fused passages (default: the one the settings configure, if any).
    reranker: SkipValidation[Reranker | None] = None
    _lexical: LexicalIndex = PrivateAttr()
    _table: FilterTable | None = PrivateAttr(default=None)
    _vectors: FilterVectors = PrivateAttr()
    _lock: Any = PrivateAttr(default_factory=RLock)
    _follower: StoreFollower = PrivateAttr()
    # Threads start at the first search that needs one (ThreadPoolExecutor starts them on demand).
    _side_queries: ThreadPoolExecutor = PrivateAttr(
        default_factory=lambda: ThreadPoolExecutor(SIDE_THREADS, thread_name_prefix="search-side")
    )

    def model_post_init(self, context: Any, /) -> None:
        if self.reranker is None and self.settings.reranking:
            self.reranker = reranker_from_settings(self.settings)
        self._follower = StoreFollower(self.store.revision, self._sync, self.settings.store_check_interval_s)
        self.refresh()

    def refresh(self) -> None:
        """Pick up what an index run changed, now (the BM25 side is redone if out of step)."""
        self._follower.sync()

    def follow(self) -> Thread | None:
        """Check, in the background and at most every ``store_check_interval_s``, whether the store changed through
        another process, and rebuild the BM25 side if so; never waits. Returns the check's thread, if one started."""
        return self._follower.poll()

    def _sync(self) -> None:
        """Bring the BM25 side in line with the store; swap it and what derives from the store in together."""
        lexical = sync_lexical(self.store, self.settings.lexical_dir)
        with self._lock:
            self._lexical = lexical
            self._table = None
            self._vectors = FilterVectors(self.store, self.settings.filter_vectors)

    def _table_for(self, lexical: LexicalIndex) -> FilterTable:
        """The filter fields of ``lexical``'s corpus (read from the store on the first filtered search after each
        change of the index)."""
        with self._lock:
            table = self._table if self._lexical is lexical else None
        if table is None:
            metadata = {chunk_id: meta for chunk_id, _, meta in self.store.iter_all(with_text=False)}
            table = FilterTable(lexical.ids, metadata, self.settings.filter_cache_mb * 1024 * 1024)
            with self._lock:
                if self._lexical is lexical:
                    self._table = table
        return table

    def _dense(
        self,
        vector: np.ndarray,
        fetch: int,
        where: Filter | None,
        found: tuple[LexicalIndex, FilterTable, np.ndarray, FilterVectors] | None,
    ) -> list[tuple[str, float]]:
        """The ``fetch`` nearest chunks that pass ``where``: (id, cosine similarity), best first.

        ``found``: the BM25 side the filter's table was built for, the table, the filter's mask over that side's
        chunks and the kept chunks' vectors. A filter that keeps a good share of the chunks is applied to a deeper
        unfiltered search. A narrow one (at most index.filter_vectors.NARROW chunks) scores the vectors of the
        chunks it keeps directly, read once and kept. Only what fits neither goes to Chroma's own ``where``, which
        first lists every chunk that passes: several times an unfiltered search on a large index.
        """
        if where is None or found is None:
            return self.store.nearest(vector, fetch)
        lexical, table, mask, vectors = found
        kept_count = int(mask.sum())
        if kept_count == 0:
            return []
        depth = math.ceil(OVERFETCH * fetch * mask.size / kept_count)
        if depth <= MAX_OVERFETCH:
            rows = table.rows
            nearest = self.store.nearest(vector, depth)
            kept = [(i, sim) for i, sim in nearest if i in rows and mask[rows[i]]][:fetch]
            if len(kept) == fetch or len(nearest) < depth:
                return kept
        if vectors.fits(kept_count):
            return vectors.nearest(where, mask, lexical.ids, vector, fetch)
        return self.store.nearest(vector, fetch, where.chroma_where())

    @property
    def floor(self) -> float:
        """The evidence (index.coverage.evidence) a query needs to count as covered (-inf: coverage = floor, only
        ``relevance_floor`` decides)."""
        return FLOOR if self.settings.coverage == "evidence" else -math.inf

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
        self.follow()
        settings = self.settings
        k = k or settings.k
        fetch = max(settings.fetch_k, k)
        where = None if where is None or where.empty else where
        with self._lock:
            side, vectors = self._lexical, self._vectors
        table = self._table_for(side) if where is not None else None
        mask = table.mask(where) if table is not None and where is not None else None
        found = (side, table, mask, vectors) if table is not None and mask is not None else None
        lexical_search = self._side_queries.submit(side.search, query, fetch, mask) if lexical else None
        if dense:
            vector = self.embedder.encode_queries([query])[0] if vector is None else vector
            # Stored sentences carry no filter fields: with a filter they would bring unfiltered chunks in.
            sentences = (
                self._side_queries.submit(self._sentence_ranking, vector, fetch)
                if where is None and settings.sentence_weight
                else None
            )
            dense_hits = self._dense(vector, fetch, where, found)
            sentence_ranking = sentences.result() if sentences is not None else []
        else:
            dense_hits, sentence_ranking = [], []
        lexical_hits = lexical_search.result() if lexical_search is not None else []
        similarity = dict(dense_hits)
        sides = (
            ([chunk_id for chunk_id, _ in dense_hits], settings.dense_weight),
            ([lex.id for lex in lexical_hits], settings.lexical_weight),
            (sentence_ranking, settings.sentence_weight),
        )
        scores = fuse(sides, settings.rrf_k)
        ranked = sorted(scores, key=scores.__getitem__, reverse=True)
        reranker = self.reranker
        depth = max(k, settings.rerank_candidates) if reranker is not None else k
        candidates = self._distinct_passages(ranked, scores, similarity, depth)
        best = max(similarity.values(), default=-1.0)
        # Coverage is judged on the fused order whether or not a reranker orders the passages handed on.
        support = term_support(query, [p.text for p in candidates[: min(k, SUPPORT_PASSAGES)]])
        passages = rerank(reranker, query, candidates, k) if reranker is not None else candidates
        coverage = Coverage(support, self.floor, settings.relevance_floor)
        covered = bool(passages) and coverage.covers(best)
        return Retrieval(passages, best, evidence(best, support), coverage.floor, covered, coverage, vector)

    def _sentence_ranking(self, vector: np.ndarray, fetch: int) -> list[str]:
        """Chunks in the order of their best-matching stored sentence (small-to-big)."""
        return self.store.sentence_chunks(vector, SENTENCES_PER_CHUNK * fetch)[:fetch]

    def _distinct_passages(
        self, ranked: list[str], scores: dict[str, float], similarity: dict[str, float], k: int
    ) -> list[Passage]:
        """The first ``k`` chunks of ``ranked`` that are no near-duplicate of a better one. Texts are read from the
        store a few at a time, only as far down the ranking as that takes (ids gone from the store are skipped)."""
        passages: list[Passage] = []
        words: list[set[str]] = []  # each kept passage's, made once
        window = 2 * k
        for start in range(0, len(ranked), window):
            for chunk in self.store.get(ranked[start : start + window]):
                own = _tokens(chunk.text)
                if any(_overlap_at_least(own, kept, self.settings.duplicate_threshold) for kept in words):
                    continue
                words.append(own)
                passages.append(passage_of(chunk, scores[chunk.id], similarity.get(chunk.id)))
                if len(passages) == k:
                    return passages
        return passages

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
