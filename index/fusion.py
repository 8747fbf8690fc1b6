"""One ranking over several collections: each collection's hybrid list, fused by reciprocal rank.

Every collection decides for itself whether it covers the question (index.coverage, on its own passages): the
passages of a collection that does not are left out, so an off-topic question is refused however
many collections it goes to, and one collection's noise never fills another's answer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING

from index.retriever import HybridRetriever
from index.rrf import fuse
from index.types import Retrieval

if TYPE_CHECKING:
    from index.filters import Filter
    from index.protocols import Embedder
    from index.store import VectorStore


class FusedRetriever:
    """Searches several collections (name → its retriever) as one; one collection is passed through as it ranks."""

    def __init__(self, retrievers: Mapping[str, HybridRetriever], rrf_k: int) -> None:
        if not retrievers:
            raise ValueError("a fused retriever needs at least one collection")
        self.retrievers = dict(retrievers)
        self.rrf_k = rrf_k

    @property
    def names(self) -> list[str]:
        return list(self.retrievers)

    @property
    def embedder(self) -> Embedder:
        return next(iter(self.retrievers.values())).embedder

    @property
    def store(self) -> VectorStore:
        """The first collection's store (its location names the Chroma store all collections share)."""
        return next(iter(self.retrievers.values())).store  # type: ignore[return-value]

    def refresh(self) -> None:
        for retriever in self.retrievers.values():
            retriever.refresh()

    def search(
        self,
        query: str,
        k: int | None = None,
        *,
        lexical: bool = True,
        dense: bool = True,
        where: Filter | None = None,
    ) -> Retrieval:
        # Several collections share one embedding of the question; one embeds it itself, beside its BM25 side.
        vector = self.embedder.encode_queries([query])[0] if dense and len(self.retrievers) > 1 else None
        results = {
            name: retriever.search(query, k, lexical=lexical, dense=dense, where=where, vector=vector)
            for name, retriever in self.retrievers.items()
        }
        if len(results) == 1:
            name, only = next(iter(results.items()))
            return dataclasses.replace(only, passages=[dataclasses.replace(p, collection=name) for p in only.passages])
        covered = {name: r for name, r in results.items() if r.covered}
        # The collection whose evidence stands highest above its own floor speaks for the whole (refusal included).
        lead = max(covered or results, key=lambda name: results[name].evidence - results[name].floor)
        passages = {(name, p.id): p for name, retrieval in covered.items() for p in retrieval.passages}
        rankings = [([(name, p.id) for p in retrieval.passages], 1.0) for name, retrieval in covered.items()]
        scores = fuse(rankings, self.rrf_k)
        ranked = sorted(scores, key=lambda key: (scores[key], passages[key].similarity or -1.0), reverse=True)[
            : k or self._k
        ]
        fused = [dataclasses.replace(passages[key], score=scores[key], collection=key[0]) for key in ranked]
        best = max(r.best_similarity for r in results.values())
        lead_retrieval = results[lead]
        return Retrieval(
            fused, best, lead_retrieval.evidence, lead_retrieval.floor, bool(fused), lead_retrieval.coverage, vector
        )

    @property
    def _k(self) -> int:
        return next(iter(self.retrievers.values())).settings.k
