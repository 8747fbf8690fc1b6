"""Two-column PDFs with known sentences, and where pdfium itself says those sentences are (shared by the PDF view
tests, the viewer's browser tests and ``bench/views.py``).

:func:`harbour_report_pdf` writes three A4 pages; on page 2, :data:`WRAPPED` wraps over three lines of the left
column and :data:`ACROSS` starts two lines above the bottom of the left column and ends at the top of the right
one. :func:`pdfium_boxes` reads the true character boxes straight from pypdfium2, without docbot's viewer code.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

#: Layout of :func:`two_column_pdf` (A4 in points, Helvetica 10 on 13).
PAGE_WIDTH, PAGE_HEIGHT = 595.2756, 841.8898
MARGIN, GUTTER, LEADING, FONT_SIZE = 56.0, 24.0, 13.0, 10
COLUMN_CHARS = 42
LINES_PER_COLUMN = int((PAGE_HEIGHT - 2 * MARGIN) // LEADING)

WRAPPED = (
    "The harbour master rings the fog bell every ninety seconds while the eastern channel stays closed to "
    "vessels of deep draught."
)
ACROSS = (
    "Pilots board the incoming tankers at the outer buoy and bring them through the dredged channel to the "
    "north berth before the evening tide turns."
)
FILLER = "Cranes unload containers onto the quay where trucks wait in long rows beside the customs shed".split()

#: A box as (left, top, right, bottom) fractions of the page, origin top-left (as ``bot.view.pdf.Box``).
Rect = tuple[float, float, float, float]


def column_lines(paragraphs: list[str]) -> list[str]:
    """The lines one page's paragraphs take, a blank line after each, as :func:`two_column_pdf` wraps them."""
    lines: list[str] = []
    for paragraph in paragraphs:
        lines += [*textwrap.wrap(paragraph, COLUMN_CHARS), ""]
    return lines


def two_column_pdf(path: Path, pages: list[list[str]], title: str = "Harbour report") -> Path:
    """A PDF whose pages hold ``pages``' paragraphs in two columns (left column first), lines wrapped at
    :data:`COLUMN_CHARS` characters. A page that does not fit raises ``ValueError``."""
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path), pagesize=(PAGE_WIDTH, PAGE_HEIGHT))
    pdf.setTitle(title)
    column_width = (PAGE_WIDTH - 2 * MARGIN - GUTTER) / 2
    for number, paragraphs in enumerate(pages, start=1):
        lines = column_lines(paragraphs)
        if len(lines) > 2 * LINES_PER_COLUMN + 1:
            raise ValueError(f"page {number} takes {len(lines)} lines; two columns hold {2 * LINES_PER_COLUMN}")
        pdf.setFont("Helvetica", FONT_SIZE)
        for at, line in enumerate(lines):
            column, row = divmod(at, LINES_PER_COLUMN)
            if line:
                x = MARGIN + column * (column_width + GUTTER)
                pdf.drawString(x, PAGE_HEIGHT - MARGIN - (row + 1) * LEADING, line)
        pdf.showPage()
    pdf.save()
    return path


def filler(lines: int) -> str:
    """A paragraph of exactly ``lines`` wrapped lines."""
    words = [FILLER[0]]
    while len(column_lines([" ".join(words)])) - 1 < lines:
        words.append(FILLER[len(words) % len(FILLER)])
    while len(column_lines([" ".join(words)])) - 1 > lines:
        words.pop()
    return " ".join(words) + "."


def harbour_report_pdf(path: Path) -> Path:
    """Three pages; page 2 holds :data:`WRAPPED` (over lines) and :data:`ACROSS` (over the column break)."""
    before = filler(8)
    used = len(column_lines([before])) + len(column_lines([WRAPPED]))
    gap = filler(LINES_PER_COLUMN - 2 - used - 1)  # ACROSS then starts two lines above the column's end
    page2 = [before, WRAPPED, gap, ACROSS, filler(20), "The end of page two."]
    pages = [[filler(30), "Page one talks about tugboats."], page2, [filler(10), "Page three is short."]]
    return two_column_pdf(path, pages)


def pdfium_boxes(path: Path, page: int, sentence: str) -> tuple[list[Rect], list[Rect]]:
    """pdfium's tight boxes (page fractions) of ``sentence``'s characters on the page, and of every other inked
    character there, read straight from pypdfium2 (unrotated pages with the origin at 0, 0, as reportlab writes)."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(path)
    try:
        pdf_page = document[page - 1]
        width, height = pdf_page.get_size()
        textpage = pdf_page.get_textpage()
        inked = [i for i in range(textpage.count_chars()) if textpage.get_text_range(i, 1).strip()]
        flat = "".join(textpage.get_text_range(i, 1) for i in inked)
        wanted = "".join(sentence.split())
        assert flat.count(wanted) == 1, sentence
        at = flat.index(wanted)
        mine = set(inked[at : at + len(wanted)])

        def rect(index: int) -> Rect:
            left, bottom, right, top = textpage.get_charbox(index)
            return left / width, 1 - top / height, right / width, 1 - bottom / height

        return [rect(i) for i in inked if i in mine], [rect(i) for i in inked if i not in mine]
    finally:
        document.close()
