"""The PDF viewer's worker: ``python -m bot.view.pdf_worker READ_FD WRITE_FD MEMORY_MB``, run by :mod:`bot.view.pdf`.

Every pdfium and pypdf call on a (possibly hostile) PDF happens here, under the time and memory budget of
:mod:`index.worker_loop`. A request is a header naming the file and what is wanted; the bytes block is empty
(the worker reads the file itself):

- ``("count", path)`` → the number of pages;
- ``("layout", path, page)`` → a :class:`~bot.view.layout.PageLayout` (docbot's text of the page, cleaned as the
  loader cleans it, aligned with pdfium's characters and their boxes);
- ``("render", path, page, dpi)`` → the page as PNG bytes.
"""

from __future__ import annotations

import hashlib
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any

from bot.view.errors import ViewError
from index.errors import LoadError
from index.text_clean import PdfStyle
from index.worker_loop import run

#: PDFs whose style (running lines, line width) this worker remembers, by the hash of their bytes.
STYLES_KEPT = 8
_styles: OrderedDict[str, PdfStyle] = OrderedDict()


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ViewError(f"cannot read the file ({exc.strerror or exc})") from exc


def _style(pdf_bytes: bytes, reader: Any) -> PdfStyle:
    """The PDF's running lines and line width, read from its sampled pages as the loader reads them (once per file
    version in this worker: a page's text costs pypdf about a tenth of a second)."""
    from index.loaders import pdf_extracted_text
    from index.text_clean import pdf_style, sample

    key = hashlib.sha256(pdf_bytes).hexdigest()
    if key not in _styles:
        _styles[key] = pdf_style([pdf_extracted_text(reader.pages[i]) for i in sample(len(reader.pages))])
        while len(_styles) > STYLES_KEPT:
            _styles.popitem(last=False)
    _styles.move_to_end(key)
    return _styles[key]


def _handle(header: object, data: bytes) -> object:
    from bot.view import pdfium_pages
    from bot.view.layout import align
    from index.loaders import open_pdf, pdf_extracted_text
    from index.text_clean import clean_pdf_page

    op, path, *args = header  # type: ignore[misc]
    pdf_bytes = _read(path)
    document = pdfium_pages.open_document(pdf_bytes)
    try:
        if op == "count":
            return len(document)
        page = pdfium_pages.get_page(document, args[0])
        if op == "render":
            return pdfium_pages.render_png(page, args[1])
        if op == "layout":
            chars = pdfium_pages.page_chars(page)  # first: it refuses a page of too many characters at once
            reader = open_pdf(pdf_bytes)
            original = pdf_extracted_text(reader.pages[args[0] - 1])
            return align(clean_pdf_page(original, _style(pdf_bytes, reader)), chars)
        raise ValueError(f"unknown request {op!r}")
    finally:
        document.close()


def _preload() -> None:
    import PIL.PngImagePlugin  # noqa: F401
    import pypdf  # noqa: F401
    import pypdfium2  # noqa: F401

    import bot.view.pdfium_pages  # noqa: F401


def main(argv: list[str]) -> int:
    return run(argv, _preload, _handle, (ViewError, LoadError))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
