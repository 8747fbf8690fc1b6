"""Contract suites: the same assertions for every Embedder and every Store implementation.

Like LangChain's standard tests: a parametrised fixture hands each implementation to one set of tests, so a new
implementation (or a fake) is held to exactly what the real ones promise. Implementations that bring a heavy part
carry its marker: the bundled model runs in the ``model`` tier, the Chroma server in the ``server`` tier.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from fake_model_server import FakeModelServer, fake_model_server
from langchain_core.embeddings import Embeddings
from live import chroma_server

from bot.config import Settings
from index.embedding_endpoint import EndpointEmbedder
from index.embeddings import Embedder as SentenceEmbedder
from index.errors import IndexMismatchError
from index.hashing import HashingEmbedder
from index.prompts import Prompts
from index.protocols import Embedder, Store
from index.settings import BUNDLED_EMBEDDING_MODEL
from index.store import VectorStore
from index.types import Chunk

FERRY = "The morning ferry leaves the north pier at seven and returns at noon."
TEXTS = [
    FERRY,
    "Chocolate brownies with walnuts need forty minutes in a hot oven.",
    "The annual report lists repairs to the breakwater and the harbour wall.",
    "",
]


# --- Embedder ------------------------------------------------------------------------------------------------


#: e5's prompts, as an e5 or bge deployment sets them.
E5_PROMPTS = Prompts("query: ", "passage: ")


@pytest.fixture(scope="module")
def embeddings_endpoint() -> Iterator[FakeModelServer]:
    """A local OpenAI-compatible /v1/embeddings server (tests/fake_model_server.py)."""
    with fake_model_server() as server:
        yield server


@pytest.fixture(
    scope="module",
    params=[
        "hashing",
        "endpoint",
        pytest.param("bundled", marks=pytest.mark.model),
        pytest.param("bundled-prompts", marks=pytest.mark.model),
    ],
)
def implementation(request: pytest.FixtureRequest) -> Embedder:
    """Every Embedder: the hashing one of the fast tier, an OpenAI-compatible endpoint with e5's prompts (a local
    fake server), the real bundled all-MiniLM-L6-v2, and that model through the prompts' path."""
    if request.param == "hashing":
        return HashingEmbedder()
    if request.param == "endpoint":
        server = request.getfixturevalue("embeddings_endpoint")
        return EndpointEmbedder(f"{server.url}/v1", "fake-e5", prompts=E5_PROMPTS)
    if request.param == "bundled-prompts":
        return SentenceEmbedder(BUNDLED_EMBEDDING_MODEL, query_engine="torch", prompts=E5_PROMPTS)
    return request.getfixturevalue("embedder")


def test_embedder_names_itself_and_its_dimension(implementation: Embedder) -> None:
    assert isinstance(implementation.name, str) and implementation.name
    assert isinstance(implementation.dimension, int) and implementation.dimension > 0


def test_embedder_gives_one_unit_float32_row_per_text(implementation: Embedder) -> None:
    vectors = implementation.encode(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), implementation.dimension)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)


def test_embedder_of_no_text_is_an_empty_matrix(implementation: Embedder) -> None:
    empty = implementation.encode([])
    assert empty.dtype == np.float32 and empty.shape == (0, implementation.dimension)


def test_embedder_is_deterministic_whatever_the_batch(implementation: Embedder) -> None:
    alone = np.stack([implementation.encode([text])[0] for text in TEXTS])
    np.testing.assert_allclose(implementation.encode(TEXTS), alone, atol=2e-3)
    np.testing.assert_allclose(implementation.encode(TEXTS), implementation.encode(TEXTS), atol=2e-3)


def test_embedder_puts_a_question_nearest_the_passage_that_answers_it(implementation: Embedder) -> None:
    question, *passages = implementation.encode(["When does the ferry leave the pier?", *TEXTS[:3]])
    similarities = [float(question @ passage) for passage in passages]
    assert max(range(3), key=similarities.__getitem__) == 0, similarities


def test_embedder_is_a_langchain_embeddings(implementation: Embedder) -> None:
    assert isinstance(implementation, Embeddings)
    documents = implementation.embed_documents(TEXTS[:2])
    query = implementation.embed_query(TEXTS[0])
    assert len(documents) == 2 and all(isinstance(x, float) for x in documents[0] + query)
    # A query is embedded as a question (its prompt, if any), a document as a document's text.
    np.testing.assert_allclose(query, implementation.encode_queries([TEXTS[0]])[0], atol=2e-3)
    np.testing.assert_allclose(documents, implementation.encode(TEXTS[:2]), atol=2e-3)


def test_embedder_gives_questions_unit_float32_rows(implementation: Embedder) -> None:
    vectors = implementation.encode_queries(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), implementation.dimension)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    question = implementation.encode_queries(["When does the ferry leave the pier?"])[0]
    similarities = [float(question @ passage) for passage in implementation.encode(TEXTS[:3])]
    assert max(range(3), key=similarities.__getitem__) == 0, similarities


# --- Store ---------------------------------------------------------------------------------------------------

STORE_EMBEDDER = HashingEmbedder()


