"""The evidence viewer in Debian's Chromium against the real ``docbot serve``: a citation on the chat page and on
``/embed`` opens its document with the supporting sentence highlighted and scrolled into view.

With UPDATE_DOCS_SCREENSHOT=1 the viewer's screenshot is also copied to docs/viewer.png (docs/page.md shows it).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import EVAL_SET, ROOT
from helpers import pdfium_boxes
from live import LiveServer, live_server, screenshot, seeds_with

from bench.pdfs import ACROSS, harbour_report_pdf

pytestmark = [pytest.mark.browser, pytest.mark.server]

KEY = "viewer-browser-key-2b9e41"
SEED = next(json.loads(line) for line in EVAL_SET.read_text().splitlines() if '"dev-03"' in line)
PDF_QUESTION = "Where do pilots board the incoming tankers?"
WAIT_MS = 90_000
DESKTOP = {"viewport": {"width": 1280, "height": 900}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    work = tmp_path_factory.mktemp("viewer")
    docs = seeds_with(work, {})
    harbour_report_pdf(docs / "harbour-report.pdf")
    env = {"DOCBOT_API_KEYS": KEY, "DOCBOT_ANONYMOUS_ROLE": "reader"}  # the page open to readers, the embed keyed
    with live_server(work, env=env, docs=docs, timeout_s=300) as live:
        yield live


def harbour(server: LiveServer) -> Path:
    return server.data_dir.parent / "docs" / "harbour-report.pdf"


def assert_boxes_cover_the_sentence(view: Any, pdf: Any, sentence: str, scope: str = "") -> None:
    """The highlight rectangles on screen hold every character of ``sentence`` (pdfium's own boxes, scaled to the
    drawn page's pixels) and the centre of no other character."""
    picture = view.locator(f"{scope} .view-sheet img").bounding_box()
    boxes = [box for box in (r.bounding_box() for r in view.locator(f"{scope} rect.quote").all()) if box]
    assert picture and len(boxes) >= 2  # the sentence crosses the column break

    def pixels(rect: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        left, top, right, bottom = rect
        return (
            picture["x"] + left * picture["width"],
            picture["y"] + top * picture["height"],
            picture["x"] + right * picture["width"],
            picture["y"] + bottom * picture["height"],
        )

    def holds(box: dict[str, float], rect: tuple[float, float, float, float], slack: float) -> bool:
        return (
            box["x"] - slack <= rect[0]
            and box["y"] - slack <= rect[1]
            and rect[2] <= box["x"] + box["width"] + slack
            and rect[3] <= box["y"] + box["height"] + slack
        )

    mine, others = pdfium_boxes(pdf, 2, sentence)
    for char in map(pixels, mine):
        assert any(holds(box, char, 1.0) for box in boxes), char
    for char in map(pixels, others):
        centre = ((char[0] + char[2]) / 2, (char[1] + char[3]) / 2) * 2
        assert not any(holds(box, centre, 0.0) for box in boxes), char


def in_viewport(locator: Any) -> bool:
    return bool(
        locator.evaluate(
            "(el) => { const r = el.getBoundingClientRect();"
            " return r.top >= 0 && r.bottom <= window.innerHeight && r.height > 0; }"
        )
    )


def on_screen(page: Any, locator: Any) -> bool:
    """The element (in a frame or not) lies inside the page's viewport."""
    box, size = locator.bounding_box(), page.viewport_size
    return bool(box) and box["y"] >= 0 and box["y"] + box["height"] <= size["height"]


def ask_on_the_page(page: Any, server: LiveServer, question: str) -> None:
    page.goto(server.url)
    page.wait_for_selector(".docbot-status")
    page.locator("#docbot-question textarea").fill(question)
    page.locator("#docbot-question textarea").press("Enter")
    page.locator("#src-turn-0 .src-card").first.wait_for(state="attached")


def page_marker(page: Any, card: Any) -> Any:
    """The answer's ``[n]`` of the source ``card`` (its number n)."""
    number = card.locator(".src-num").inner_text().strip()
    return page.locator('#docbot-chat [data-testid="bot"] a.cite', has_text=f"[{number}]").first


def shown_view(page: Any) -> Any:
    """The viewer [n] opened in its source's card, once its page (and picture) has loaded and scrolled."""
    page.locator(".src-card.active .docbot-viewer.loaded").wait_for()
    return page.frame_locator(".src-card.active .docbot-viewer iframe")


def test_clicking_1_on_the_page_opens_the_document_at_the_highlighted_sentence(
    chromium: Any, server: LiveServer
) -> None:
    from playwright.sync_api import expect

    context = chromium.new_context(**DESKTOP)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    ask_on_the_page(page, server, SEED["question"])
    marker = page.locator('#docbot-chat [data-testid="bot"] a.cite', has_text="[1]").first
    marker.click()
    card = page.locator("#src-turn-0 .src-card.active")
    expect(card).to_have_id("src-0-1")
    quote = card.locator(".src-passage mark.src-quote").inner_text()
    assert SEED["evidence"] in " ".join(quote.split())
    view = shown_view(page)
    cited = view.locator("mark.quote#cited")
    expect(cited).to_have_text(quote)
    expect(view.locator("mark.passage")).to_contain_text(quote)
    assert in_viewport(cited)  # the frame is scrolled to the sentence
    assert on_screen(page, cited)  # and so is the frame, on the page
    assert view.locator("body").evaluate("(body) => body.ownerDocument.scripts.length") == 0
    shot = screenshot(page, "viewer-text")
    assert shot.exists()
    page.keyboard.press("Escape")
    expect(page.locator(".docbot-viewer")).to_have_count(0)

    href = marker.get_attribute("href")
    assert href and href.startswith("/view/") and card.locator("a.src-open").get_attribute("href") == href
    with context.expect_page() as opened:  # the source card's link still opens the view in a new tab
        card.locator("a.src-open").click()
    expect(opened.value.locator("mark.quote#cited")).to_have_text(quote)
    context.close()


def test_clicking_1_on_the_page_shows_the_pdf_page_with_the_sentence_boxed(chromium: Any, server: LiveServer) -> None:
    from playwright.sync_api import expect

    context = chromium.new_context(**DESKTOP)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    ask_on_the_page(page, server, PDF_QUESTION)
    card = page.locator("#src-turn-0 .src-card").filter(has_text="harbour-report.pdf").first
    expect(card.locator(".src-passage mark.src-quote")).to_contain_text("Pilots board")
    page_marker(page, card).click()
    expect(card).to_have_class(re.compile(r"\bactive\b"))
    view = shown_view(page)
    expect(view.locator(".view-meta")).to_contain_text("page 2 of 3")
    view.locator(".view-sheet img").evaluate("(img) => img.decode()")
    assert in_viewport(view.locator("rect#cited")) and on_screen(page, view.locator("rect#cited"))
    assert_boxes_cover_the_sentence(view, harbour(server), ACROSS)
    shot = screenshot(page, "viewer-pdf")
    if os.environ.get("UPDATE_DOCS_SCREENSHOT"):  # the whole page: the sentence on both sides of the column break
        whole = context.new_page()
        whole.set_viewport_size({"width": 1100, "height": 1300})
        whole.goto(server.url + str(card.locator("a.src-open").get_attribute("href")))
        whole.locator(".view-sheet img").evaluate("(img) => img.decode()")
        whole.evaluate("window.scrollTo(0, 0)")
        whole.screenshot(path=str(ROOT / "docs" / "viewer.png"))
    assert shot.exists()

    view.locator("a.view-zoom", has_text="200%").click()  # drawn again at twice the resolution: boxes still fit
    view.locator(".view-sheet.zoom-200 img").evaluate("(img) => img.decode()")
    natural = view.locator(".view-sheet img").evaluate("(img) => img.naturalWidth")
    assert natural >= view.locator(".view-sheet img").bounding_box()["width"]  # never upscaled: sharp
    assert_boxes_cover_the_sentence(view, harbour(server), ACROSS)
    view.locator("a.view-next").click()
    expect(view.locator(".view-meta")).to_contain_text("page 3 of 3")
    assert view.locator("rect.quote").count() == 0
    context.close()


def test_clicking_1_in_the_embed_opens_the_viewer_panel_with_the_key(chromium: Any, server: LiveServer) -> None:
    from playwright.sync_api import expect

    page = chromium.new_page(viewport={"width": 400, "height": 640})
    page.set_default_timeout(WAIT_MS)
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.goto(f"{server.url}/embed#key={KEY}")
    page.locator("#question").fill(SEED["question"])
    page.locator("#send").click()
    answer = page.locator(".msg.bot").last
    answer.locator("button.cite", has_text="[1]").first.click()
    expect(answer.locator("details.source").first).to_have_attribute("open", "")  # its card opens beneath
    quote = answer.locator("blockquote.quote").first.inner_text()
    cited = page.locator("section.viewer mark.quote#cited")
    expect(cited).to_have_text(quote)
    assert SEED["evidence"] in " ".join(quote.split())
    assert in_viewport(cited)
    screenshot(page, "viewer-embed")
    page.locator("section.viewer .viewer-close").click()
    expect(page.locator("section.viewer")).to_have_count(0)
    answer.locator("details.source").first.locator("button.open-view").click()  # the card's button still opens it
    expect(cited).to_have_text(quote)
    assert not [line for line in console if "Content Security Policy" in line or "Refused" in line]


def test_clicking_1_on_a_pdf_citation_in_the_embed_boxes_the_sentence(chromium: Any, server: LiveServer) -> None:
    from playwright.sync_api import expect

    page = chromium.new_page(viewport={"width": 800, "height": 900})
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{server.url}/embed#key={KEY}")
    page.locator("#question").fill(PDF_QUESTION)
    page.locator("#send").click()
    answer = page.locator(".msg.bot").last
    source = answer.locator("details.source").filter(has_text="harbour-report.pdf").first
    number = source.locator(".num").inner_text().strip()  # "[n]"
    answer.locator("button.cite", has_text=number).first.click()
    expect(page.locator("section.viewer .view-meta")).to_contain_text("page 2 of 3")
    picture = page.locator("section.viewer .view-sheet img")
    expect(picture).to_have_attribute("src", re.compile("^blob:"))  # fetched with the key
    picture.evaluate("(img) => img.decode()")
    assert_boxes_cover_the_sentence(page, harbour(server), ACROSS, "section.viewer")
    screenshot(page, "viewer-embed-pdf")


def test_the_live_viewer_answers_readers_and_refuses_bad_credentials(server: LiveServer) -> None:
    import httpx

    answer = httpx.post(
        f"{server.url}/api/ask",
        json={"question": SEED["question"]},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=WAIT_MS / 1000,
    )
    url = server.url + answer.json()["citations"][0]["view_url"]
    assert httpx.get(url, timeout=60).status_code == 200  # DOCBOT_ANONYMOUS_ROLE=reader
    refused = httpx.get(url, headers={"Authorization": "Bearer not-the-key"}, timeout=60)
    assert refused.status_code == 401 and refused.headers["www-authenticate"]
    removed = httpx.get(f"{server.url}/view/{'0' * 32}?quote=1-2", timeout=60)
    assert removed.status_code == 404 and "removed from the index" in removed.text
