"""A real Chroma server (`chroma run`): index into it over HTTP and search through it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import live
import pytest
from helpers import pools
from live import ChromaServer, child_env, free_port
from test_indexing import TITLES, make_corpus

from app import build
from bot.config import Settings
from index.embeddings import Embedder
from index.errors import StoreUnavailableError
from index.lexical import LexicalIndex
from index.pipeline import Indexer
from index.store import VectorStore

DOCBOT = str(Path(sys.executable).with_name("docbot"))

#: Every test here talks to a real `chroma run` process (or a port where none listens).
pytestmark = pytest.mark.server


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[ChromaServer]:
    """``chroma run`` on a free loopback port, stopped after the test."""
    with live.chroma_server(tmp_path) as server:
        yield server


def test_index_and_search_through_a_chroma_server(
    chroma_server: ChromaServer, embedder: Embedder, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data", chroma_url=chroma_server.url)
    corpus = make_corpus(tmp_path / "docs")

    store = VectorStore(settings, embedder.name, embedder.dimension)
    assert store.location == chroma_server.url
    report = Indexer(settings, embedder, store, pools().parse).run([corpus])
    assert sorted(report.added) == sorted(TITLES) and report.failed == []
    assert store.count() == report.chunks_embedded
    assert not settings.chroma_dir.exists(), "wrote a local Chroma store although a server was set"
    assert (chroma_server.path / "chroma.sqlite3").is_file()
    assert sorted(LexicalIndex.load(settings.lexical_dir).ids) == sorted(store.ids())

    retriever = build(settings, embedder=embedder).retriever
    found = retriever.search("When does the morning ferry leave the pier?", k=3)
    assert found.covered and found.passages[0].source == "guides/ferry.html"
    assert "north pier at seven" in found.passages[0].text
    report_page = retriever.search("breakwater repairs", k=3).passages[0]
    assert (report_page.source, report_page.page) == ("reports/annual.pdf", 2)
    assert not retriever.search("recipe for chocolate brownies with walnuts").covered

    again = Indexer(settings, embedder, store, pools().parse).run([corpus])
    assert again.chunks_embedded == 0 and len(again.unchanged) == len(TITLES)

    # The server goes away: a clear error, not a hang or a half-understood traceback.
    chroma_server.stop()
    (corpus / "tides.txt").write_text("Changed while the server was down.")
    with pytest.raises(StoreUnavailableError, match=f"the vector store at {chroma_server.url} failed to read"):
        Indexer(settings, embedder, store, pools().parse).run([corpus])


def test_cli_reports_a_server_lost_mid_run(chroma_server: ChromaServer, tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "docs")
    # enough to embed that the run is still going when the server stops
    ledger = (f"Ledger entry {i} records a cargo of {i % 7} crates." for i in range(1500))
    (corpus / "long.txt").write_text(" ".join(ledger))
    data_dir = tmp_path / "data"
    env = child_env()
    env.update({"DOCBOT_DATA_DIR": str(data_dir), "DOCBOT_CHROMA_URL": chroma_server.url})
    run = subprocess.Popen(
        [DOCBOT, "index", "docs"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 180
    while not (data_dir / "index.lock").exists():  # the store is open and the run has begun
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()
        time.sleep(0.005)
    chroma_server.stop()
    stdout, stderr = run.communicate(timeout=180)
    assert run.returncode == 1, (stdout, stderr)
    assert stderr.splitlines()[-1].startswith("error: ") or "\nerror: " in stderr, stderr
    assert f"the vector store at {chroma_server.url} failed to" in " ".join(stderr.split())
    assert "Traceback" not in stderr


def test_a_stopped_server_is_a_clear_error(tmp_path: Path, embedder: Embedder) -> None:
    settings = Settings(data_dir=tmp_path / "data", chroma_url=f"http://127.0.0.1:{free_port()}")
    reason = r"cannot reach the Chroma server at http://127\.0\.0\.1:\d+.*Start it \(chroma run\)"
    with pytest.raises(StoreUnavailableError, match=reason):
        VectorStore(settings, embedder.name, embedder.dimension)
