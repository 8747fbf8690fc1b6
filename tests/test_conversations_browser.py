"""Conversations kept across page reloads, in Debian's Chromium through Playwright against the real ``docbot serve``.

The browser keeps only its random id and the conversation it shows; the turns come back from the state database.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from live import LiveServer, live_server
from test_ui_browser import question_box_ready

pytestmark = [pytest.mark.browser, pytest.mark.server]

QUESTION = "What did coalition forces resume because of the growing ISIS force?"
FOLLOW_UP = "Which warplanes carried out attacks against them last month?"
OTHER = "Who is Con Coughlin?"
WAIT_MS = 60_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("conversations"), timeout_s=600) as live:  # anonymous may ask
        yield live


def _open(context: Any, server: LiveServer) -> Any:
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(server.url)
    page.wait_for_selector(".docbot-status")
    return page


def _ask(page: Any, question: str) -> None:
    """Send a question and wait for its finished answer (its sources panel section)."""
    question_box_ready(page)
    answers = _answers(page).count()
    page.locator("#docbot-question textarea").fill(question)
    page.locator("#docbot-question textarea").press("Enter")
    page.locator(f"#src-turn-{answers}").wait_for(state="attached")


def _answers(page: Any) -> Any:
    return page.locator('#docbot-chat [data-testid="bot"]')


def _past(page: Any) -> Any:
    return page.locator("#docbot-past label")


def test_a_reload_brings_back_the_conversation_and_the_list(chromium: Any, server: LiveServer) -> None:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = _open(context, server)
    _ask(page, QUESTION)
    assert _answers(page).first.locator("a.cite").count() >= 1
    _past(page).first.wait_for()
    assert _past(page).count() == 1 and QUESTION[:40] in _past(page).first.inner_text()
    answer = _answers(page).first.inner_text()

    page.reload()
    page.wait_for_selector(".docbot-status")
    _answers(page).first.wait_for()
    assert _answers(page).count() == 1 and _answers(page).first.inner_text() == answer
    assert page.locator("#docbot-sources #src-turn-0 .src-card").count() >= 1  # its sources, too
    assert _past(page).count() == 1 and _past(page).first.locator("input").is_checked()

    _ask(page, FOLLOW_UP)  # continued after the reload, with its history
    assert "warplanes" in _answers(page).nth(1).inner_text().lower()

    page.locator("#docbot-new").click()
    page.wait_for_function("document.querySelectorAll('#docbot-chat [data-testid=\"bot\"]').length === 0")
    _ask(page, OTHER)
    page.wait_for_function("document.querySelectorAll('#docbot-past label').length === 2")
    assert OTHER in _past(page).first.inner_text()  # the newest first

    _past(page).nth(1).click()  # open the first conversation again
    page.wait_for_function("document.querySelectorAll('#docbot-chat [data-testid=\"bot\"]').length === 2")
    page.reload()
    page.wait_for_selector(".docbot-status")
    page.wait_for_function("document.querySelectorAll('#docbot-chat [data-testid=\"bot\"]').length === 2")
    assert _past(page).count() == 2 and _past(page).nth(1).locator("input").is_checked()

    stranger = chromium.new_context(viewport={"width": 1280, "height": 900})  # another visitor's browser
    other = _open(stranger, server)
    question_box_ready(other)  # the restore step after the page's load is done
    assert _answers(other).count() == 0 and _past(other).count() == 0
    stranger.close()
    context.close()
