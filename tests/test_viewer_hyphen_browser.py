"""The evidence viewer in Debian's Chromium against the real ``docbot serve`` on a white-paper-like PDF: a cited
sentence whose word is hyphenated at a line end ("unstoppa-" / "ble") reads whole in the source card, and its boxes
on the page cover both halves of the word (docbot's cleaned text mapped back to the characters printed).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from live import LiveServer, live_server, screenshot, seeds_with
from test_viewer_browser import DESKTOP, WAIT_MS, ask_on_the_page, assert_boxes_cover_the_sentence, page_marker
from test_viewer_browser import shown_view as shown

from bench.pdfs import HYPHENATED, HYPHENATED_LINES, harbour_paper_pdf

pytestmark = [pytest.mark.browser, pytest.mark.server]

QUESTION = "Which recorder logs the water level every six minutes at the pier head?"
#: The sentence as pdfium reads the page: the line-end hyphen is its soft-hyphen mark, the lines run together.
PRINTED = "\ufffe".join(line.rstrip("-") for line in HYPHENATED_LINES)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    work = tmp_path_factory.mktemp("viewer-hyphen")
    docs = seeds_with(work, {})
    harbour_paper_pdf(docs / "harbour-review.pdf")
    with live_server(work, env={"DOCBOT_ANONYMOUS_ROLE": "reader"}, docs=docs, timeout_s=300) as live:
        yield live


def test_a_word_hyphenated_at_a_line_end_is_whole_in_the_card_and_boxed_on_both_lines(
    chromium: Any, server: LiveServer
) -> None:
    from playwright.sync_api import expect

    context = chromium.new_context(**DESKTOP)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    ask_on_the_page(page, server, QUESTION)
    card = page.locator("#src-turn-0 .src-card").filter(has_text="harbour-review.pdf").first
    quote = card.locator(".src-passage mark.src-quote")
    expect(quote).to_contain_text("an unstoppable recorder")
    assert " ".join(quote.inner_text().split()) == HYPHENATED
    assert "Page 2 of 4" not in card.inner_text() and "Annual Report" not in card.inner_text()
    page_marker(page, card).click()
    expect(card).to_have_class(re.compile(r"\bactive\b"))
    view = shown(page)
    expect(view.locator(".view-meta")).to_contain_text("page 2 of 4")
    view.locator(".view-sheet img").evaluate("(img) => img.decode()")
    pdf = server.data_dir.parent / "docs" / "harbour-review.pdf"
    assert_boxes_cover_the_sentence(view, pdf, PRINTED)  # "unstoppa-" on one line, "ble" on the next: both boxed
    assert view.locator("rect.quote").count() == 2
    screenshot(page, "viewer-pdf-hyphen")
    context.close()
