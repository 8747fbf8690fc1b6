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
#: Most characters of a page placed (a dense page holds under 10,000): the layout travels back to the server.
MAX_CHARS = 200_000
#: Scale of the small drawing that tells whether a page has colour (A4: 119 x 168 pixels).
THUMBNAIL_SCALE = 0.2
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
    """Every character pdfium finds on the page, its (loose) box and its line number.

    Lines are told apart in the page's own coordinates (before its /Rotate turns it), where text runs rightward.
    """
    textpage = page.get_textpage()
    to_fraction = _fraction_map(page)
    rect = pdfium_c.FS_RECTF()
    chars: list[str] = []
    boxes: list[Box | None] = []
    lines: list[int] = []
    line, last = 0, None
    count = textpage.count_chars()
    if count > MAX_CHARS:
        raise ViewError(f"the page holds {count:,} characters, more than the {MAX_CHARS:,} a view places")
    for index in range(count):
        char = chr(pdfium_c.FPDFText_GetUnicode(textpage, index) or 0xFFFD)
        box = None
        if char in _LINE_BREAKS:
            if last is not None:
                line, last = line + 1, None
        elif not char.isspace() and _loose_box(textpage, index, rect):
            # y grows upward on the page: flip it so "top" is the smaller number, as on the screen
            upright = Box(rect.left, -rect.top, rect.right, -rect.bottom)
            if last is not None and not _same_line(last, upright):
                line += 1
            last = upright
            x1, y1 = to_fraction(rect.left, rect.top)
            x2, y2 = to_fraction(rect.right, rect.bottom)
            box = Box(min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))
        chars.append(char)
        boxes.append(box)
        lines.append(line)
    return PageChars.of("".join(chars), boxes, lines)


def _loose_box(textpage: pdfium.PdfTextPage, index: int, rect: pdfium_c.FS_RECTF) -> bool:
    """Fill ``rect`` with the character's box (page units); False for a character without one or without area."""
    found = pdfium_c.FPDFText_GetLooseCharBox(textpage, index, rect)
    return bool(found) and rect.right > rect.left and rect.top > rect.bottom


def _same_line(before: Box, after: Box) -> bool:
    """Whether ``after`` continues the line of ``before`` (both in page units): it overlaps it vertically by half
    and goes on rightward (no further than a few character heights: a wider jump is the gutter between columns)."""
    height = max(before.bottom - before.top, after.bottom - after.top)
    shared = min(before.bottom, after.bottom) - max(before.top, after.top)
    gap = after.left - before.right
    return shared >= 0.5 * height and -0.5 * height <= gap <= 3 * height


def _has_colour(page: pdfium.PdfPage) -> bool:
    """Whether a small drawing of the page (a few ms) holds any pixel that is not grey."""
    red, green, blue = page.render(scale=THUMBNAIL_SCALE, rev_byteorder=True).to_pil().split()
    return (
        ImageChops.difference(red, green).getbbox() is not None
        or ImageChops.difference(green, blue).getbbox() is not None
    )


def render_png(page: pdfium.PdfPage, dpi: int) -> bytes:
    """The page drawn at ``dpi`` (less if that would pass :data:`MAX_PIXELS`) as PNG bytes: in grey when a small
    drawing of it shows no colour (a third of the pixels to draw and compress), else in colour."""
    width, height = page.get_size()
    scale = dpi / 72
    if width * height * scale * scale > MAX_PIXELS:
        scale = (MAX_PIXELS / max(width * height, 1.0)) ** 0.5
    picture = page.render(scale=scale, rev_byteorder=True, grayscale=not _has_colour(page)).to_pil()
    out = io.BytesIO()
    picture.save(out, format="PNG", compress_level=1)
    return out.getvalue()
