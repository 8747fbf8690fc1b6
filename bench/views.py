"""PDF page views: a page drawn cold (in the viewer's worker) and from the disk cache, against bare pypdfium2.

The baseline is measured in the same run on the same pages: open the PDF and draw the page with pypdfium2 in
this process, no PNG, no worker, no budget. The PDF is two-column A4 text (:func:`two_column_pdf`), the layout
the tests use too (:mod:`bench.pdfs`).
"""

from __future__ import annotations

import os
import random
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from bench.corpus import SEED, ProseWriter
from bench.pdfs import LINES_PER_COLUMN, column_lines, two_column_pdf
from bot.config import Settings
from bot.view.pdf import PageRenderer, ViewerPool, page_count, sentence_boxes, view_budget
from index.parse_pool import ParseBudget


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
    boxes_cold_ms: float  # median: a span's boxes on a page not measured before (pypdf and pdfium text, aligned)
    boxes_cached_ms: float  # median: the same again, from the layouts kept in memory
    load_average: float  # of the machine over the last minute, when done (2 cores: above 2 is contention)


def _bare(path: Path, page: int, dpi: int) -> float:
    import pypdfium2 as pdfium

    started = time.perf_counter()
    document = pdfium.PdfDocument(path)
    document[page - 1].render(scale=dpi / 72)
    document.close()
    return time.perf_counter() - started


def _timed(renderer: PageRenderer, path: Path, page: int, dpi: int) -> tuple[float, int]:
    started = time.perf_counter()
    size = len(renderer.png(path, page, dpi))
    return time.perf_counter() - started, size


def _boxes(path: Path, page: int, viewer: ViewerPool, budget: ParseBudget) -> float:
    """Time to find the boxes of the page's first 200 characters."""
    started = time.perf_counter()
    sentence_boxes(path, page, 0, 200, viewer=viewer, budget=budget)
    return time.perf_counter() - started


def sample_pdf(path: Path, pages: int) -> Path:
    """``pages`` full two-column pages of the benchmark corpus's prose."""
    writer = ProseWriter(random.Random(SEED))
    per_page: list[list[str]] = [[]]
    while len(per_page) <= pages:
        for block in writer.document()[2]:
            if block.startswith("#"):
                continue
            if len(column_lines([*per_page[-1], block])) > 2 * LINES_PER_COLUMN:
                per_page.append([])
            per_page[-1].append(block)
    return two_column_pdf(path, per_page[:pages])


def measure(work: Path, settings: Settings, pages: int = 12) -> ViewTimes:
    """Page 1 first (the worker starts), then every other page cold, then every other page again (cached); then a
    span's boxes on every other page, cold and again."""
    pdf = sample_pdf(work / "views.pdf", pages)
    budget, dpi = view_budget(settings), settings.view_dpi
    viewer = ViewerPool()  # the benchmark's process's own viewer workers
    renderer = PageRenderer(work / "views-cache", settings.view_cache_bytes, budget, viewer)
    first, _ = _timed(renderer, pdf, 1, dpi)
    assert page_count(pdf, viewer=viewer, budget=budget) == pages
    numbers = range(2, pages + 1)
    bare = [_bare(pdf, n, dpi) for n in numbers]
    cold, sizes = zip(*(_timed(renderer, pdf, n, dpi) for n in numbers), strict=True)
    cached = [_timed(renderer, pdf, n, dpi)[0] for n in numbers]
    boxes_cold = [_boxes(pdf, n, viewer, budget) for n in numbers]
    boxes_cached = [_boxes(pdf, n, viewer, budget) for n in numbers]
    viewer.close()
    bare_ms, cold_ms, cached_ms = (1000 * statistics.median(times) for times in (bare, cold, cached))
    return ViewTimes(
        pages=len(numbers),
        dpi=dpi,
        bare_ms=round(bare_ms, 1),
        first_ms=round(1000 * first, 1),
        cold_ms=round(cold_ms, 1),
        cached_ms=round(cached_ms, 2),
        cold_over_bare=round(cold_ms / bare_ms, 2),
        cached_over_bare=round(cached_ms / bare_ms, 3),
        png_kib=round(statistics.median(sizes) / 1024, 1),
        boxes_cold_ms=round(1000 * statistics.median(boxes_cold), 1),
        boxes_cached_ms=round(1000 * statistics.median(boxes_cached), 2),
        load_average=round(os.getloadavg()[0], 1),
    )
