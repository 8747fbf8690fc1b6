"""The BM25 side follows the store: a change made through another process is seen after a cheap check, rebuilt in
the background, never per question, and a rebuild in progress does not hold up a search."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from answer_fixtures import clean_settings, write_docs
from conftest import HASHING_COVERAGE

import index.retriever
from app import Services, build
from index.hashing import HashingEmbedder
from index.retriever import HybridRetriever

#: A word only the late document has: BM25 finds it only once it has been rebuilt with that document.
LATE = {"late.txt": "The quarrymen of Vellmoor split the granite with wedges of seasoned oak."}
QUESTION = "Who split granite at Vellmoor?"


class CountingSync:
    """Counts BM25 rebuilds (``sync_lexical`` calls) and can hold them at the start until released."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self.real = real
        self.calls = 0
        self.started = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        self.started.set()
        assert self.release.wait(30), "the held rebuild was never released"
        return self.real(*args, **kwargs)


@pytest.fixture
def replicas(tmp_path: Path, hashing_embedder: HashingEmbedder) -> tuple[Services, Services, Path]:
    """Two docbots over one store (the same data folder: a serve replica and a docbot index run, say)."""
    docs = write_docs(tmp_path / "docs", seeds=False, **{"oak.txt": "Oak trees grow slowly and live for centuries."})
    settings = clean_settings(tmp_path / "data", store_check_interval_s=0.001, **HASHING_COVERAGE)
    first = build(settings, embedder=hashing_embedder)
    assert not first.indexer.run([docs]).failed
    return first, build(settings, embedder=hashing_embedder), docs


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> CountingSync:
    spy = CountingSync(index.retriever.sync_lexical)
    monkeypatch.setattr(index.retriever, "sync_lexical", spy)
    return spy


def _lexical_sources(retriever: HybridRetriever) -> set[str]:
    return {p.source for p in retriever.search(QUESTION, dense=False).passages}


def _start_check(retriever: HybridRetriever) -> threading.Thread:
    """Start one background check (waiting out the interval since the last one)."""
    deadline = time.monotonic() + 10
    while (thread := retriever.follow()) is None:
        assert time.monotonic() < deadline, "no check started"
        time.sleep(0.001)
    return thread


def _check(retriever: HybridRetriever) -> None:
    """Run one background check to its end."""
    thread = _start_check(retriever)
    thread.join(30)
    assert not thread.is_alive()


def test_a_change_through_another_docbot_is_seen_after_the_check(
    replicas: tuple[Services, Services, Path], counting: CountingSync
) -> None:
    writer, reader, docs = replicas
    assert "late.txt" not in _lexical_sources(reader.retriever)
    before = counting.calls

    write_docs(docs, seeds=False, **LATE)
    assert writer.indexer.run([docs]).added == ["late.txt"]
    _check(reader.retriever)

    assert "late.txt" in _lexical_sources(reader.retriever)
    assert counting.calls == before + 1, "one rebuild for one change"


def test_no_rebuild_per_question_while_the_store_is_unchanged(
    replicas: tuple[Services, Services, Path], counting: CountingSync
) -> None:
    _, reader, _ = replicas
    retriever = reader.retriever
    before = counting.calls
    for _ in range(5):
        _check(retriever)
        retriever.search(QUESTION)
    assert counting.calls == before


def test_a_rebuild_in_progress_does_not_hold_up_a_search(
    replicas: tuple[Services, Services, Path], counting: CountingSync
) -> None:
    writer, reader, docs = replicas
    retriever = reader.retriever
    write_docs(docs, seeds=False, **LATE)
    writer.indexer.run([docs])
    counting.started.clear()
    counting.release.clear()
    thread = _start_check(retriever)
    assert counting.started.wait(30), "the check did not start a rebuild"

    found: list[set[str]] = []
    searching = threading.Thread(target=lambda: found.append(_lexical_sources(retriever)))
    searching.start()
    searching.join(30)
    held = searching.is_alive()
    counting.release.set()
    thread.join(30)
    assert not held, "a search waited for the rebuild"
    assert found == [set()], "a search during the rebuild uses the previous BM25 side"
    assert "late.txt" in _lexical_sources(retriever), "the new side is swapped in when the rebuild ends"


def test_every_write_leaves_a_new_revision_mark(tmp_path: Path, hashing_embedder: HashingEmbedder) -> None:
    docs = write_docs(tmp_path / "docs", seeds=False, **{"oak.txt": "Oak trees grow slowly and live for centuries."})
    services = build(clean_settings(tmp_path / "data"), embedder=hashing_embedder)
    store = services.store
    empty = store.revision()
    services.indexer.run([docs])
    indexed = store.revision()
    assert indexed != empty
    services.retriever.search(QUESTION)
    store.delete([])
    assert store.revision() == indexed, "reads and empty writes leave the mark as it was"

    chunk = store.get([store.ids()[0]])[0]
    store.set_metadata({chunk.id: {**chunk.metadata, "title": "Oaks"}})
    retitled = store.revision()
    assert retitled != indexed
    store.delete([chunk.id])
    assert store.revision() not in (indexed, retitled)


def test_a_store_that_fails_a_check_keeps_the_previous_side(
    replicas: tuple[Services, Services, Path], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _, reader, _ = replicas
    retriever = reader.retriever
    sources = _lexical_sources(retriever)

    def down() -> str:
        raise ConnectionError("store unreachable")

    monkeypatch.setattr(retriever._follower, "_mark", down)
    _check(retriever)
    _check(retriever)
    assert _lexical_sources(retriever) == sources
    warnings = [r.getMessage() for r in caplog.records if "could not follow" in r.getMessage()]
    assert len(warnings) == 1 and "store unreachable" in warnings[0], warnings
