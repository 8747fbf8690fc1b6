"""Hybrid retrieval over a real index: fusion, dense-only vs hybrid, near-duplicates, the relevance floor, LangChain."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from answer_fixtures import (
    BEEKEEPING,
    PRINTER_ERRORS,
    SEED_DOC,
    bot_with,
    build_retriever,
    clean_settings,
    write_docs,
)
from langchain_core.documents import Document

from app import build
from bot.answer.chat import REFUSAL
from bot.eval.retrievers import compare_retrievers
from index.coverage import FLOOR
from index.embeddings import Embedder
from index.loaders import normalise_text
from index.retriever import HybridRetriever


@pytest.fixture(scope="module")
def retriever(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> HybridRetriever:
    """Seeds, printer error codes and bees, cut paragraph by paragraph."""
    root = tmp_path_factory.mktemp("retrieval")
    docs = write_docs(root / "docs", **PRINTER_ERRORS, **{"beekeeping.txt": BEEKEEPING})
    settings = clean_settings(root / "data", chunk_size=250, chunk_overlap=0)
    return build_retriever(settings, embedder, docs)


def _rank(retriever: HybridRetriever, query: str, needle: str, *, lexical: bool = True) -> int:
    """1-based rank of the first passage containing ``needle`` (0: not among the results)."""
    passages = retriever.search(query, 10, lexical=lexical).passages
    return next((n for n, p in enumerate(passages, start=1) if needle in p.text), 0)


def test_fused_scores_are_weighted_reciprocal_ranks(retriever: HybridRetriever, embedder: Embedder) -> None:
    query = "What does error code E-1002 mean?"
    # the chunk rankings alone: the sentence ranking's share of the fusion is tests/test_sentence_vectors.py's
    changed = {"dense_weight": 0.7, "lexical_weight": 1.3, "rrf_k": 10, "sentence_weight": 0.0}
    settings = retriever.settings.model_copy(update=changed)
    weighted = HybridRetriever(settings=settings, embedder=embedder, store=retriever.store)
    fetch = settings.fetch_k
    dense = weighted.store.query(embedder.encode([query])[0], fetch)
    lexical = weighted._lexical.search(query, fetch)
    expected: dict[str, float] = {}
    for rank, hit in enumerate(dense, start=1):
        expected[hit.chunk.id] = 0.7 / (10 + rank)
    for rank, lex in enumerate(lexical, start=1):
        expected[lex.id] = expected.get(lex.id, 0.0) + 1.3 / (10 + rank)

    passages = weighted.search(query, 8).passages

    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)
    for p in passages:
        assert p.score == pytest.approx(expected[p.id])
    assert passages[0].id == max(expected, key=expected.__getitem__)
    assert {p.id for p in passages} <= set(expected)


def test_bm25_lifts_an_exact_code_that_dense_search_ranks_low(retriever: HybridRetriever) -> None:
    # all-MiniLM hardly tells "E-1002" from "E-1004"; BM25 matches the code exactly.
    dense_rank = _rank(retriever, "E-1002", "E-1002", lexical=False)
    hybrid_rank = _rank(retriever, "E-1002", "E-1002")
    assert hybrid_rank == 1
    assert dense_rank > 1


def test_dense_only_scores_follow_dense_order(retriever: HybridRetriever) -> None:
    passages = retriever.search("How long do worker bees live?", 5, lexical=False).passages
    similarities = [p.similarity for p in passages]
    assert None not in similarities
    assert similarities == sorted(similarities, reverse=True)  # type: ignore[type-var]
    assert "six weeks" in passages[0].text


def test_weights_can_turn_either_side_off(retriever: HybridRetriever, embedder: Embedder) -> None:
    only_lexical = retriever.settings.model_copy(update={"dense_weight": 0.0})
    lexical = HybridRetriever(settings=only_lexical, embedder=embedder, store=retriever.store)
    assert "E-1003" in lexical.search("E-1003 toner", 1).passages[0].text
    only_dense = retriever.settings.model_copy(update={"lexical_weight": 0.0})
    dense = HybridRetriever(settings=only_dense, embedder=embedder, store=retriever.store)
    assert [p.id for p in dense.search("E-1003 toner", 5).passages] == [
        p.id for p in retriever.search("E-1003 toner", 5, lexical=False).passages
    ]


def test_near_duplicate_passages_are_returned_once(tmp_path: Path, embedder: Embedder) -> None:
    docs = write_docs(tmp_path / "docs")
    shutil.copy(SEED_DOC, docs / "copy-of-the-article.txt")
    retriever = build_retriever(clean_settings(tmp_path / "data"), embedder, docs)
    query = "How many ISIS fighters are in Iraq?"

    raw = retriever.store.query(embedder.encode([query])[0], 4)
    assert raw[0].chunk.text == raw[1].chunk.text  # the store does hold both copies
    passages = retriever.search(query, 6).passages

    assert len(passages) == 6
    assert len({p.text for p in passages}) == len(passages)
    assert len({p.source for p in passages if "two and three thousand" in p.text}) == 1


def test_the_fixed_floor_separates_covered_from_not_covered(retriever: HybridRetriever) -> None:
    covered = retriever.search("How many eggs can a honeybee queen lay?")
    assert covered.covered and covered.evidence >= covered.floor == retriever.floor == FLOOR
    assert covered.coverage.support == 1.0  # every rare word of the question is in its first passages
    off_topic = retriever.search("Who won the football World Cup in 2014?")
    assert not off_topic.covered
    assert off_topic.evidence < off_topic.floor
    assert off_topic.passages  # still returned, for the evaluator; the bot does not use them


def test_nothing_is_measured_or_stored_for_coverage_at_index_time(tmp_path: Path, embedder: Embedder) -> None:
    settings = clean_settings(tmp_path / "data")
    docs = write_docs(tmp_path / "docs")
    services = build(settings, embedder=embedder)
    services.indexer.run([docs])
    before = services.retriever.search("How many eggs can a honeybee queen lay?")
    (docs / "beekeeping.txt").write_text(BEEKEEPING)  # a corpus that grows does not move the line
    services.indexer.run([docs])
    services.retriever.refresh()
    after = services.retriever.search("How many eggs can a honeybee queen lay?")
    assert before.floor == after.floor == FLOOR and after.covered
    assert not (settings.data_dir / "calibration.json").exists()


def test_bot_refuses_below_the_floor_and_the_floor_is_a_setting(retriever: HybridRetriever) -> None:
    question = "How many eggs can a honeybee queen lay?"
    answer = bot_with(retriever).ask("Who won the football World Cup in 2014?")
    assert answer.refused and answer.text == REFUSAL and answer.citations == []

    strict = retriever.settings.model_copy(update={"relevance_floor": 0.99})  # a fixed minimum on top
    strict_retriever = HybridRetriever(settings=strict, embedder=retriever.embedder, store=retriever.store)
    assert bot_with(strict_retriever).ask(question).refused
    assert "two thousand eggs" in bot_with(retriever).ask(question).text


def test_langchain_invoke_returns_documents_with_metadata(retriever: HybridRetriever) -> None:
    documents = retriever.invoke("How long do worker bees live?")
    assert documents and all(isinstance(d, Document) for d in documents)
    top = documents[0]
    assert "six weeks" in top.page_content
    assert top.metadata["source"] == "beekeeping.txt"
    assert top.metadata["title"]
    start, end = top.metadata["start"], top.metadata["end"]
    assert normalise_text(BEEKEEPING)[start:end] == top.page_content
    assert len(documents) == retriever.settings.k
    assert retriever.invoke("Who won the football World Cup in 2014?") == []


def test_retrievers_are_compared_side_by_side(retriever: HybridRetriever) -> None:
    queries = [("What does error code E-1002 mean?", "E-1002"), ("How many eggs can a honeybee queen lay?", "eggs")]
    compared = compare_retrievers(retriever, queries, ("hybrid", "dense", "bm25"), 10)
    assert list(compared) == ["hybrid", "dense", "bm25"]
    for row in compared.values():
        assert row["questions"] == 2 and 0.0 <= row["hit@1"] <= row["hit@5"] <= row["hit@10"] <= 1.0
    assert compared["bm25"]["hit@1"] == 1.0  # an exact code and plain words: BM25 finds both first
    bm25_only = retriever.search("What does error code E-1002 mean?", 5, dense=False)
    assert not bm25_only.covered and bm25_only.passages and all(p.similarity is None for p in bm25_only.passages)
