"""What pdfium tells about one PDF page: its characters with their boxes, and its picture.

Runs only inside the viewer's worker process (:mod:`bot.view.pdf_worker`), under its time and memory budget.
"""

from __future__ import annotations

import ctypes
import io
from collections.abc import Callable

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import ImageChops

from bot.view.errors import ViewError
from bot.view.layout import Box, PageChars

#: The largest picture of a page, in pixels: a page declared kilometres wide is drawn smaller, not at 150 dpi.
MAX_PIXELS = 30_000_000
#: Device units of the square a page is mapped onto to measure it (fractions with six digits).
_UNITS = 1_000_000
_LINE_BREAKS = frozenset("\r\n")


def open_document(data: bytes) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        reason = " ".join(str(exc).split())
        raise ViewError(f"corrupt or unreadable PDF ({reason})") from exc


def get_page(document: pdfium.PdfDocument, number: int) -> pdfium.PdfPage:
    """Page ``number`` (from 1), or a :class:`ViewError` saying how many there are."""
    if not 1 <= number <= len(document):
        raise ViewError(f"page {number} is not in this PDF (it has {len(document)})")
    return document[number - 1]


def _fraction_map(page: pdfium.PdfPage) -> Callable[[float, float], tuple[float, float]]:
    """Page coordinates (points) → fractions of the rendered page, origin top-left, rotation included."""

    def device(x: float, y: float) -> tuple[float, float]:
        dx, dy = ctypes.c_int(), ctypes.c_int()
        pdfium_c.FPDF_PageToDevice(page, 0, 0, _UNITS, _UNITS, 0, x, y, ctypes.byref(dx), ctypes.byref(dy))
        return dx.value, dy.value

    left, bottom, right, top = page.get_bbox()
    ox, oy = device(left, bottom)
    xx, xy = device(right, bottom)
    yx, yy = device(left, top)
    width, height = (right - left) or 1.0, (top - bottom) or 1.0
    ax, ay = (xx - ox) / width, (xy - oy) / width
    bx, by = (yx - ox) / height, (yy - oy) / height

    def to_fraction(x: float, y: float) -> tuple[float, float]:
        x, y = x - left, y - bottom
        return (ox + ax * x + bx * y) / _UNITS, (oy + ay * x + by * y) / _UNITS

    return to_fraction


def page_chars(page: pdfium.PdfPage) -> PageChars:
    """Every character pdfium finds on the page, its (loose) box and its line number."""
    textpage = page.get_textpage()
    to_fraction = _fraction_map(page)
    count = textpage.count_chars()
    rect = pdfium_c.FS_RECTF()
    chars: list[str] = []
    boxes: list[Box | None] = []
    lines: list[int] = []
    line, last = 0, None
    for index in range(count):
        char = chr(pdfium_c.FPDFText_GetUnicode(textpage, index) or 0xFFFD)
        box = None
        if char in _LINE_BREAKS:
            if last is not None:
                line, last = line + 1, None
        elif not char.isspace() and pdfium_c.FPDFText_GetLooseCharBox(textpage, index, rect):
            x1, y1 = to_fraction(rect.left, rect.top)
            x2, y2 = to_fraction(rect.right, rect.bottom)
            box = Box(min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))
            if box.right <= box.left or box.bottom <= box.top:
                box = None
        if box is not None:
            if last is not None and not _same_line(last, box):
                line += 1
            last = box
        chars.append(char)
        boxes.append(box)
        lines.append(line)
    return PageChars(text="".join(chars), boxes=tuple(boxes), lines=tuple(lines))


def _same_line(before: Box, after: Box) -> bool:
    """Whether ``after`` continues the line of ``before``: it overlaps it vertically by half and goes on rightward
    (no further than a few character heights: a wider jump is the gutter between columns)."""
    height = max(before.bottom - before.top, after.bottom - after.top)
    shared = min(before.bottom, after.bottom) - max(before.top, after.top)
    gap = after.left - before.right
    return shared >= 0.5 * height and -0.5 * height <= gap <= 3 * height


def render_png(page: pdfium.PdfPage, dpi: int) -> bytes:
    """The page drawn at ``dpi`` (less if that would pass :data:`MAX_PIXELS`) as PNG bytes."""
    width, height = page.get_size()
    scale = dpi / 72
    if width * height * scale * scale > MAX_PIXELS:
        scale = (MAX_PIXELS / max(width * height, 1.0)) ** 0.5
    picture = page.render(scale=scale, rev_byteorder=True).to_pil()
    red, green, blue = picture.split()
    if ImageChops.difference(red, green).getbbox() is None and ImageChops.difference(green, blue).getbbox() is None:
        picture = red  # a page without colour: one channel, a third of the bytes to compress
    out = io.BytesIO()
    picture.save(out, format="PNG", compress_level=1)
    return out.getvalue()
