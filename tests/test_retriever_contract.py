"""Contract suite for index.protocols.Retriever: the same assertions for every implementation (as test_contracts.py
holds every Embedder and Store to one set).

Implementations, each over the same documents in a real Chroma store in a temporary folder:

* ``hybrid``: index.retriever.HybridRetriever over one collection, with the real bundled model;
* ``fused``: index.fusion.FusedRetriever over two collections (the documents split between them), as a bot over
  several collections searches;
* ``one-collection``: the FusedRetriever a bot over one collection gets (each passage named by its collection);
* ``bench-sentences``: bench/answering.py's EmbeddingSentences around a hybrid retriever;
* ``hybrid-hashing``: the hybrid one over the hashing embedder, so the fast tier holds the contract too.

The documents are split between two roots (``people/`` and ``operations/``) kept whole in every implementation, so
a passage's source names the same file whichever collection holds it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from answer_fixtures import SEED_DOC, clean_settings
from conftest import HASHING_COVERAGE
from helpers import indexed

from app import Services, build, build_library
from bench.pdfs import text_pdf
from index.collections import DEFAULT
from index.embeddings import Embedder as BundledEmbedder
from index.filters import Filter
from index.hashing import HashingEmbedder
from index.loaders import load_file
from index.protocols import Embedder, Retriever
from index.types import Passage, Retrieval

K = 4
LEAVE = "---\ntitle: Leave\ntags: [policy]\n---\n# Annual leave\n\nEmployees get 25 days of annual leave a year.\n"
SICK = "Sick leave needs a doctor's note after three days of absence from work.\n"
DEPLOY = "Deploy the billing service with the blue green pipeline; never deploy on a Friday afternoon.\n"
ONCALL = "# On call\n\nThe on-call engineer answers pager alerts within fifteen minutes, day and night.\n"
BEES = """<html><head><title>Bees</title></head><body><h1>Honeybees</h1>
<p>A honeybee queen can lay up to two thousand eggs a day in early summer.</p>
<p>Worker bees live for about six weeks in summer.</p></body></html>
"""
FERRY_PAGES = [
    ["Harbour report, page one.", "The breakwater was repaired in March."],
    ["The morning ferry leaves the north pier at seven", "and returns from the island at noon."],
]

#: Root → source → the text of the file (bytes for the PDF, written by bench/pdfs.py).
ROOTS: dict[str, dict[str, str]] = {
    "people": {"hr/leave.md": LEAVE, "hr/sick.txt": SICK, "nature/bees.html": BEES},
    "operations": {"eng/runbooks/deploy.txt": DEPLOY, "eng/oncall.md": ONCALL},
}
PDF = ("operations", "reports/harbour.pdf")
SEED = ("operations", f"news/{SEED_DOC.name}")

#: Questions each answered by one document: that document must come first.
ANSWERED_BY = {
    "How many days of annual leave do employees get a year?": "hr/leave.md",
    "When is a doctor's note needed for sick leave?": "hr/sick.txt",
    "Which pipeline deploys the billing service?": "eng/runbooks/deploy.txt",
    "How fast does the on-call engineer answer pager alerts?": "eng/oncall.md",
    "How many eggs can a honeybee queen lay in a day?": "nature/bees.html",
    "When does the morning ferry leave the north pier?": PDF[1],
    "How many ISIS fighters are there in Iraq?": SEED[1],
}
OFF_TOPIC = "Who won the football World Cup in 2014?"
BROAD = "leave days deploy service engineer doctor bees ferry fighters"
#: A question two documents answer, one in each root.
BOTH = "How many days of annual leave do employees get, and which pipeline deploys the billing service?"


def write_roots(folder: Path) -> dict[str, Path]:
    """Both roots under ``folder``; returns each root's folder."""
    roots = {name: folder / name for name in ROOTS}
    for name, files in ROOTS.items():
        for source, text in files.items():
            (roots[name] / source).parent.mkdir(parents=True, exist_ok=True)
            (roots[name] / source).write_text(text, encoding="utf-8")
    (roots[PDF[0]] / PDF[1]).parent.mkdir(parents=True, exist_ok=True)
    text_pdf(roots[PDF[0]] / PDF[1], FERRY_PAGES, "Harbour report")
    (roots[SEED[0]] / SEED[1]).parent.mkdir(parents=True, exist_ok=True)
    (roots[SEED[0]] / SEED[1]).write_text(SEED_DOC.read_text(encoding="utf-8"), encoding="utf-8")
    return roots


