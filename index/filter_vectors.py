"""Narrow filters scored directly: the vectors of the chunks a filter keeps, held in memory, ranked by one matrix
product with the question's vector.

Chroma's own ``where`` first lists every chunk whose metadata pass, a cost of several unfiltered searches at
100,000 chunks even when the filter keeps a few thousand. The filter mask (index.filters.FilterTable) already names
those chunks, so their vectors are read from the store by id once, kept as one normalised matrix per filter, and a
search is ``matrix @ question`` and a partial sort: exact cosine, the same ranking Chroma's ``where`` gives.

One :class:`FilterVectors` serves one revision of the store: the retriever makes a new one whenever it rebuilds its
BM25 side for a changed store (index.follow), so a vector the store changed is never used. Memory is bounded by
``capacity`` vectors in all; the filters used least recently are dropped first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from threading import Lock

import numpy as np

from index.filters import Filter
from index.protocols import Store

#: A filter that keeps more chunks than this is not scored directly (an unfiltered search reaches it, or Chroma).
NARROW = 20_000


class FilterVectors:
    """The vectors of the chunks each recent filter keeps, for one revision of the store."""

    def __init__(self, store: Store, capacity: int) -> None:
        self._store = store
        self._capacity = capacity
        self._cached: OrderedDict[Filter, tuple[list[str], np.ndarray]] = OrderedDict()
        self._held = 0  # vectors held, all filters together
        self._lock = Lock()

    def fits(self, kept: int) -> bool:
        """Whether a filter that keeps ``kept`` chunks is scored here."""
        return 0 < kept <= min(NARROW, self._capacity)

    def nearest(
        self, where: Filter, mask: np.ndarray, ids: Sequence[str], vector: np.ndarray, n: int
    ) -> list[tuple[str, float]]:
        """The ``n`` chunks ``where`` keeps (``mask`` over the chunks ``ids``) nearest to ``vector``: (id, cosine),
        best first."""
        found, matrix = self._matrix(where, mask, ids)
        if not found:
            return []
        query = np.asarray(vector, dtype=np.float32)
        scores = matrix @ (query / (np.linalg.norm(query) or 1.0))
        n = min(n, len(found))
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(found[row], float(scores[row])) for row in top]

    def _matrix(self, where: Filter, mask: np.ndarray, ids: Sequence[str]) -> tuple[list[str], np.ndarray]:
        with self._lock:
            entry = self._cached.get(where)
            if entry is not None:
                self._cached.move_to_end(where)
                return entry
        kept = [ids[row] for row in np.flatnonzero(mask)]
        vectors = self._store.vectors(kept)  # outside the lock: other filters' searches go on meanwhile
        found = [chunk_id for chunk_id in kept if chunk_id in vectors]
        matrix = np.array([vectors[chunk_id] for chunk_id in found], dtype=np.float32).reshape(len(found), -1)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix /= np.where(norms == 0, 1.0, norms)
        entry = (found, matrix)
        with self._lock:
            if where not in self._cached:
                while self._cached and self._held + len(found) > self._capacity:
                    _, (dropped, _) = self._cached.popitem(last=False)
                    self._held -= len(dropped)
                self._cached[where] = entry
                self._held += len(found)
        return entry
