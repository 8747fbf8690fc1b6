"""Stronger models where a deployment has them (issue 29), offline, against a local fake model server
(tests/fake_model_server.py): embeddings from an OpenAI-compatible endpoint with query and passage prompts, a
rerank endpoint in the shapes of Text Embeddings Inference and Cohere-compatible servers, the index recording the
model and prompts, and ``docbot eval --reranker``. The tiny local models' tests are in test_models_tiny.py.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from answer_fixtures import clean_settings
from conftest import EVAL_SET, HASHING_COVERAGE, SEEDS
from fake_model_server import FakeModelServer, fake_model_server
from helpers import BEES, FERRY, LEAVE, indexed, three_subjects
from typer.testing import CliRunner

from app import build
from bot.cli import app as cli
from bot.config import Settings
from bot.settings_errors import SettingsError, load_settings
from index.embedding_endpoint import EndpointEmbedder, endpoint_url
from index.errors import EmbeddingModelError, IndexMismatchError
from index.hashing import HashingEmbedder
from index.prompts import Prompts
from index.rerank import EndpointReranker, rerank, scores_of
from index.retriever import HybridRetriever
from index.types import Passage


@pytest.fixture(scope="module")
def server() -> Iterator[FakeModelServer]:
    with fake_model_server() as fake:
        yield fake


@pytest.fixture(autouse=True)
def _healthy(server: FakeModelServer) -> None:
    server.delay_s, server.fail = 0.0, False


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    return three_subjects(tmp_path / "docs")


def endpoint_settings(tmp_path: Path, server: FakeModelServer, **overrides: Any) -> Settings:
    """Settings embedding through the fake server (hashing vectors: coverage by a fixed line, as the fast tier's)."""
    values = {"embeddings_url": f"{server.url}/v1", "embedding_model": "fake-hash", **HASHING_COVERAGE, **overrides}
    return clean_settings(tmp_path / "data", **values)


# --- embeddings endpoint ----------------------------------------------------------------------------------------


def test_endpoint_embedder_sends_the_model_the_prompts_and_the_key(server: FakeModelServer) -> None:
    embedder = EndpointEmbedder(f"{server.url}/v1/", "fake-e5", prompts=Prompts("query: ", "passage: "), api_key="k1")
    server.requests.clear()
    server.authorizations.clear()
    embedder.encode(["The ferry leaves at seven."])
    embedder.encode_queries(["When does the ferry leave?"])
    assert [body["input"] for body in server.bodies("/v1/embeddings")] == [
        ["passage: The ferry leaves at seven."],
        ["query: When does the ferry leave?"],
    ]
    assert {body["model"] for body in server.bodies("/v1/embeddings")} == {"fake-e5"}
    assert server.authorizations == ["Bearer k1", "Bearer k1"]
    assert embedder.name == "fake-e5 (query prompt 'query: ', passage prompt 'passage: ')"
    assert embedder.dimension == server.dimension


def test_endpoint_embedder_batches_and_keeps_the_order(server: FakeModelServer) -> None:
    embedder = EndpointEmbedder(f"{server.url}/v1", "fake-hash", batch_size=2)
    texts = [f"text number {i}" for i in range(5)]
    server.requests.clear()
    vectors = embedder.encode(texts)
    assert [len(body["input"]) for body in server.bodies("/v1/embeddings")] == [2, 2, 1]
    expected = HashingEmbedder(server.dimension).encode(texts)
    assert abs(vectors - expected).max() < 1e-5  # sorted by index, normalised


def test_endpoint_url_takes_the_base_or_the_full_path() -> None:
    assert endpoint_url("http://h:1/v1", "embeddings") == "http://h:1/v1/embeddings"
    assert endpoint_url("http://h:1/v1/embeddings/", "embeddings") == "http://h:1/v1/embeddings"


def test_an_endpoint_that_fails_at_start_names_the_settings(server: FakeModelServer) -> None:
    server.fail = True
    with pytest.raises(EmbeddingModelError, match=r"DOCBOT_EMBEDDINGS_URL.*DOCBOT_EMBEDDING_MODEL"):
        EndpointEmbedder(f"{server.url}/v1", "fake-hash")


def test_an_endpoint_without_a_model_name_is_a_settings_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCBOT_EMBEDDINGS_URL", "http://127.0.0.1:9/v1")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert raised.value.lines[0].startswith("DOCBOT_EMBEDDINGS_URL: ")
    assert "DOCBOT_EMBEDDING_MODEL" in raised.value.lines[0]
    monkeypatch.setenv("DOCBOT_RERANKER_URL", "ftp://x")
    monkeypatch.setenv("DOCBOT_EMBEDDING_MODEL", "nomic-embed-text")
    with pytest.raises(SettingsError, match="DOCBOT_RERANKER_URL"):
        load_settings()


def test_settings_to_a_cited_answer_through_an_embeddings_endpoint(
    tmp_path: Path, server: FakeModelServer, docs: Path
) -> None:
    services = indexed(build(endpoint_settings(tmp_path, server)), docs)
    assert isinstance(services.embedder, EndpointEmbedder)
    answer = services.bot.ask("How many eggs can a honeybee queen lay in a day?")
    assert not answer.refused and answer.citations, answer
    assert answer.citations[0].source == "bees.txt" and "two thousand eggs" in answer.citations[0].quote


def test_the_index_records_the_model_and_its_prompts(tmp_path: Path, server: FakeModelServer, docs: Path) -> None:
    e5 = {"embedding_query_prompt": "query: ", "embedding_passage_prompt": "passage: "}
    indexed(build(endpoint_settings(tmp_path, server, **e5)), docs)
    assert build(endpoint_settings(tmp_path, server, **e5)).store.count() == 3  # the same again: opens
    for other in ({}, {**e5, "embedding_query_prompt": "search_query: "}, {**e5, "embedding_model": "fake-other"}):
        with pytest.raises(IndexMismatchError, match=r"query prompt 'query: '.*docbot index --rebuild"):
            build(endpoint_settings(tmp_path, server, **other))
    rebuilt = indexed(build(endpoint_settings(tmp_path, server), rebuild=True), docs)  # the way out it names
    assert rebuilt.store.model_name == "fake-hash"


# --- rerank endpoint --------------------------------------------------------------------------------------------

QUERY = "When does the ferry leave the pier?"
TEXTS = [BEES, LEAVE, FERRY]


@pytest.mark.parametrize("path", ["/rerank", "/v1/rerank"], ids=["tei", "cohere"])
def test_endpoint_reranker_reads_either_reply(server: FakeModelServer, path: str) -> None:
    reranker = EndpointReranker(server.url + path, "fake-rerank", api_key="k2")
    server.requests.clear()
    scores = reranker.scores(QUERY, TEXTS)
    assert max(range(3), key=scores.__getitem__) == 2
    (body,) = server.bodies(path)
    assert body == {"query": QUERY, "texts": TEXTS, "documents": TEXTS, "model": "fake-rerank"}
    assert server.authorizations[-1] == "Bearer k2"


def test_a_reply_that_leaves_a_text_out_ranks_it_last() -> None:
    assert scores_of([{"index": 1, "score": 0.5}], 2) == [float("-inf"), 0.5]
    assert scores_of({"results": [{"index": 0, "relevance_score": 2}]}, 1) == [2.0]
    for bad in ({"data": []}, [{"index": 5, "score": 1}], ["x"]):
        with pytest.raises(ValueError):
            scores_of(bad, 2)


def passages(*texts: str) -> list[Passage]:
    return [
        Passage(f"p{i}", text, f"{i}.txt", "t", None, 0, len(text), 1.0 / (i + 1), 0.5) for i, text in enumerate(texts)
    ]


def test_rerank_orders_by_the_endpoint_and_keeps_k(server: FakeModelServer) -> None:
    reranked = rerank(EndpointReranker(server.url + "/rerank"), QUERY, passages(*TEXTS), 2)
    assert [p.id for p in reranked] == ["p2", "p1"]  # ferry shares 3 of the question's 6 words, leave 1, bees 0


@pytest.mark.parametrize("trouble", ["timeout", "error", "unreachable"])
def test_an_endpoint_in_trouble_keeps_the_fused_order(
    server: FakeModelServer, trouble: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = server.url + "/rerank"
    if trouble == "timeout":
        server.delay_s = 1.0
    elif trouble == "error":
        server.fail = True
    else:
        url = "http://127.0.0.1:9/rerank"
    reranker = EndpointReranker(url, timeout_s=0.2)
    with caplog.at_level(logging.WARNING, logger="index.rerank"):
        kept = rerank(reranker, QUERY, passages(*TEXTS), 2)
    assert [p.id for p in kept] == ["p0", "p1"]
    assert "the fused order is kept" in caplog.text


class ScriptedReranker:
    """Scores each text by where it stands in ``order`` (first: best), recording what it was asked."""

    name = "scripted"

    def __init__(self, best_first: list[str]) -> None:
        self.best_first = best_first
        self.asked: list[list[str]] = []

    def scores(self, query: str, texts: list[str]) -> list[float]:
        self.asked.append(texts)
        return [-float(next((i for i, word in enumerate(self.best_first) if word in t), 99)) for t in texts]


def test_the_retriever_reranks_its_candidates_and_judges_coverage_as_without(
    tmp_path: Path, docs: Path, hashing_embedder: HashingEmbedder
) -> None:
    settings = clean_settings(tmp_path / "data", **HASHING_COVERAGE, rerank_candidates=3)
    services = indexed(build(settings, embedder=hashing_embedder), docs)
    plain = services.retriever
    scripted = ScriptedReranker(["honeybee", "annual", "ferry"])
    reranked = HybridRetriever(settings=settings, embedder=hashing_embedder, store=services.store, reranker=scripted)
    for query in (QUERY, "Who won the football World Cup in 2014?"):
        before, after = plain.search(query, k=1), reranked.search(query, k=1)
        assert len(scripted.asked[-1]) == 3  # rerank_candidates, deeper than k
        assert after.passages[0].source == "bees.txt"
        assert (after.covered, after.evidence, after.coverage, after.best_similarity) == (
            before.covered,
            before.evidence,
            before.coverage,
            before.best_similarity,
        )


def test_settings_to_a_cited_answer_with_a_rerank_endpoint(
    tmp_path: Path,
    server: FakeModelServer,
    docs: Path,
    hashing_embedder: HashingEmbedder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = clean_settings(tmp_path / "data", **HASHING_COVERAGE, reranker_url=f"{server.url}/v1/rerank")
    services = indexed(build(settings, embedder=hashing_embedder), docs)
    server.requests.clear()
    answer = services.bot.ask(QUERY)
    assert server.bodies("/v1/rerank"), "the endpoint was not asked"
    assert not answer.refused and answer.citations[0].source == "ferry.txt"
    server.fail = True
    with caplog.at_level(logging.WARNING, logger="index.rerank"):
        failed_over = services.bot.ask(QUERY)
    assert failed_over.citations[0].source == "ferry.txt" and "fused order is kept" in caplog.text


# --- docbot eval --reranker ------------------------------------------------------------------------------------


def test_eval_compares_runs_without_and_with_the_reranker(
    tmp_path: Path, server: FakeModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        "DOCBOT_EMBEDDINGS_URL": f"{server.url}/v1",
        "DOCBOT_EMBEDDING_MODEL": "fake-hash",
        "DOCBOT_COVERAGE": "floor",
        "DOCBOT_RELEVANCE_FLOOR": "0.3",
        "DOCBOT_RERANKER": "fake-rerank",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    server.requests.clear()
    out = tmp_path / "run"
    args = ["eval", str(EVAL_SET), "--docs", str(SEEDS), "--out", str(out), "--reranker", f"{server.url}/rerank"]
    done = CliRunner().invoke(cli, args)
    assert done.exit_code == 0, done.output
    assert "# docbot eval compare" in done.stdout and "Note: reranker differs: None → fake-rerank at" in done.stdout
    for name in ("without-reranker", "with-reranker"):
        assert (out / name / "results.json").is_file() and (out / name / "summary.md").is_file()
    assert (out / "compare.md").read_text(encoding="utf-8") in done.stdout
    assert {body["model"] for body in server.bodies("/rerank")} == {"fake-rerank"}