@dataclass
class Implementation:
    name: str
    retriever: Retriever
    roots: dict[str, Path]
    #: Root name → the Services that index that root's files (a second opener, as a `docbot index` run is).
    indexers: dict[str, Services]

    def file(self, source: str) -> Path:
        return next(root / source for root in self.roots.values() if (root / source).is_file())


def make(name: str, folder: Path, embedder: Embedder) -> Implementation:
    """Implementation ``name`` over both roots written in ``folder``."""
    roots = write_roots(folder / "docs")
    coverage = HASHING_COVERAGE if name == "hybrid-hashing" else {}
    # Chunks of about a paragraph (the seed article makes several); each side lists only as many as a search keeps,
    # so the lexical side brings passages the dense one did not; no background store checks (see test_refresh).
    settings = clean_settings(
        folder / "data", k=K, fetch_k=K, chunk_size=300, chunk_overlap=0, store_check_interval_s=0, **coverage
    )
    if name == "fused":
        library = build_library(settings, embedder=embedder)
        for root in ROOTS:
            indexed(library.services(root, create=True), roots[root])
        openers = {root: build(library.services(root).settings, embedder=embedder) for root in ROOTS}
        return Implementation(name, library.bot(list(ROOTS)).retriever, roots, openers)
    services = indexed(build(settings, embedder=embedder), *roots.values())
    openers = dict.fromkeys(ROOTS, build(settings, embedder=embedder))
    if name == "one-collection":
        return Implementation(name, build_library(settings, embedder=embedder).bot([DEFAULT]).retriever, roots, openers)
    if name == "bench-sentences":
        from bench.answering import EmbeddingSentences

        return Implementation(name, EmbeddingSentences(services.retriever), roots, openers)
    return Implementation(name, services.retriever, roots, openers)


NAMES = [
    "hybrid-hashing",
    *(pytest.param(name, marks=pytest.mark.model) for name in ("hybrid", "fused", "one-collection", "bench-sentences")),
]


def embedder_for(name: str, request: pytest.FixtureRequest) -> Embedder:
    if name == "hybrid-hashing":
        return HashingEmbedder()
    bundled: BundledEmbedder = request.getfixturevalue("embedder")
    return bundled


