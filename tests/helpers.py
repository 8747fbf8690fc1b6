"""Helpers several test modules share (fixtures are in conftest.py; small indexes and fake models in
answer_fixtures.py; PDFs are built by bench/pdfs.py)."""

from __future__ import annotations

from pathlib import Path

#: A box as (left, top, right, bottom) fractions of the page, origin top-left (as ``bot.view.pdf.Box``).
Rect = tuple[float, float, float, float]


def pdfium_boxes(path: Path, page: int, sentence: str) -> tuple[list[Rect], list[Rect]]:
    """pdfium's tight boxes (page fractions) of ``sentence``'s characters on the page, and of every other inked
    character there, read straight from pypdfium2 without docbot's viewer code (unrotated pages with the origin at
    0, 0, as reportlab writes)."""
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
