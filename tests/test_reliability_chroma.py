"""The Chroma server stops in the middle of a conversation, then comes back.

The real ``docbot serve`` runs against a real ``chroma run`` (``DOCBOT_CHROMA_URL``). While the server is down,
every API route (``/api/health`` too) answers a 503 JSON error naming the store and the fix, and the chat page says
so: in the conversation, its sources panel, the header of a page loaded then, and an upload tried then. Once
``chroma run`` is started again on the same port and folder, answers resume without restarting docbot.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from live import LiveServer, browser, free_port, live_server, screenshot, stop_process, wait_http
from test_ui_browser import ask, bot_messages, choose_file

from bot.documents.failures import REMOVE_STORE_DOWN
from bot.web.page.chat import STORE_DOWN_ANSWER, STORE_DOWN_SOURCES

pytestmark = [pytest.mark.browser, pytest.mark.server]

CHROMA = str(Path(sys.executable).with_name("chroma"))
QUESTION = "What did coalition forces resume because of the growing ISIS force?"
FOLLOW_UP = "Where were the caves they attacked?"
EXPECTED = "air strikes"


class ChromaServer:
    """``chroma run`` on one loopback port and folder, stopped and started again at will."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.folder / "chroma.log", "ab") as log:
            self.process = subprocess.Popen(
                [CHROMA, "run", "--host", "127.0.0.1", "--port", str(self.port), "--path", str(self.folder / "db")],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_http(f"{self.url}/api/v2/heartbeat", 60, self.process)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


@pytest.fixture
def chroma(tmp_path: Path) -> Iterator[ChromaServer]:
    server = ChromaServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def docbot(tmp_path: Path, chroma: ChromaServer) -> Iterator[LiveServer]:
    env = {"DOCBOT_CHROMA_URL": chroma.url, "DOCBOT_ANONYMOUS_ROLE": "admin"}  # the laptop setup: it uploads
    with live_server(tmp_path, env=env) as live:
        assert not (live.data_dir / "chroma").exists(), "indexed into a local store, not the server"
        yield live


def _ask_api(api: httpx.Client) -> dict[str, httpx.Response]:
    body = {"question": QUESTION, "history": [[QUESTION, "Air strikes. [1]"]]}
    messages = {"messages": [{"role": "user", "content": QUESTION}]}
    return {
        "/api/ask": api.post("/api/ask", json=body),
        "/api/ask/stream": api.post("/api/ask/stream", json=body),
        "/v1/chat/completions": api.post("/v1/chat/completions", json=messages),
    }


def _assert_answered(responses: dict[str, httpx.Response]) -> None:
    for route, response in responses.items():
        assert response.status_code == 200, (route, response.text)
        assert EXPECTED in response.text, route
    events = [line for line in responses["/api/ask/stream"].text.splitlines() if line.startswith("event: ")]
    assert events[-1] == "event: answer"


def _page_answer(page: Any, question: str) -> str:
    ask(page, question)
    return str(bot_messages(page).last.inner_text())


def _assert_health_is_a_503_naming_the_store_and_the_fix(url: str, store: str) -> None:
    health = httpx.get(f"{url}/api/health", timeout=30)  # no key: it is the probe a load balancer calls
    assert health.status_code == 503 and health.headers["content-type"] == "application/json", health.text
    body = health.json()
    assert set(body) == {"detail", "store", "fix"} and body["store"] == store and store in body["detail"], body
    assert body["fix"].startswith(f"start the Chroma server at {store} (chroma run)"), body


def _assert_a_removal_says_the_store_is_down(page: Any) -> None:
    """A page loaded while the store was up still lists the documents; removing one now changes nothing."""
    page.get_by_role("tab", name="Documents").click()
    page.locator("#docbot-admin input").click()
    page.get_by_role("option").first.click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#docbot-remove").click()
    page.locator("#docbot-remove-report .upload-failed", has_text=REMOVE_STORE_DOWN).wait_for()
    page.get_by_role("tab", name="Chat").click()


def _assert_the_page_loads_and_says_the_store_is_down(page: Any, store: str, upload: Path) -> None:
    page.reload()
    header = page.locator("#docbot-status-line .docbot-down")
    header.wait_for()
    assert f"The vector store at {store} is unreachable" in header.inner_text()
    assert "Answers resume by themselves as soon as it is back" in header.inner_text()
    page.get_by_role("tab", name="Documents").click()
    page.locator("#docbot-documents", has_text="cannot be listed while the vector store is unreachable").wait_for()
    upload.write_text("The lighthouse keeper lights the lamp at dusk.")
    choose_file(page, upload)
    page.locator("#docbot-add").click()
    failed = page.locator("#docbot-upload-report .upload-failed")
    failed.wait_for()
    assert failed.inner_text() == (
        "The files were not added: the document store is unavailable. Nothing indexed before is lost. "
        "Add the files again once it is back."
    )
    screenshot(page, "chroma-down-documents")
    page.get_by_role("tab", name="Chat").click()


def test_chroma_server_stopped_mid_conversation_then_back(
    docbot: LiveServer, chroma: ChromaServer, tmp_path: Path
) -> None:
    with browser() as chromium, httpx.Client(base_url=docbot.url, timeout=60) as api:
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(60_000)
        page.goto(docbot.url)
        page.wait_for_selector(".docbot-status")
        assert EXPECTED in _page_answer(page, QUESTION)
        _assert_answered(_ask_api(api))

        chroma.stop()
        for route, response in _ask_api(api).items():
            assert response.status_code == 503, (route, response.text)
            assert response.headers["content-type"] == "application/json", route
            body = response.json()
            detail = body["error"]["message"] if route.startswith("/v1/") else body["detail"]
            assert chroma.url in detail, (route, body)
            if route.startswith("/api/"):
                assert body["store"] == chroma.url
        _assert_health_is_a_503_naming_the_store_and_the_fix(docbot.url, chroma.url)
        assert _page_answer(page, FOLLOW_UP) == STORE_DOWN_ANSWER
        sources = page.locator("#docbot-sources .src-turn.shown").inner_text()
        assert STORE_DOWN_SOURCES in sources and "No passage" not in sources
        screenshot(page, "chroma-down")
        _assert_a_removal_says_the_store_is_down(page)
        _assert_the_page_loads_and_says_the_store_is_down(page, chroma.url, tmp_path / "lighthouse.txt")
        assert not (docbot.data_dir / "uploads" / "lighthouse.txt").exists(), "kept a file the index did not take"

        chroma.start()
        deadline = time.monotonic() + 30
        while httpx.get(f"{docbot.url}/api/health", timeout=30).status_code != 200:  # nothing else asked
            assert time.monotonic() < deadline, "/api/health did not recover after the Chroma server came back"
            time.sleep(1)
        _assert_answered(_ask_api(api))
        page.reload()
        page.locator(".docbot-status", has_text="1 document").wait_for()
        assert page.locator(".docbot-down").count() == 0
        assert EXPECTED in _page_answer(page, QUESTION)
        assert docbot.process.poll() is None  # the same docbot process throughout
