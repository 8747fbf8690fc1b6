"""PDF page views: a page drawn cold (in the viewer's worker) and from the disk cache, against bare pypdfium2.

The baseline is measured in the same run on the same pages: open the PDF and draw the page with pypdfium2 in
this process, no PNG, no worker, no budget. The PDF is two-column A4 text (:func:`two_column_pdf`), the layout
the tests use too.
"""

from __future__ import annotations

import statistics
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

from bot.view.pdf import PageRenderer, page_count
from index.parse_pool import ParseBudget

#: Layout of :func:`two_column_pdf` (A4 in points, Helvetica 10 on 13).
PAGE_WIDTH, PAGE_HEIGHT = 595.2756, 841.8898
MARGIN, GUTTER, LEADING, FONT_SIZE = 56.0, 24.0, 13.0, 10
COLUMN_CHARS = 42
LINES_PER_COLUMN = int((PAGE_HEIGHT - 2 * MARGIN) // LEADING)
BUDGET = ParseBudget(timeout_s=60, memory_mb=1024)
DPI = 150


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


@dataclass(frozen=True, slots=True)
class ViewTimes:
    pages: int
    dpi: int
    bare_ms: float  # median: pypdfium2 opens the file and draws the page, in this process
    first_ms: float  # the very first view: the worker process starts, then draws
    cold_ms: float  # median: a page not drawn before (warm worker), PNG written to the cache
    cached_ms: float  # median: the same page again, read from the disk cache
    cold_over_bare: float
    cached_over_bare: float
    png_kib: float


def _bare(path: Path, page: int) -> float:
    import pypdfium2 as pdfium

    started = time.perf_counter()
    document = pdfium.PdfDocument(path)
    document[page - 1].render(scale=DPI / 72)
    document.close()
    return time.perf_counter() - started


def _timed(renderer: PageRenderer, path: Path, page: int) -> tuple[float, int]:
    started = time.perf_counter()
    size = len(renderer.png(path, page, DPI))
    return time.perf_counter() - started, size


def sample_pdf(path: Path, pages: int, words: list[str]) -> Path:
    """``pages`` full two-column pages of text made from ``words``."""
    per_page = []
    for number in range(pages):
        paragraphs = []
        for p in range(12):
            start = (number * 997 + p * 131) % max(len(words) - 60, 1)
            paragraphs.append(" ".join(words[start : start + 45]).capitalize() + ".")
        per_page.append(paragraphs)
    return two_column_pdf(path, per_page)


def measure(work: Path, words: list[str], pages: int = 12) -> ViewTimes:
    pdf = sample_pdf(work / "views.pdf", pages, words)
    renderer = PageRenderer(work / "views-cache", 1 << 30, BUDGET)
    first, _ = _timed(renderer, pdf, 1)
    assert page_count(pdf, budget=BUDGET) == pages
    numbers = range(2, pages + 1)
    bare = [_bare(pdf, n) for n in numbers]
    cold, sizes = zip(*(_timed(renderer, pdf, n) for n in numbers), strict=True)
    cached = [_timed(renderer, pdf, n)[0] for n in numbers]
    bare_ms, cold_ms, cached_ms = (1000 * statistics.median(times) for times in (bare, cold, cached))
    return ViewTimes(
        pages=len(numbers),
        dpi=DPI,
        bare_ms=round(bare_ms, 1),
        first_ms=round(1000 * first, 1),
        cold_ms=round(cold_ms, 1),
        cached_ms=round(cached_ms, 2),
        cold_over_bare=round(cold_ms / bare_ms, 2),
        cached_over_bare=round(cached_ms / bare_ms, 3),
        png_kib=round(statistics.median(sizes) / 1024, 1),
    )
