"""A real Chroma server (`chroma run`): index into it over HTTP and search through it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_indexing import TITLES, make_corpus

from bot.config import Settings
from index.embeddings import Embedder
from index.lexical import LexicalIndex
from index.pipeline import Indexer
from index.retriever import open_retriever
from index.store import StoreUnavailableError, VectorStore

CHROMA = str(Path(sys.executable).with_name("chroma"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``chroma run`` on a free loopback port, stopped after the test; yields its URL and storage folder."""
    port, path = free_port(), tmp_path / "server-store"
    log = tmp_path / "chroma.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [CHROMA, "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(path)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, f"chroma run exited: {log.read_text()[-2000:]}"
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"chroma run did not answer: {log.read_text()[-2000:]}"
            time.sleep(0.2)
        yield url, path
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.mark.slow
def test_index_and_search_through_a_chroma_server(
    chroma_server: tuple[str, Path], embedder: Embedder, tmp_path: Path
) -> None:
    url, server_path = chroma_server
    settings = Settings(data_dir=tmp_path / "data", chroma_url=url)
    corpus = make_corpus(tmp_path / "docs")

    store = VectorStore(settings, embedder.name, embedder.dimension)
    assert store.location == url
    report = Indexer(settings, embedder, store).run([corpus])
    assert sorted(report.added) == sorted(TITLES) and report.failed == []
    assert store.count() == report.chunks_embedded
    assert not settings.chroma_dir.exists(), "wrote a local Chroma store although a server was set"
    assert (server_path / "chroma.sqlite3").is_file()
    assert sorted(LexicalIndex.load(settings.lexical_dir).ids) == sorted(store.ids())

    retriever = open_retriever(settings, embedder)
    found = retriever.search("When does the morning ferry leave the pier?", k=3)
    assert found.covered and found.passages[0].source == "guides/ferry.html"
    assert "north pier at seven" in found.passages[0].text
    report_page = retriever.search("breakwater repairs", k=3).passages[0]
    assert (report_page.source, report_page.page) == ("reports/annual.pdf", 2)
    assert not retriever.search("recipe for chocolate brownies with walnuts").covered

    again = Indexer(settings, embedder, store).run([corpus])
    assert again.chunks_embedded == 0 and len(again.unchanged) == len(TITLES)


@pytest.mark.slow
def test_a_stopped_server_is_a_clear_error(tmp_path: Path, embedder: Embedder) -> None:
    settings = Settings(data_dir=tmp_path / "data", chroma_url=f"http://127.0.0.1:{free_port()}")
    reason = r"cannot reach the Chroma server at http://127\.0\.0\.1:\d+.*Start it \(chroma run\)"
    with pytest.raises(StoreUnavailableError, match=reason):
        VectorStore(settings, embedder.name, embedder.dimension)
