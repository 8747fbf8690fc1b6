"""Weighted reciprocal-rank fusion: the one way docbot merges rankings (the sides of one collection's hybrid search,
and several collections' results)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def fuse(rankings: Iterable[tuple[Sequence[K], float]], rrf_k: int) -> dict[K, float]:
    """Each item's score: the sum, over the ``(ranking, weight)`` pairs that rank it, of ``weight / (rrf_k + rank)``
    with ranks from 1 (rankings are added in the order given)."""
    scores: dict[K, float] = {}
    for ranking, weight in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (rrf_k + rank)
    return scores