@pytest.fixture(scope="module", params=["embedded", pytest.param("server", marks=pytest.mark.server)])
def store_settings(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings of every Store: an embedded Chroma in a temporary folder, a real `chroma run` on loopback."""
    root = tmp_path_factory.mktemp(f"store-{request.param}")
    if request.param == "embedded":
        yield Settings(data_dir=root / "data")
        return
    with chroma_server(root) as server:
        yield Settings(data_dir=root / "data", chroma_url=server.url)


@pytest.fixture
def settings(store_settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """The implementation's settings with a collection of this test's own, so tests cannot meet."""
    name = "contract-" + "".join(c if c.isalnum() else "-" for c in request.node.name)[-40:].strip("-")
    return store_settings.model_copy(update={"collection": name})


@pytest.fixture
def store(settings: Settings) -> VectorStore:
    """A fresh, empty collection of the implementation under test."""
    return VectorStore(settings, STORE_EMBEDDER.name, STORE_EMBEDDER.dimension, rebuild=True)


def chunk(number: int, text: str, source: str = "a.txt", page: int | None = None, start: int = 0) -> Chunk:
    return Chunk(f"{source}:{number}", text, source, source.split(".")[0], page, start, start + len(text), "hash")


def fill(store: VectorStore, chunks: list[Chunk]) -> None:
    vectors = STORE_EMBEDDER.encode([c.text for c in chunks])
    store.upsert(chunks, vectors, [c.metadata(len(chunks)) for c in chunks])


CHUNKS = [
    chunk(0, TEXTS[0], "ferry.txt"),
    chunk(1, TEXTS[1], "recipes.txt"),
    chunk(2, TEXTS[2], "report.pdf", page=2, start=40),
    chunk(3, "The report's first page names the harbour master.", "report.pdf", page=1, start=0),
]


def test_store_says_where_it_is(store: VectorStore, settings: Settings) -> None:
    protocol: Store = store  # what the answering side types against
    assert protocol.location == (settings.chroma_url or str(settings.chroma_dir))


def test_store_starts_empty(store: VectorStore) -> None:
    assert store.count() == 0 and store.ids() == [] and list(store.iter_all(with_text=True)) == []
    assert store.query(STORE_EMBEDDER.encode(["anything"])[0], 5) == []
    assert store.get(["missing"]) == [] and store.by_source("a.txt") == []


def test_store_keeps_what_is_written(store: VectorStore) -> None:
    fill(store, CHUNKS)
    assert store.count() == len(CHUNKS) and sorted(store.ids()) == sorted(c.id for c in CHUNKS)
    records = {record_id: (text, meta) for record_id, text, meta in store.iter_all(with_text=True)}
    for c in CHUNKS:
        text, meta = records[c.id]
        assert text == c.text and meta == c.metadata(len(CHUNKS))
    assert all(text is None for _, text, _ in store.iter_all(with_text=False))


def test_store_gets_by_id_in_the_order_asked_skipping_missing(store: VectorStore) -> None:
    fill(store, CHUNKS)
    got = store.get([CHUNKS[2].id, "missing", CHUNKS[0].id])
    assert [c.id for c in got] == [CHUNKS[2].id, CHUNKS[0].id]
    assert got[0].text == CHUNKS[2].text and (got[0].source, got[0].page) == ("report.pdf", 2)
    assert got[1].page is None


def test_store_lists_a_source_in_page_then_offset_order(store: VectorStore) -> None:
    fill(store, CHUNKS)
    assert [c.id for c in store.by_source("report.pdf")] == [CHUNKS[3].id, CHUNKS[2].id]


def test_store_query_ranks_by_cosine_similarity(store: VectorStore) -> None:
    fill(store, CHUNKS)
    hits = store.query(STORE_EMBEDDER.encode([TEXTS[0]])[0], 10)
    assert len(hits) == len(CHUNKS) and hits[0].chunk.id == CHUNKS[0].id
    assert hits[0].similarity == pytest.approx(1.0, abs=1e-3)
    assert [h.similarity for h in hits] == sorted((h.similarity for h in hits), reverse=True)
    assert len(store.query(STORE_EMBEDDER.encode([TEXTS[0]])[0], 2)) == 2


def test_store_upsert_replaces_and_delete_removes(store: VectorStore) -> None:
    fill(store, CHUNKS)
    fill(store, [chunk(0, "The ferry timetable changed in May.", "ferry.txt")])
    assert store.count() == len(CHUNKS) and store.get([CHUNKS[0].id])[0].text == "The ferry timetable changed in May."
    store.delete([CHUNKS[0].id, CHUNKS[1].id])
    assert sorted(store.ids()) == sorted(c.id for c in CHUNKS[2:])
    store.delete([])
    assert store.count() == 2


def test_store_set_metadata_keeps_text_and_vector(store: VectorStore) -> None:
    fill(store, CHUNKS)
    store.set_metadata({CHUNKS[0].id: {**CHUNKS[0].metadata(4), "title": "Ferry times"}})
    (got,) = store.get([CHUNKS[0].id])
    assert got.metadata["title"] == "Ferry times" and got.text == CHUNKS[0].text
    assert store.query(STORE_EMBEDDER.encode([TEXTS[0]])[0], 1)[0].chunk.id == CHUNKS[0].id


def test_store_refuses_another_model_and_rebuild_starts_afresh(store: VectorStore, settings: Settings) -> None:
    fill(store, CHUNKS)
    with pytest.raises(IndexMismatchError, match="docbot index --rebuild"):
        VectorStore(settings, "another-model", STORE_EMBEDDER.dimension)
    assert VectorStore(settings, STORE_EMBEDDER.name, STORE_EMBEDDER.dimension).count() == len(CHUNKS)
    assert VectorStore(settings, "another-model", 8, rebuild=True).count() == 0
