"""Issue 27, finding 5, against a real ``docbot serve`` on 127.0.0.1: views of a document that is slow to parse
(HTML nested 40,000 ``<div>`` deep, seconds to read) cost one parse per document version, at most
``DOCBOT_MAX_VIEW_PARSES`` parse workers at once, and never slow ``/api/health``.

Before the fix, six concurrent views of it started six parse workers and each took the whole parse again (the
report: a 605 KB file, 8 workers, 28-33 s a view); a view of a third document while two were being read queued
for a worker of its own instead of answering at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from live import LiveServer, live_server

pytestmark = pytest.mark.server

CAP = 2
#: Nesting that takes lexbor seconds to parse here (quadratic in depth), and the few seconds it takes to index.
DEPTH = 40_000
#: The documents: a sentence found only in each, to ask for it and find it in the view.
SENTENCES = {
    "quokkas.html": "The zephyr lighthouse keeper counted eleven quokkas on the pier every morning.",
    "walrus.html": "A sleepy walrus guarded the copper buoy near the northern breakwater.",
    "ferret.html": "The ferret courier delivered marmalade to the signal tower twice a week.",
    "heron.html": "A grey heron nested on the rusty crane of the abandoned shipyard.",
}
#: How fast a view served from memory, a refusal and a health check must answer.
QUICK_S = 1.0


def slow_html(sentence: str) -> str:
    return f"<html><body><p>{sentence}</p>{'<div>' * DEPTH}deep{'</div>' * DEPTH}</body></html>"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    work = tmp_path_factory.mktemp("view-texts")
    docs = work / "docs"
    docs.mkdir()
    for name, sentence in SENTENCES.items():
        (docs / name).write_text(slow_html(sentence))
    env = {"DOCBOT_MAX_VIEW_PARSES": str(CAP), "DOCBOT_RATE_LIMIT_PER_MINUTE": "100000"}
    with live_server(work, env=env, docs=docs, timeout_s=300) as live:
        yield live


def view_url(server: LiveServer, name: str) -> str:
    """The viewer's address of the document ``name``, from an answer's citation (or related passage) of it."""
    answer = httpx.post(f"{server.url}/api/ask", json={"question": SENTENCES[name]}, timeout=120).json()
    found = [c["view_url"] for c in answer["citations"] + answer.get("related", []) if c["source"] == name]
    assert found, answer
    return server.url + found[0].partition("#")[0]


def parse_workers(server: LiveServer) -> set[int]:
    """The server's parse worker processes now (its children running ``index.parse_worker``)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if parent == server.process.pid and b"index.parse_worker" in command:
            found.add(int(entry.name))
    return found


class Watch(threading.Thread):
    """Meanwhile: every parse worker the server starts, and how long each ``/api/health`` takes."""

    def __init__(self, server: LiveServer) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.stop = threading.Event()
        self.workers: set[int] = set()
        self.health_s: list[float] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.server.url, timeout=30) as client:
            while not self.stop.is_set():
                self.workers |= parse_workers(self.server)
                started = time.monotonic()
                answered = client.get("/api/health").status_code == 200
                self.health_s.append(time.monotonic() - started if answered else float("inf"))
                time.sleep(0.05)

    def __enter__(self) -> Watch:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.join(30)


def get_all(urls: list[str]) -> list[tuple[httpx.Response, float]]:
    """Every URL asked at the same moment: each response and its seconds."""
    results: list[tuple[httpx.Response, float] | None] = [None] * len(urls)

    def one(n: int) -> None:
        started = time.monotonic()
        response = httpx.get(urls[n], timeout=180)
        results[n] = (response, time.monotonic() - started)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(len(urls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(200)
    assert all(result is not None for result in results)
    return [result for result in results if result is not None]


def test_concurrent_views_of_a_slow_document_parse_it_once_within_the_cap(server: LiveServer) -> None:
    url = view_url(server, "quokkas.html")
    before = parse_workers(server)
    with Watch(server) as watch:
        views = get_all([url] * 6)
        for response, _ in views:
            assert response.status_code == 200, response.text[:300]
            assert "eleven quokkas" in response.text
        again = get_all([url] * 6)  # the same version: from memory, parsed nothing
    started = watch.workers - before
    assert len(started) <= CAP, f"{len(started)} parse workers started for six views of one document"
    assert max(seconds for _, seconds in again) < QUICK_S, [round(s, 2) for _, s in again]
    assert all(response.status_code == 200 for response, _ in again)
    assert max(watch.health_s) < QUICK_S, max(watch.health_s)


def test_a_view_beyond_the_cap_gets_a_quick_try_again_page(server: LiveServer) -> None:
    walrus, ferret, heron = (view_url(server, name) for name in ("walrus.html", "ferret.html", "heron.html"))
    with Watch(server) as watch:
        reading: list[list[tuple[httpx.Response, float]]] = []
        both = threading.Thread(target=lambda: reading.append(get_all([walrus, ferret])))
        both.start()
        time.sleep(0.5)  # both slots taken: each of the two is seconds into its parse
        started = time.monotonic()
        refused = httpx.get(heron, timeout=60)
        refused_s = time.monotonic() - started
        both.join(200)
        assert refused.status_code == 503, refused.text[:300]
        assert refused_s < QUICK_S
        assert int(refused.headers["Retry-After"]) >= 1
        assert "try again in a few seconds" in refused.text and "heron" not in refused.text
        assert [response.status_code for response, _ in reading[0]] == [200, 200]
        later = httpx.get(heron, timeout=180)  # a slot is free again
    assert later.status_code == 200 and "grey heron" in later.text
    assert max(watch.health_s) < QUICK_S, max(watch.health_s)
