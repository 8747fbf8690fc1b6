"""The README's screenshot, taken from the current page in Debian's Chromium against the real ``docbot serve``.

Seeds in the default collection and a leave policy in ``hr``, both picked, so the page shows the collections
picker, a filter chip, an answer with its cited source open in its document, and two past conversations. The shot goes
to the test's temporary folder and is checked (a PNG of the page's size, not blank). ``make screenshots`` sets
DOCBOT_SCREENSHOTS_DIR=docs/images, and the same test then writes docs/images/chat.png, the README's image.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from live import LiveServer, child_env, live_server, screenshot
from test_collections_live import HR_POLICY
from test_collections_live import LEAVE as EARLIER
from test_ui_browser import ask

pytestmark = [pytest.mark.browser, pytest.mark.server]

#: Read when the module is imported: the tests' own fixtures clear DOCBOT_* variables and change the folder.
SCREENSHOTS_DIR = (
    Path(os.environ["DOCBOT_SCREENSHOTS_DIR"]).resolve() if os.environ.get("DOCBOT_SCREENSHOTS_DIR") else None
)
DOCBOT = str(Path(sys.executable).with_name("docbot"))
WAIT_MS = 60_000
VIEWPORT = {"width": 1280, "height": 900}

QUESTION = "What did coalition forces resume because of the growing ISIS force?"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Seeds in ``default`` and the leave policy in ``hr``; one person on a laptop (anonymous admin)."""
    work = tmp_path_factory.mktemp("screenshots")
    folder = work / "hr"
    folder.mkdir()
    (folder / "leave.md").write_text(HR_POLICY, encoding="utf-8")
    env = {**child_env(), "DOCBOT_DATA_DIR": str(work / "data")}
    subprocess.run([DOCBOT, "index", "--collection", "hr", str(folder)], cwd=work, env=env, check=True)
    with live_server(work, env={"DOCBOT_ANONYMOUS_ROLE": "admin"}, timeout_s=600) as live:
        yield live


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_the_readme_screenshot_shows_the_picker_filters_an_answer_and_past_conversations(
    chromium: Any, server: LiveServer, tmp_path: Path
) -> None:
    context = chromium.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        page.goto(server.url)
        page.wait_for_selector(".docbot-status")
        picker = page.locator("#docbot-collections")
        picker.wait_for(state="visible")
        # pick hr beside default: questions then go to both collections, searched as one ranking
        picker.locator("input").click()
        page.get_by_role("option", name="hr", exact=True).click()
        page.locator("#docbot-status-line").click()  # close the list
        page.wait_for_function("() => document.querySelector('#docbot-collections').innerText.includes('hr')")
        page.wait_for_timeout(1_000)  # the pick's events (the page names no sign of them) before the first question
        earlier = ask(page, EARLIER)  # a first conversation, answered from hr: the pick took effect
        assert "leave.md" in earlier.inner_text(), earlier.inner_text()
        page.locator("#docbot-new").click()
        page.wait_for_function("() => document.querySelectorAll('#docbot-chat [data-testid=\"bot\"]').length === 0")
        chips = page.locator("#docbot-filters")
        chips.locator("input").click()
        page.get_by_role("option", name="type=txt", exact=True).click()  # a filter chip: text files only
        page.locator("#docbot-status-line").click()
        sources = ask(page, QUESTION)
        answer = page.locator('#docbot-chat [data-testid="bot"]').last
        assert "air strikes" in answer.inner_text() and answer.locator("a.cite").count() >= 1
        answer.locator("a.cite").first.click()
        sources.locator(".src-card.active .docbot-viewer.loaded").wait_for()  # the cited document, opened in it
        page.wait_for_function("() => document.querySelectorAll('#docbot-past label').length === 2")

        # what the shot must show, each on the page before it is taken
        tokens = picker.inner_text()
        assert "default" in tokens and "hr" in tokens, tokens
        assert chips.is_visible() and "type=txt" in chips.inner_text()
        assert page.locator("#docbot-past").is_visible() and EARLIER[:30] in page.locator("#docbot-past").inner_text()
        assert "isis-resurgence-iraq.txt" in sources.locator(".src-card.active").inner_text()
        page.evaluate("window.scrollTo(0, 0)")
        page.mouse.move(0, 0)  # no hover effect in the picture

        shot = tmp_path / "chat.png"
        page.screenshot(path=str(shot), full_page=True)
    except Exception:
        screenshot(page, "readme-chat-failed")  # what the page showed instead, in test-artifacts/
        raise
    finally:
        context.close()

    width, height = png_size(shot)
    assert width == VIEWPORT["width"] and VIEWPORT["height"] <= height <= 4 * VIEWPORT["height"], (width, height)
    assert shot.stat().st_size > 30_000, "too small for the whole page: a blank or half-drawn shot"
    from PIL import Image

    with Image.open(shot) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is None or len(colours) > 200, "a page of a few flat colours: not drawn"
    if SCREENSHOTS_DIR is not None:
        SCREENSHOTS_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOTS_DIR / "chat.png")
