"""The widget on a wiki page from another origin, in headless Chromium, against the real ``docbot serve``.

Two small HTTP servers play the wiki: one on the origin DOCBOT_EMBED_ORIGINS lists, one on an origin it does not.
"""

from __future__ import annotations

import functools
import html
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from live import ROOT, LiveServer, live_server, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.server]

KEY = "test-embed-key-6d41a0"
QUESTION = "What did coalition forces resume because of the growing ISIS force?"
TITLE = "Ask the <b>docs</b>"
HOSTILE_DOC = """# <img src=x onerror="alert('title')"> Launch notes

The codeword for the spring launch is <script>alert('document')</script> marmalade, chosen in March.
"""
HOSTILE_QUESTION = "<b>What</b> is the codeword for the spring launch?"
WIKI_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Team wiki</title></head>
<body><h1>Team wiki</h1><p>Our procedures.</p>
<script src="{bot}/widget.js" data-title="{title}" data-color="#0b7a45" data-key="{key}" async></script>
</body></html>
"""


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve(folder: Path) -> ThreadingHTTPServer:
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def wiki_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wiki")


@pytest.fixture(scope="module")
def wikis(wiki_folder: Path) -> Iterator[tuple[str, str]]:
    """(listed origin, unlisted origin): both serve the same wiki page."""
    listed, unlisted = _serve(wiki_folder), _serve(wiki_folder)
    try:
        yield (f"http://127.0.0.1:{listed.server_port}", f"http://127.0.0.1:{unlisted.server_port}")
    finally:
        listed.shutdown()
        unlisted.shutdown()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, wikis: tuple[str, str], wiki_folder: Path) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp("embed")
    docs = workdir / "docs"
    shutil.copytree(ROOT / "seeds", docs)
    (docs / "launch-notes.md").write_text(HOSTILE_DOC)
    env = {"DOCBOT_API_KEYS": KEY, "DOCBOT_EMBED_ORIGINS": wikis[0]}
    with live_server(workdir, env=env, docs=docs, timeout_s=300) as live:
        page = WIKI_PAGE.format(bot=live.url, title=html.escape(TITLE), key=KEY)
        (wiki_folder / "index.html").write_text(page)
        yield live


def _fetch_from_page(page: Any, url: str) -> str:
    """What a script on the wiki page gets when it calls the API directly (CORS decides)."""
    return str(
        page.evaluate(
            """async ([url, key]) => {
                try {
                    const r = await fetch(url, {headers: {Authorization: "Bearer " + key}});
                    return "status " + r.status;
                } catch (error) {
                    return "blocked";
                }
            }""",
            [url, KEY],
        )
    )


def test_widget_on_a_listed_wiki_answers_with_citations(
    server: LiveServer, wikis: tuple[str, str], chromium: Any
) -> None:
    from playwright.sync_api import expect

    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    console: list[str] = []
    dialogs: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{wikis[0]}/index.html")

    launcher = page.locator("button.launcher")
    expect(launcher).to_have_attribute("aria-label", TITLE)
    launcher.click()
    expect(page.locator(".panel header span")).to_have_text(TITLE)  # shown as text, not markup
    frame_box = page.locator(".panel iframe").bounding_box()
    assert frame_box is not None and 320 <= frame_box["width"] <= 400

    bot = page.frame_locator(".panel iframe")
    bot.locator("#question").fill(QUESTION)
    bot.locator("#send").click()
    answer = bot.locator(".msg.bot").last
    expect(answer.locator("button.cite").first).to_be_visible(timeout=90_000)
    expect(answer.locator(".text")).to_contain_text("air strikes")
    answer.locator("button.cite").first.click()
    expect(answer.locator("details.source").first).to_have_attribute("open", "")
    expect(answer.locator("blockquote.quote").first).to_contain_text("resume air strikes")
    screenshot(page, "embed-widget-answer")

    bot.locator("#question").fill(HOSTILE_QUESTION)
    bot.locator("#question").press("Enter")
    expect(bot.locator(".msg.user").last).to_have_text(HOSTILE_QUESTION)
    hostile = bot.locator(".msg.bot").last
    expect(hostile.locator("button.cite").first).to_be_visible(timeout=90_000)
    expect(hostile.locator(".text")).to_contain_text("<script>alert('document')</script> marmalade")
    expect(hostile.locator("details.source .title").first).to_contain_text('<img src=x onerror="alert(')
    assert bot.locator("#log img, #log script, #log b").count() == 0
    screenshot(page, "embed-widget-escaped")

    assert dialogs == []
    assert not [line for line in console if "Content Security Policy" in line or "Refused" in line]
    assert _fetch_from_page(page, f"{server.url}/api/documents") == "status 200"


def test_embed_page_fits_a_narrow_iframe(server: LiveServer, chromium: Any) -> None:
    page = chromium.new_page(viewport={"width": 320, "height": 560})
    page.goto(f"{server.url}/embed")
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    assert page.locator("#send").bounding_box() is not None


def test_chat_page_still_loads_under_the_frame_policy(server: LiveServer, chromium: Any) -> None:
    from playwright.sync_api import expect

    page = chromium.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    response = page.goto(f"{server.url}/")
    assert response is not None and response.headers["content-security-policy"].startswith("frame-ancestors 'self'")
    expect(page.locator(".gradio-container")).to_be_visible(timeout=30_000)
    assert not [line for line in errors if "Content Security Policy" in line]


def test_unlisted_origin_cannot_frame_or_call_the_bot(
    server: LiveServer, wikis: tuple[str, str], chromium: Any
) -> None:
    page = chromium.new_page()
    page.goto(f"{wikis[1]}/index.html")
    with page.expect_console_message(lambda m: "frame-ancestors" in m.text, timeout=30_000) as refusal:
        page.locator("button.launcher").click()
    assert "violates" in refusal.value.text and f"frame-ancestors 'self' {wikis[0]}" in refusal.value.text
    page.wait_for_timeout(500)
    embedded = [frame for frame in page.frames if frame.url.startswith(server.url)]
    assert all(frame.locator("#question").count() == 0 for frame in embedded)
    assert page.frame_locator(".panel iframe").locator("#question").count() == 0
    screenshot(page, "embed-widget-refused")
    assert _fetch_from_page(page, f"{server.url}/api/documents") == "blocked"
    assert KEY not in server.log.read_text(errors="replace")
