"""The PDF evidence view over docbot's cleaned page text (index/text_clean.py): a word hyphenated at a line end reads
whole in docbot's text, and its span is still boxed on both lines of the page, through the map back to the text
as extracted (bench/pdfs.py ``harbour_paper_pdf``)."""

from __future__ import annotations

from pathlib import Path

from helpers import pools
from test_view_pdf import BUDGET, assert_covers_exactly, span, truth

from bench.pdfs import HYPHENATED, HYPHENATED_LINES, harbour_paper_pdf
from bot.view.pdf import sentence_boxes

#: The sentence as pdfium reads the page: the line-end hyphen is its soft-hyphen mark, the lines run together.
PRINTED = "\ufffe".join(line.rstrip("-") for line in HYPHENATED_LINES)


def test_a_word_hyphenated_at_a_line_end_is_boxed_on_both_lines(tmp_path: Path) -> None:
    """docbot's text reads "unstoppable" where the page prints "unstoppa-" and "ble": the cited sentence's boxes
    cover both halves and the hyphen, and no other character."""
    pdf = harbour_paper_pdf(tmp_path / "harbour-review.pdf")
    start, end = span(pdf, 2, HYPHENATED)
    boxes = sentence_boxes(pdf, 2, start, end, viewer=pools().view, budget=BUDGET, expected=HYPHENATED)
    mine, others = truth(pdf, 2, PRINTED)
    assert len(boxes) == 2
    assert_covers_exactly(boxes, mine, others)
    word = HYPHENATED.index("unstoppable") + start
    assert len(sentence_boxes(pdf, 2, word, word + len("unstoppable"), viewer=pools().view, budget=BUDGET)) == 2
