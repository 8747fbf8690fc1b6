"""Sentence vectors stored at index time (small-to-big): written with their chunk, following it through incremental
runs, replacement and removal; read back when answering, so a question is the only text embedded at question time."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings as ChromaSettings
from conftest import HASHING_COVERAGE, SEEDS

from app import build
from bot.answer.passage_sentences import PassageSentences
from bot.config import Settings
from index.hashing import HashingEmbedder
from index.sentences import sentence_id, sentence_spans
from index.store import sentences_of


class CountingEmbedder(HashingEmbedder):
    """The hashing embedder, keeping every batch of texts it was asked to embed."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return super().encode(texts)


def sentence_records(settings: Settings) -> dict[str, dict[str, object]]:
    """The sentence collection as Chroma holds it: id → metadata and vector."""
    client = chromadb.PersistentClient(
        path=str(settings.chroma_dir), settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    )
    page = client.get_collection(sentences_of(settings.collection)).get(include=["metadatas", "embeddings"])
    return {i: {**m, "vector": v} for i, m, v in zip(page["ids"], page["metadatas"], page["embeddings"], strict=True)}


def expected_sentences(settings: Settings, embedder: HashingEmbedder) -> dict[str, tuple[str, int, int]]:
    """What the sentence collection should hold for the chunks now stored: id → (chunk id, span)."""
    store = build(settings, embedder=embedder).store
    expected = {}
    for chunk_id, text, meta in store.iter_all(with_text=True):
        assert text is not None
        spans = sentence_spans(text)
        assert meta["sentences"] == len(spans)
        for n, (lo, hi) in enumerate(spans):
            expected[sentence_id(chunk_id, n)] = (chunk_id, lo, hi)
    return expected


def assert_sentences_follow_chunks(settings: Settings, embedder: HashingEmbedder) -> None:
    records = sentence_records(settings)
    expected = expected_sentences(settings, embedder)
    assert set(records) == set(expected)
    store = build(settings, embedder=embedder).store
    texts = {c.id: c.text for c in store.get(sorted({chunk for chunk, _, _ in expected.values()}))}
    for record_id, (chunk_id, lo, hi) in expected.items():
        record = records[record_id]
        assert (record["chunk_id"], record["start"], record["end"]) == (chunk_id, lo, hi)
        vector = embedder.encode([texts[chunk_id][lo:hi]])[0]
        assert float(np.dot(vector, np.asarray(record["vector"]))) > 0.999


def test_sentences_are_stored_with_their_chunks_and_follow_every_change(settings: Settings, tmp_path: Path) -> None:
    embedder = HashingEmbedder()
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tides.txt").write_text(
        "The tide rises twice a day. Spring tides come with the full moon.\n\n"
        + "Neap tides come with the quarter moons, and the range is smaller then. " * 20
    )
    (docs / "ferry.txt").write_text("The morning ferry leaves at seven. Cyclists board first on Sundays.")
    indexer = build(settings, embedder=embedder).indexer
    indexer.run([docs])
    assert_sentences_follow_chunks(settings, embedder)

    (docs / "tides.txt").write_text("Tidal bores surge up the estuary. " + (docs / "tides.txt").read_text())
    (docs / "ferry.txt").unlink()
    (docs / "moorings.txt").write_text("Visitors' moorings are the yellow buoys. They cost ten pounds a night.")
    report = build(settings, embedder=embedder).indexer.run([docs])
    assert report.updated == ["tides.txt"] and report.removed == ["ferry.txt"] and report.added == ["moorings.txt"]
    assert_sentences_follow_chunks(settings, embedder)

    build(settings, embedder=embedder, rebuild=True).indexer.run([docs])
    assert_sentences_follow_chunks(settings, embedder)


def test_a_failed_run_takes_its_sentences_back(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedder = HashingEmbedder()
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The keeper trims the wick at dusk. Fog signals sound every thirty seconds.")
    build(settings, embedder=embedder).indexer.run([docs])
    before = set(sentence_records(settings))
    (docs / "b.txt").write_text("Cargo volumes grew by a tenth. The breakwater repairs finish in spring.")
    services = build(settings, embedder=embedder)

    def failing_write(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the store went away")

    monkeypatch.setattr(services.store._collection, "upsert", failing_write)  # after the sentences were written
    with pytest.raises(Exception, match="the index is as it was"):
        services.indexer.run([docs])
    assert set(sentence_records(settings)) == before


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    seeded = Settings(data_dir=tmp_path_factory.mktemp("seeded") / "data", **HASHING_COVERAGE)
    build(seeded, embedder=HashingEmbedder()).indexer.run([SEEDS])
    return seeded


def test_the_extractive_answer_embeds_the_question_once_and_nothing_else(seeded: Settings) -> None:
    embedder = CountingEmbedder()
    bot = build(seeded, embedder=embedder).bot
    embedder.calls.clear()
    question = "What did the coalition forces resume in Iraq?"
    answer = bot.ask(question)
    assert not answer.refused and answer.citations
    assert embedder.calls == [[question]]


def test_passage_sentences_come_from_the_index_or_are_embedded_when_it_has_none(seeded: Settings) -> None:
    embedder = CountingEmbedder()
    services = build(seeded, embedder=embedder)
    passages = services.retriever.search("coalition air strikes in Iraq").passages
    assert all(p.sentences == len(sentence_spans(p.text)) for p in passages)
    embedder.calls.clear()
    stored = PassageSentences.of(passages, services.store, embedder)
    assert embedder.calls == []
    older = [dataclasses.replace(p, sentences=0) for p in passages]  # as in an index made before sentence vectors
    embedded = PassageSentences.of(older, services.store, embedder)
    assert [len(batch) for batch in embedder.calls] == [len(stored.texts)]
    assert stored.candidates == embedded.candidates and stored.texts == embedded.texts
    assert np.allclose(stored.vectors, embedded.vectors, atol=1e-5)


@pytest.mark.parametrize("weight", [None, 1.0], ids=["default", "1.0"])
def test_sentence_ranking_joins_the_fusion_when_weighted(seeded: Settings, weight: float | None) -> None:
    """Weighted by default (0.5), or as set: the chunk of the best-matching sentence gains weight / (rrf_k + 1)."""
    embedder = HashingEmbedder()
    plain = build(seeded.model_copy(update={"sentence_weight": 0.0}), embedder=embedder).retriever
    settings = seeded if weight is None else seeded.model_copy(update={"sentence_weight": weight})
    assert settings.sentence_weight > 0
    weighted = build(settings, embedder=embedder).retriever
    query = "coalition air strikes in Iraq"
    (best_sentence_chunk,) = weighted.store.sentence_chunks(embedder.encode([query])[0], 1)
    old = {p.id: p.score for p in plain.search(query, 10).passages}
    score = {p.id: p.score for p in weighted.search(query, 10).passages}
    assert best_sentence_chunk in score
    bonus = settings.sentence_weight / (settings.rrf_k + 1)
    assert score[best_sentence_chunk] == pytest.approx(old.get(best_sentence_chunk, 0.0) + bonus)
