"""The PDF viewer's worker: ``python -m bot.view.pdf_worker READ_FD WRITE_FD MEMORY_MB``, run by :mod:`bot.view.pdf`.

Every pdfium and pypdf call on a (possibly hostile) PDF happens here, under the time and memory budget of
:mod:`index.worker_loop`. A request is a header naming the file and what is wanted; the bytes block is empty
(the worker reads the file itself):

- ``("count", path)`` → the number of pages;
- ``("layout", path, page)`` → a :class:`~bot.view.layout.PageLayout` (docbot's text of the page aligned with
  pdfium's characters and their boxes);
- ``("render", path, page, dpi)`` → the page as PNG bytes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bot.view.errors import ViewError
from index.errors import LoadError
from index.worker_loop import run


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ViewError(f"cannot read the file ({exc.strerror or exc})") from exc


def _handle(header: object, data: bytes) -> object:
    from bot.view import pdfium_pages
    from bot.view.layout import align
    from index.loaders import open_pdf, pdf_page_text

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
            return align(pdf_page_text(open_pdf(pdf_bytes).pages[args[0] - 1]), chars)
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
