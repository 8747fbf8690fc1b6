"""Narrow filters scored directly (index/filter_vectors.py), fast tier: the hashing embedder, a real local Chroma
store. The ranking must be the one Chroma's own ``where`` gives, before and after a change to the index."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

import index.retriever as retriever_module
from app import Services, build
from bot.config import Settings
from index.filter_vectors import FilterVectors
from index.filters import Filter, FilterTable
from index.hashing import HashingEmbedder
from index.retriever import HybridRetriever
from index.store import VectorStore

TOPICS = ("leave", "payroll", "deploy", "oncall", "backup", "budget", "travel", "laptop", "access", "expense")
#: Words the texts are drawn from: random texts rank without near-ties, which templated ones would bring.
WORDS = [f"{topic}{n}" for topic in TOPICS for n in range(12)]
FILTERS = ("path=team-1/", "type=md", "tag=team-2,type=txt", "path=team-0/leave-0.md")
QUESTIONS = ("leave1 leave2 payroll3 deploy4", "travel5 budget6", "laptop7 backup8 access9 oncall10", "expense11")


def corpus(folder: Path, version: int = 0) -> Path:
    """Forty one-chunk files of random words in four folders, half Markdown, half plain text."""
    rng = np.random.default_rng(version)
    for team in range(4):
        for n, topic in enumerate(TOPICS):
            path = folder / f"team-{team}" / f"{topic}-{n}.{'md' if n % 2 == 0 else 'txt'}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(" ".join(rng.choice(WORDS, 30)) + ".\n", encoding="utf-8")
    return folder


@pytest.fixture
def services(tmp_path: Path) -> Services:
    services = build(Settings(data_dir=tmp_path / "data", fetch_k=4, k=4), embedder=HashingEmbedder())
    report = services.indexer.run([corpus(tmp_path / "docs")])
    assert not report.failed and services.store.count() == 40
    return services


def retriever(services: Services, filter_vectors: int) -> HybridRetriever:
    settings = services.settings.model_copy(update={"filter_vectors": filter_vectors})
    return HybridRetriever(settings=settings, embedder=services.embedder, store=services.store)


def dense(retriever: HybridRetriever, question: str, where: str) -> list[tuple[str, float]]:
    found = retriever.search(question, 4, lexical=False, where=Filter.parse(where))
    return [(p.id, p.similarity or 0.0) for p in found.passages]


def assert_same(ours: list[tuple[str, float]], chroma: list[tuple[str, float]]) -> None:
    assert [i for i, _ in ours] == [i for i, _ in chroma]
    assert np.allclose([s for _, s in ours], [s for _, s in chroma], atol=1e-5)


class CountingStore:
    """The real store, counting the chunk vectors read through ``vectors``."""

    def __init__(self, store: VectorStore) -> None:
        self.store = store
        self.read = 0

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        self.read += len(ids)
        return self.store.vectors(ids)


@pytest.fixture
def narrow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every filter skips the over-fetched unfiltered search (on a 40-chunk index it would always reach far enough),
    so the direct scoring or Chroma's where is what answers."""
    monkeypatch.setattr(retriever_module, "MAX_OVERFETCH", 0)


@pytest.mark.usefixtures("narrow")
def test_direct_scoring_ranks_as_chroma_where_does_before_and_after_a_change(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scored: list[str] = []
    nearest = FilterVectors.nearest

    def spy(self: FilterVectors, where: Filter, *args: object) -> list[tuple[str, float]]:
        scored.append(where.describe())
        return nearest(self, where, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(FilterVectors, "nearest", spy)
    ours, chroma = retriever(services, 50_000), retriever(services, 0)
    before = {(q, w): dense(ours, q, w) for q in QUESTIONS for w in FILTERS}
    for (question, where), hits in before.items():
        assert hits, (question, where)
        assert_same(hits, dense(chroma, question, where))
    assert before == {(q, w): dense(ours, q, w) for q in QUESTIONS for w in FILTERS}  # from the cached vectors
    assert len(scored) == 2 * len(before)  # ours scored every one directly; Chroma's where answered the other

    # every text changes (so does every vector), and team-1 loses a file: the cached vectors must go
    corpus(tmp_path / "docs", version=1)
    (tmp_path / "docs" / "team-1" / "payroll-1.txt").unlink()
    report = services.indexer.run([tmp_path / "docs"])
    assert not report.failed and services.store.count() == 39
    ours.refresh()
    chroma.refresh()
    for question in QUESTIONS:
        for where in FILTERS:
            after = dense(ours, question, where)
            assert_same(after, dense(chroma, question, where))
            assert after != before[(question, where)], (question, where)
    kept = ours.search("payroll1 payroll2", 10, lexical=False, where=Filter.parse("path=team-1/")).passages
    assert len(kept) == 9 and "team-1/payroll-1.txt" not in {p.source for p in kept}


@pytest.mark.usefixtures("narrow")
def test_a_filter_with_nothing_kept_or_too_many_kept_still_answers(services: Services) -> None:
    ours, chroma = retriever(services, 5), retriever(services, 0)  # room for five vectors: team-1 keeps ten
    assert dense(ours, "leave days", "path=nowhere/") == []
    assert_same(dense(ours, "leave days", "path=team-1/"), dense(chroma, "leave days", "path=team-1/"))


def test_the_least_recently_used_filter_is_dropped_first(services: Services) -> None:
    store = CountingStore(services.store)
    vectors = FilterVectors(store, capacity=20)  # type: ignore[arg-type]
    table = FilterTable(services.store.ids(), {i: m for i, _, m in services.store.iter_all(with_text=False)})
    question = services.embedder.encode(["leave days"])[0]

    def use(text: str) -> int:
        read, where = store.read, Filter.parse(text)
        hits = vectors.nearest(where, table.mask(where), list(table.rows), question, 3)
        assert len(hits) == 3 and hits == sorted(hits, key=lambda hit: -hit[1])
        return store.read - read

    assert use("path=team-0/") == 10 and use("path=team-1/") == 10
    assert use("path=team-0/") == 0  # both fit: nothing read again
    assert use("type=md") == 20  # room for twenty: team-1 (least recently used) and then team-0 go
    assert use("path=team-1/") == 10 and use("path=team-0/") == 10
