"""Script in file names, questions and feedback, shown inert: the chat page and the embed page in Chromium.

test_ui_browser covers payloads in document text and HTML titles on the page, test_embed_browser in Markdown titles
and questions in the widget; here the payload is the indexed file's own name (it is the source shown beside every
citation, and the title when the file has no heading), a question, and the vote on an answer that carries them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from live import LiveServer, live_server, screenshot, seeds_with, stored_votes
from test_ui_browser import ask, bot_messages, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.server]

NAME = "\"'><img src=x onerror=window.__xss=11><svg onload=window.__xss=12>.txt"
TEXT = "The lighthouse keeper of Skerry Point is Orla Quist, who has kept the light since the winter of 1998.\n"
QUESTION = (
    "Who is the lighthouse keeper of Skerry Point <script>window.__xss=13</script>? <img src=y onerror=window.__xss=14>"
)
PAYLOAD_MARKS = ("onerror=window.__xss=11", "window.__xss=13")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    work = tmp_path_factory.mktemp("hostile-names")
    with live_server(work, docs=seeds_with(work, {NAME: TEXT})) as live:
        yield live


def assert_inert(page: Any, frame: Any | None = None) -> None:
    where = frame or page
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert where.evaluate("document.querySelectorAll('img[src=x], img[src=y], img[onerror], svg[onload]').length") == 0
    assert where.evaluate("[...document.scripts].every((s) => !s.textContent.includes('__xss'))")


def test_page_shows_hostile_names_questions_and_votes_as_text(chromium: Any, server: LiveServer) -> None:
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(60_000)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(server.url)
    page.wait_for_selector(".docbot-status")

    sources = ask(page, QUESTION)
    assert "Orla Quist" in bot_messages(page).last.inner_text()
    assert QUESTION in page.locator('#docbot-chat [data-testid="user"]').last.inner_text()
    assert NAME in sources.inner_text()  # the file name, as text, beside its citation
    sources.locator("summary").first.click()  # the surrounding text, opened
    page.locator('#docbot-chat button[aria-label="Dislike"]').last.click()
    wait_until(lambda: any(vote["question"] == QUESTION for vote in stored_votes(server.data_dir)))
    record = stored_votes(server.data_dir)[-1]
    assert record["vote"] == "down" and record["question"] == QUESTION
    assert record["citations"][0]["source"] == NAME

    page.get_by_role("tab", name="Documents").click()
    page.locator("#docbot-documents td", has_text="onerror=window.__xss=11").first.wait_for()
    screenshot(page, "hostile-names-page")
    assert_inert(page)
    assert dialogs == []


def test_embed_shows_hostile_names_and_questions_as_text(chromium: Any, server: LiveServer) -> None:
    from playwright.sync_api import expect

    page = chromium.new_page(viewport={"width": 400, "height": 700})
    page.goto(f"{server.url}/embed")
    page.locator("#question").fill(QUESTION)
    page.locator("#send").click()
    answer = page.locator(".msg.bot").last
    expect(answer.locator("button.cite").first).to_be_visible(timeout=90_000)
    expect(page.locator(".msg.user").last).to_have_text(QUESTION)
    expect(answer.locator(".text")).to_contain_text("Orla Quist")
    answer.locator("button.cite").first.click()
    expect(answer.locator("details.source").first).to_contain_text(NAME)
    screenshot(page, "hostile-names-embed")
    assert_inert(page)
    assert all(mark in page.locator("#log").inner_text() for mark in PAYLOAD_MARKS)
