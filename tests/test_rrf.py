"""Reciprocal-rank fusion, written once (index/rrf.py) for both the hybrid search and several collections."""

from __future__ import annotations

import pytest

from index.rrf import fuse


def test_fused_scores_sum_weight_over_rank_across_rankings() -> None:
    scores = fuse([(["a", "b"], 1.0), (["b", "c"], 0.5), ([], 2.0)], rrf_k=60)
    assert scores["a"] == pytest.approx(1 / 61)
    assert scores["b"] == pytest.approx(1 / 62 + 0.5 / 61)
    assert scores["c"] == pytest.approx(0.5 / 62)
    assert sorted(scores, key=scores.__getitem__, reverse=True) == ["b", "a", "c"]


def test_keys_of_any_hashable_kind_and_a_zero_weight_side() -> None:
    scores = fuse([([("hr", "1"), ("eng", "1")], 1.0), ([("eng", "1")], 0.0)], rrf_k=0)
    assert scores == {("hr", "1"): 1.0, ("eng", "1"): 0.5}
