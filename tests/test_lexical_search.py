"""docbot's own BM25 top-k (one ``bincount`` over the query terms' rows of bm25s's score matrix) ranks as bm25s does."""

from __future__ import annotations

import random

import numpy as np
import pytest

from index.lexical import K1, B, LexicalIndex, tokenize

WORDS = [f"{stem}{ending}" for stem in ("harbour", "ferry", "granite", "quarry", "tide", "oak") for ending in ("", "s")]
FILLER = ["the", "a", "of", "and", "was", "pier", "north", "keeper", "lamp", "rope", "boat", "stone"]


def _texts(rng: random.Random, n: int) -> list[str]:
    vocabulary = WORDS + FILLER
    return [" ".join(rng.choice(vocabulary) for _ in range(rng.randint(3, 40))) for _ in range(n)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_search_ranks_as_bm25s_does(seed: int) -> None:
    rng = random.Random(seed)
    texts = _texts(rng, 400)
    index = LexicalIndex.build([f"c{i}" for i in range(len(texts))], texts)
    reference = index._retriever
    for query in [*_texts(rng, 30), "ferry ferry ferry", "granite quarries of the north", "the of a", "zzz"]:
        k = rng.choice([1, 5, 30, 500])
        hits = index.search(query, k)
        tokens = tokenize([query], index._stemmer)[0]
        expected = np.zeros(len(texts)) if not tokens else reference.get_scores(tokens)
        ranked = sorted((s for s in expected if s > 0), reverse=True)[:k]
        assert [h.score for h in hits] == pytest.approx(ranked, rel=1e-5), query
        for hit in hits:  # ties may come in another order, but each hit carries its own chunk's score
            assert hit.score == pytest.approx(float(expected[int(hit.id[1:])]), rel=1e-5)
        assert len({h.id for h in hits}) == len(hits)


def test_an_empty_index_and_an_empty_query_find_nothing() -> None:
    assert LexicalIndex.build([], []).search("ferry", 5) == []
    index = LexicalIndex.build(["a", "b"], ["ferry at the pier", "oak and granite"])
    assert index.search("the of", 5) == []
    assert [h.id for h in index.search("ferry", 5)] == ["a"]


def test_a_fragment_naming_the_term_once_does_not_outrank_a_full_chunk_naming_it_twice() -> None:
    """Chunks are cut to one target length: a short fragment (a caption, a page's last lines) gets little credit
    for its shortness (weak length normalisation, ``index.lexical.B``), so a full chunk naming the term twice wins.
    bm25s' defaults (k1 1.5, b 0.75) rank the fragment first."""
    rng = random.Random(7)
    filler = [" ".join(rng.choice(FILLER) for _ in range(40)) for _ in range(30)]
    full = " ".join(["ferry", *rng.choices(FILLER, k=19), "ferry", *rng.choices(FILLER, k=19)])
    texts = ["the ferry pier", full, *filler]
    ids = ["fragment", "full", *(f"f{i}" for i in range(len(filler)))]
    assert [h.id for h in LexicalIndex.build(ids, texts).search("ferry", 2)] == ["full", "fragment"]
    defaults = LexicalIndex.build(ids, texts, k1=1.5, b=0.75)
    assert [h.id for h in defaults.search("ferry", 2)] == ["fragment", "full"]
    assert LexicalIndex.build(ids, texts).parameters == (K1, B) and defaults.parameters == (1.5, 0.75)
    assert LexicalIndex.build([], []).parameters is None
