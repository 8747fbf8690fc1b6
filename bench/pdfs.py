"""The one PDF builder of the benchmarks and the tests: text pages, two-column pages with known sentences, pages
drawn freely, and PDFs written object by object (for hostile bytes a drawing library will not write).

It lives in ``bench/`` because both ``bench/`` and ``tests/`` build PDFs and the benchmarks may not import the tests
(tests/test_architecture.py). Drawing needs reportlab (the ``dev`` extra); nothing is imported until a PDF is drawn.

:func:`harbour_report_pdf` writes three A4 pages; on page 2, :data:`WRAPPED` wraps over three lines of the left
column and :data:`ACROSS` starts two lines above the bottom of the left column and ends at the top of the right
one (tests/helpers.py ``pdfium_boxes`` reads where pdfium itself puts those sentences).

:func:`paper_pdf` writes a white-paper-like report: one column, words hyphenated at line ends, a running header,
a running footer with the page number, numbered headings; on page 2 :data:`HYPHENATED` is printed with
"unstoppa-" ending one line and "ble" starting the next.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: A4 in points, as reportlab has it (its default page size).
A4 = (595.2755905511812, 841.8897637795277)

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
HYPHENATED = (
    "The tide gauge at the pier head is an unstoppable recorder that logs the water level every six minutes and "
    "sends it to the port office."
)
#: Where :data:`HYPHENATED` breaks over lines on page 2 of :func:`paper_pdf` (its second line starts a line).
HYPHENATED_LINES = (
    "The tide gauge at the pier head is an unstoppa-",
    "ble recorder that logs the water level every six minutes and sends it to the port office.",
)
PAPER_TITLE = "Harbour Operations Review"
PAPER_HEADER = "Harbour Operations Review - Annual Report of the Port Authority"
#: Characters to a line of :func:`paper_pdf` (Helvetica 10 on A4 with 56-point margins holds about 95).
PAPER_CHARS = 88
PAPER_WORDS = (
    "The port authority maintains the breakwater and dredges the approaches so that container vessels, bulk "
    "carriers and passenger ferries reach their berths safely throughout the year. Maintenance contractors inspect "
    "the quay walls, replace fenders and repaint navigational markings according to a published schedule. "
    "Environmental monitoring continues around the estuary, where sediment sampling, water temperature "
    "measurements and observations of migratory birds are recorded by independent researchers."
).split()
FILLER = "Cranes unload containers onto the quay where trucks wait in long rows beside the customs shed".split()


@contextmanager
def drawn_pdf(path: Path, pagesize: tuple[float, float] = A4, title: str | None = None) -> Iterator[Any]:
    """A reportlab canvas writing ``path``: draw on it (``showPage`` between pages); saved when the block ends."""
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path), pagesize=pagesize)
    if title:
        pdf.setTitle(title)
    yield pdf
    pdf.save()


def text_pdf(path: Path, pages: Sequence[Sequence[str]], title: str | None = None) -> Path:
    """An A4 PDF with one page per item of ``pages``, each line a string of it (Helvetica 12, 16 points apart)."""
    with drawn_pdf(path, title=title) as pdf:
        for lines in pages:
            y = 780
            for line in lines:
                pdf.drawString(72, y, line)
                y -= 16
            pdf.showPage()
    return path


def column_lines(paragraphs: list[str]) -> list[str]:
    """The lines one page's paragraphs take, a blank line after each, as :func:`two_column_pdf` wraps them."""
    lines: list[str] = []
    for paragraph in paragraphs:
        lines += [*textwrap.wrap(paragraph, COLUMN_CHARS), ""]
    return lines


def two_column_pdf(path: Path, pages: list[list[str]], title: str = "Harbour report") -> Path:
    """A PDF whose pages hold ``pages``' paragraphs in two columns (left column first), lines wrapped at
    :data:`COLUMN_CHARS` characters. A page that does not fit raises ``ValueError``."""
    column_width = (PAGE_WIDTH - 2 * MARGIN - GUTTER) / 2
    with drawn_pdf(path, (PAGE_WIDTH, PAGE_HEIGHT), title) as pdf:
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