@pytest.fixture(scope="module", params=NAMES)
def implementation(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Implementation:
    """Every Retriever, built once per module over the documents above."""
    return make(request.param, tmp_path_factory.mktemp(request.param), embedder_for(request.param, request))


@pytest.fixture
def retriever(implementation: Implementation) -> Retriever:
    return implementation.retriever


def search(retriever: Retriever, query: str, k: int | None = None, **options: Any) -> Retrieval:
    found = retriever.search(query, k, **options)
    assert isinstance(found, Retrieval)
    return found


def key(passage: Passage) -> tuple[str, str]:
    return passage.collection, passage.id


def sources(found: Retrieval) -> list[str]:
    return [p.source for p in found.passages]


# --- what it is ------------------------------------------------------------------------------------------------


def test_retriever_has_the_embedder_and_store_it_searches(retriever: Retriever) -> None:
    assert isinstance(retriever.embedder.name, str) and retriever.embedder.dimension > 0
    assert retriever.store.count() > 0 and isinstance(retriever.store.location, str)
    found = search(retriever, next(iter(ANSWERED_BY)))
    if found.query_vector is not None:  # the question's embedding, by the retriever's own embedder
        assert found.query_vector.shape == (retriever.embedder.dimension,)
        np.testing.assert_allclose(
            found.query_vector, retriever.embedder.encode_queries([next(iter(ANSWERED_BY))])[0], atol=2e-3
        )


# --- what a search returns -------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", [*ANSWERED_BY, OFF_TOPIC, BROAD])
def test_passages_are_ordered_by_score_and_distinct(retriever: Retriever, query: str) -> None:
    passages = search(retriever, query, 10).passages
    scores = [p.score for p in passages]
    assert scores == sorted(scores, reverse=True), scores
    assert all(math.isfinite(s) and s > 0 for s in scores)
    assert len({key(p) for p in passages}) == len(passages)


@pytest.mark.parametrize("k", [1, 2, K, 10])
def test_a_search_returns_at_most_k_passages(retriever: Retriever, k: int) -> None:
    for query in (BROAD, BOTH, *ANSWERED_BY):
        found = search(retriever, query, k)
        assert len(found.passages) <= k
        assert not found.covered or found.passages  # covered: something covers it


def test_k_left_out_is_the_configured_k(retriever: Retriever) -> None:
    for query in (BROAD, *ANSWERED_BY):
        found = search(retriever, query)
        assert len(found.passages) <= K
        assert [key(p) for p in found.passages] == [key(p) for p in search(retriever, query, K).passages]


def test_each_passage_is_the_slice_of_its_document_at_its_offsets(implementation: Implementation) -> None:
    seen: set[str] = set()
    for query in (*ANSWERED_BY, BROAD):
        for passage in search(implementation.retriever, query, 10).passages:
            path = implementation.file(passage.source)
            documents = load_file(path, passage.source, max_bytes=10**7).documents
            page = passage.page if passage.source.endswith(".pdf") else None
            (document,) = [d for d in documents if d.page == page]
            assert 0 <= passage.start < passage.end <= len(document.text), passage
            assert passage.text == document.text[passage.start : passage.end], passage
            assert passage.title == document.title
            seen.add(passage.source)
    assert PDF[1] in seen and SEED[1] in seen


def test_the_best_similarity_is_at_least_each_passage_s(retriever: Retriever) -> None:
    for query in (*ANSWERED_BY, OFF_TOPIC):
        found = search(retriever, query, 10)
        assert -1.0 <= found.best_similarity <= 1.0 + 1e-6
        assert all(p.similarity is None or p.similarity <= found.best_similarity + 1e-6 for p in found.passages)


def test_without_the_lexical_side_every_passage_was_found_by_meaning(retriever: Retriever) -> None:
    for query in ANSWERED_BY:
        passages = search(retriever, query, K, lexical=False).passages
        assert passages and all(p.similarity is not None for p in passages), query


# --- what it finds ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "source"), ANSWERED_BY.items())
def test_the_document_that_answers_a_question_ranks_first(retriever: Retriever, query: str, source: str) -> None:
    found = search(retriever, query)
    assert found.covered and found.evidence >= found.floor
    assert sources(found)[0] == source, sources(found)


def test_an_off_topic_question_is_not_covered(retriever: Retriever) -> None:
    found = search(retriever, OFF_TOPIC)
    assert not found.covered


@pytest.mark.parametrize("query", ["", "   ", "\n\t", "?"])
def test_an_empty_or_blank_query_does_not_fail(retriever: Retriever, query: str) -> None:
    """No promise of coverage: a query naming no term has full term support, and the empty string's embedding may
    sit close to a short passage (the bot refuses an empty question before it searches)."""
    found = search(retriever, query)
    assert len(found.passages) <= K and (found.passages or not found.covered)
    assert [p.score for p in found.passages] == sorted((p.score for p in found.passages), reverse=True)
    assert search(retriever, query) == found


@pytest.mark.parametrize("query", ["zyxqvb flurbnagle quorptastic", "E-99999 ## ;;", "Ünïcödé ☃ 𝔘𝔫𝔨𝔫𝔬𝔴𝔫"])
def test_unknown_words_are_not_covered_and_do_not_fail(retriever: Retriever, query: str) -> None:
    found = search(retriever, query)
    assert not found.covered
    assert len(found.passages) <= K
    assert [p.score for p in found.passages] == sorted((p.score for p in found.passages), reverse=True)


def test_a_search_is_deterministic(retriever: Retriever) -> None:
    def snapshot(found: Retrieval) -> tuple[Any, ...]:
        return found.covered, found.evidence, [(key(p), p.score, p.similarity) for p in found.passages]

    first = {query: snapshot(search(retriever, query, 6)) for query in (*ANSWERED_BY, OFF_TOPIC)}
    again = {query: snapshot(search(retriever, query, 6)) for query in reversed([*ANSWERED_BY, OFF_TOPIC])}
    assert again == first


# --- filters ----------------------------------------------------------------------------------------------------

QUESTION_OF = {source: question for question, source in ANSWERED_BY.items()}
#: Filter → which sources pass it, and a document it keeps (whose question must find it first under the filter).
FILTERS: dict[str, tuple[Callable[[str], bool], str]] = {
    "type=md": (lambda source: source.endswith(".md"), "eng/oncall.md"),
    "type=pdf": (lambda source: source.endswith(".pdf"), PDF[1]),
    "path=eng/": (lambda source: source.startswith("eng/"), "eng/runbooks/deploy.txt"),
    "path=eng/runbooks": (lambda source: source.startswith("eng/runbooks/"), "eng/runbooks/deploy.txt"),
    "tag=policy": (lambda source: source == "hr/leave.md", "hr/leave.md"),
    "tag=hr,type=txt": (lambda source: source == "hr/sick.txt", "hr/sick.txt"),
    '{"type": ["txt", "html"]}': (lambda source: source.endswith((".txt", ".html")), "nature/bees.html"),
}


@pytest.mark.parametrize("where", FILTERS)
@pytest.mark.parametrize("lexical", [True, False])
def test_a_filter_keeps_only_the_passages_that_pass_it(retriever: Retriever, where: str, lexical: bool) -> None:
    passes, kept = FILTERS[where]
    for query in (BROAD, *ANSWERED_BY):
        found = search(retriever, query, 10, lexical=lexical, where=Filter.parse(where))
        assert all(passes(source) for source in sources(found)), (query, sources(found))
    # a filter, not a refusal: what passes it is still found
    found = search(retriever, QUESTION_OF[kept], lexical=lexical, where=Filter.parse(where))
    assert found.covered and sources(found)[0] == kept, sources(found)


def test_a_filter_that_keeps_nothing_finds_nothing(retriever: Retriever) -> None:
    for where in ("before=2000-01-01", "path=nowhere/", "type=docx"):
        found = search(retriever, next(iter(ANSWERED_BY)), where=Filter.parse(where))
        assert found.passages == [] and not found.covered


def test_an_empty_filter_is_no_filter(retriever: Retriever) -> None:
    plain = search(retriever, BROAD, 10)
    empty = search(retriever, BROAD, 10, where=Filter.parse(""))
    assert [key(p) for p in empty.passages] == [key(p) for p in plain.passages]


# --- refresh ----------------------------------------------------------------------------------------------------

NEW = "The lighthouse keeper polishes the great brass lens every Thursday before dusk."


@pytest.fixture(params=NAMES)
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Implementation:
    """An implementation of this test's own, to change its index."""
    return make(request.param, tmp_path, embedder_for(request.param, request))


def test_refresh_picks_up_what_an_index_run_changed(fresh: Implementation) -> None:
    """Another opener (a `docbot index` run) adds a file: after refresh it is found, on both sides and under a
    filter; one removed is gone."""
    question, where = "How often does the lighthouse keeper polish the brass lens?", Filter.parse("path=lights/")
    root = fresh.roots["operations"]
    (root / "lights").mkdir()
    (root / "lights" / "lens.txt").write_text(NEW + "\n", encoding="utf-8")
    indexed(fresh.indexers["operations"], root)
    fresh.retriever.refresh()
    for options in ({}, {"where": where}, {"lexical": False}):
        found = search(fresh.retriever, question, **options)
        assert found.covered and sources(found)[0] == "lights/lens.txt", (options, sources(found))
    assert search(fresh.retriever, "lighthouse brass lens Thursday", where=where).passages

    (root / "eng" / "oncall.md").unlink()
    assert fresh.indexers["operations"].indexer.run([root]).removed
    fresh.retriever.refresh()
    for options in ({}, {"where": Filter.parse("path=eng/")}, {"lexical": False}):
        assert "eng/oncall.md" not in sources(search(fresh.retriever, "on-call engineer pager alerts", 10, **options))


def test_refresh_with_nothing_changed_changes_no_result(retriever: Retriever) -> None:
    before = {query: search(retriever, query, K) for query in ANSWERED_BY}
    retriever.refresh()
    assert {query: search(retriever, query, K) for query in ANSWERED_BY} == before