def hyphenate(words: Sequence[str], width: int = PAPER_CHARS) -> list[str]:
    """``words`` set in lines of at most ``width`` characters, a word that does not fit broken with a hyphen when at
    least four of its letters fit and three go on (as typesetters hyphenate), else moved to the next line."""
    lines: list[str] = []
    line = ""
    queue = list(words)
    while queue:
        word = queue.pop(0)
        candidate = f"{line} {word}" if line else word
        if len(candidate) <= width:
            line = candidate
            continue
        room = width - len(line) - (2 if line else 1)  # a space before the piece and the hyphen after it
        if word.isalpha() and word.islower() and room >= 4 and len(word) - room >= 3:
            lines.append(f"{line} {word[:room]}-" if line else f"{word[:room]}-")
            queue.insert(0, word[room:])
            line = ""
            continue
        lines.append(line)
        line = word
    if line:
        lines.append(line)
    return lines


def paper_filler(lines: int, start: int = 0) -> list[str]:
    """``lines`` hyphenated lines of a paragraph of :data:`PAPER_WORDS` (from word ``start``, capitalised), ending in
    a full stop."""
    words: list[str] = []
    at = start
    while len(hyphenate(words)) <= lines:
        words.append(PAPER_WORDS[at % len(PAPER_WORDS)])
        at += 1
    while len(hyphenate(words)) > lines:
        words.pop()
    words[0] = words[0].capitalize()
    return hyphenate([*words[:-1], words[-1].rstrip(".,") + "."])


def paper_pdf(path: Path, pages: Sequence[Sequence[Sequence[str]]], title: str = PAPER_TITLE) -> Path:
    """A one-column A4 report: each page a list of paragraphs, each paragraph its printed lines (see
    :func:`hyphenate`), a blank half-line between paragraphs; every page carries :data:`PAPER_HEADER` at its top
    and "Page n of m" at its bottom. A page that does not fit raises ``ValueError``."""
    with drawn_pdf(path, (PAGE_WIDTH, PAGE_HEIGHT), title) as pdf:
        for number, paragraphs in enumerate(pages, start=1):
            pdf.setFont("Helvetica", 8)
            pdf.drawString(MARGIN, PAGE_HEIGHT - MARGIN + 20, PAPER_HEADER)
            pdf.drawCentredString(PAGE_WIDTH / 2, MARGIN - 24, f"Page {number} of {len(pages)}")
            pdf.setFont("Helvetica", FONT_SIZE)
            y = PAGE_HEIGHT - MARGIN - LEADING
            for paragraph in paragraphs:
                for line in paragraph:
                    if y < MARGIN:
                        raise ValueError(f"page {number} does not fit")
                    pdf.drawString(MARGIN, y, line)
                    y -= LEADING
                y -= LEADING / 2
            pdf.showPage()
    return path


def harbour_paper_pdf(path: Path) -> Path:
    """Four pages of :func:`paper_pdf` with numbered headings and hyphenated filler; page 2 holds
    :data:`HYPHENATED` over a line-end hyphen, page 3 a compound broken after its own hyphen ("peer-to-" / "peer")."""
    compound = [
        "Radio traffic between the pilots and the tugs runs over a dedicated peer-to-",
        "peer network that keeps working when the shore station is down.",
    ]
    pages = [
        [["1 Introduction"], paper_filler(12), paper_filler(9, 7), ["1.1 Scope of this review"], paper_filler(10, 3)],
        [paper_filler(8, 11), ["2 Measurements"], list(HYPHENATED_LINES), paper_filler(14, 5)],
        [paper_filler(11, 2), compound, ["3 Outlook"], paper_filler(13, 9)],
        [paper_filler(15, 4), ["The end of the review."]],
    ]
    return paper_pdf(path, pages)


def raw_pdf(objects: Sequence[bytes], version: str = "1.4") -> bytes:
    """A PDF written byte by byte: ``objects`` are the bodies of objects 1, 2, ... (object 1 the catalog), followed
    by a correct cross-reference table and trailer, so whatever is odd about the file is in the objects."""
    out = bytearray(b"%PDF-" + version.encode("ascii") + b"\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
