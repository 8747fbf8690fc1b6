"""The evidence viewer: ``GET /view/{reference}?quote=START-END`` opens a citation's document at the cited place.

Every citation's ``view_url`` points here (:func:`bot.answer.citations.view_path`).

- PDF: the page drawn as an image (``/view/{reference}/page.png``, :mod:`bot.view.pdf`, cached on disk) under an
  SVG layer of boxes in page fractions: the supporting sentence's character boxes strong, the passage's light.
  Links to the neighbouring pages, and zoom levels that draw the page again at a higher resolution (sharp).
- DOCX, HTML, Markdown, text (and a PDF whose page cannot be drawn): the text docbot read from the document,
  escaped (no markup of the document is ever live, so no script and no remote content), the passage marked lightly
  and the supporting sentence highlighted, scrolled into view by the ``#cited`` anchor.

Pages run under a Content-Security-Policy that allows docbot's stylesheet and images only: no script at all.

The routes are async: each view's work (store look-ups, a parse or a PDF page in a worker process) runs on the
viewer's own :data:`VIEW_THREADS` threads, never on the API's, so views waiting for a worker cannot starve other
routes. A file read again is parsed once per version and at most ``max_view_parses`` at once
(:mod:`bot.view.texts`); a view that would need one more parse gets a quick 503 page saying to try again.

Access is the API's: the caller must be allowed to read the collection the link names (``collection=``, the
default collection when none: links made before collections still open), rate limited like ``/api``. A collection
the caller may not read is answered exactly like one that does not exist (404); every link of a view keeps the
collection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from html import escape
from pathlib import Path
from typing import Annotated

from anyio import CapacityLimiter, to_thread
from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse, Response

from bot.access.policy import Access, Identity
from bot.access.rate_limits import RateLimiter
from bot.config import Settings
from bot.documents.library import Library
from bot.documents.originals import Originals
from bot.state.stores import Stores
from bot.view.errors import ViewError
from bot.view.evidence import REMOVED, Evidence, EvidenceError, evidence, parse_span
from bot.view.layout import Box
from bot.view.pdf import MAX_DPI, PageRenderer, ViewerPool, page_count, sentence_boxes, view_budget
from bot.view.texts import ViewTexts
from bot.web.collections import asked_collections
from bot.web.embed import static_asset
from bot.web.security import Guard, frame_ancestors
from index.parse_pool import ParseBudget, ParsePool

_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; script-src 'none'; "
)
#: Largest page number a link may ask for (a PDF of more pages has no text docbot could have indexed).
MAX_PAGE = 100_000
#: Zoom levels of a PDF page, in percent: each draws the page at view_dpi × zoom (at most MAX_DPI), so it stays sharp.
ZOOMS = (100, 150, 200, 300)
#: Threads a server's views run on, apart from the API's (a view beyond them waits for one without holding any).
VIEW_THREADS = 8
#: Seconds a view refused for lack of a parse slot is told to wait.
BUSY_RETRY_AFTER_S = 5
#: ``collection=`` of a view's address: the citation's collection (none: the default one).
CollectionParameter = Annotated[
    str | None, Query(max_length=40, description="The citation's collection (default: the default collection).")
]


def _headers(origins: Sequence[str]) -> dict[str, str]:
    return {
        "Content-Security-Policy": _POLICY + frame_ancestors(origins),
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-cache",
    }


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<title>{escape(title)} · docbot</title><link rel="stylesheet" href="../view.css"></head>'
        f'<body class="docbot-view">{body}</body></html>'
    )


def _head(found: Evidence, tools: str = "", page_total: int | None = None) -> str:
    """Title, file and page; ``page_total``: the PDF's page count (else the count of pages with indexed text)."""
    total = page_total or len(found.pages)
    where = [found.source] + ([f"page {found.page} of {total}"] if found.page else [])
    notice = f'<p class="view-notice" role="status">{escape(found.notice)}</p>' if found.notice else ""
    return (
        f'<header class="view-head"><h1>{escape(found.title)}</h1>'
        f'<p class="view-meta">{escape(" · ".join(where))}</p>{notice}{tools}</header>'
    )


def _pages_nav(found: Evidence, quote: tuple[int, int] | None, zoom: int | None = None) -> str:
    """Links to the neighbouring pages of a PDF (pages with text in the index) and, for a drawn page, to the other
    zoom levels of this page. Every link keeps the quote, so the way back to the cited page shows it again."""
    if found.page is None:
        return ""
    at = found.pages.index(found.page) if found.page in found.pages else -1
    kept = (f"&quote={quote[0]}-{quote[1]}" if quote else "") + (f"&zoom={zoom}" if zoom else "") + _in(found)
    links = []
    if at > 0:
        before = found.pages[at - 1]
        links.append(f'<a class="view-prev" href="{escape(f"?page={before}{kept}")}">‹ page {before}</a>')
    if 0 <= at < len(found.pages) - 1:
        after = found.pages[at + 1]
        links.append(f'<a class="view-next" href="{escape(f"?page={after}{kept}")}">page {after} ›</a>')
    if zoom:
        here = f"page={found.page}" + (f"&quote={quote[0]}-{quote[1]}" if quote else "") + _in(found)
        links += [
            f'<a class="view-zoom{" current" if level == zoom else ""}" href="{escape(f"?{here}&zoom={level}")}">'
            f"{level}%</a>"
            for level in ZOOMS
        ]
    return f'<nav class="view-pages">{"".join(links)}</nav>' if links else ""


def _in(found: Evidence) -> str:
    """What every link of a view keeps: the collection its address named (none: the default collection)."""
    return f"&collection={found.collection}" if found.collection else ""


def check_quote(found: Evidence, quote: tuple[int, int] | None) -> tuple[int, int] | None:
    """The quote span, which must lie in the cited passage (when the view shows the cited page)."""
    if quote is None or found.passage is None:
        return None
    lo, hi = found.passage
    if not lo <= quote[0] < quote[1] <= hi:
        raise EvidenceError(400, f"quote={quote[0]}-{quote[1]} is not inside the cited passage ({lo}-{hi})")
    return quote


def text_html(found: Evidence, quote: tuple[int, int] | None) -> str:
    """The document text, escaped, with the passage and the quote marked (spans are document offsets)."""
    text, offset = found.text, found.offset
    if found.passage is None:
        return escape(text)
    p_lo, p_hi = (max(0, min(len(text), at - offset)) for at in found.passage)
    q_lo, q_hi = (max(p_lo, min(p_hi, at - offset)) for at in quote) if quote else (p_lo, p_lo)
    inner = (
        f'{escape(text[p_lo:q_lo])}<mark class="quote" id="cited">{escape(text[q_lo:q_hi])}</mark>'
        f"{escape(text[q_hi:p_hi])}"
        if q_hi > q_lo
        else f'<span id="cited"></span>{escape(text[p_lo:p_hi])}'
    )
    return f'{escape(text[:p_lo])}<mark class="passage">{inner}</mark>{escape(text[p_hi:])}'


def text_view(found: Evidence, quote: tuple[int, int] | None, asked: tuple[int, int] | None) -> str:
    """``quote``: the checked quote on the cited page (None elsewhere); ``asked``: the link's, kept in page links."""
    body = f'{_head(found, _pages_nav(found, asked))}<main class="view-text">{text_html(found, quote)}</main>'
    return _page(found.title, body)


def _rects(boxes: Sequence[Box], css: str, first_id: str = "") -> str:
    """SVG rectangles in page fractions; the first gets ``first_id`` (``#cited`` scrolls the view to it)."""
    ids = [f' id="{first_id}"' if first_id else ""] + [""] * len(boxes)
    return "".join(
        f'<rect class="{css}"{ids[n]} x="{b.left:.5f}" y="{b.top:.5f}" width="{b.right - b.left:.5f}" '
        f'height="{b.bottom - b.top:.5f}"/>'
        for n, b in enumerate(boxes)
    )


def pdf_view(
    found: Evidence,
    asked: tuple[int, int] | None,
    zoom: int,
    passage: Sequence[Box],
    sentence: Sequence[Box],
    page_total: int | None = None,
) -> str:
    """The drawn page with the passage's and the sentence's boxes over it (an SVG in page fractions), headed
    "page X of ``page_total``" (the PDF's page count)."""
    picture = f"{found.chunk_id}/page.png?page={found.page}&zoom={zoom}{_in(found)}"
    layer = (
        '<svg class="view-boxes" viewBox="0 0 1 1" preserveAspectRatio="none" aria-hidden="true">'
        f"{_rects(passage, 'passage')}{_rects(sentence, 'quote', 'cited')}</svg>"
    )
    sheet = (
        f'<div class="view-sheet zoom-{zoom}"><img src="{escape(picture)}" alt="page {found.page} of '
        f'{escape(found.title)}">{layer}</div>'
    )
    body = f'{_head(found, _pages_nav(found, asked, zoom), page_total)}<main class="view-pdf">{sheet}</main>'
    return _page(found.title, body)


def error_view(error: EvidenceError) -> str:
    title = "Removed" if str(error) == REMOVED else "Busy" if error.status == 503 else "Cannot show this evidence"
    return _page(title, f'<main class="view-error"><h1>{title}</h1><p role="alert">{escape(str(error))}</p></main>')


def _page_total(file: Path, viewer: ViewerPool, budget: ParseBudget) -> int | None:
    """The PDF's page count (the viewer worker's, cached per file version); None when it cannot be read in time."""
    try:
        return page_count(file, viewer=viewer, budget=budget)
    except ViewError:
        return None


def _is_pdf(found: Evidence) -> bool:
    return found.source.lower().endswith(".pdf")


def install_viewer(
    app: FastAPI,
    library: Library,
    settings: Settings,
    access: Access,
    state: Stores,
    viewer: ViewerPool,
    parse_pool: ParsePool,
) -> None:
    """The evidence viewer's routes: uploaded originals and the viewer's rate counters are ``state``'s; PDFs are
    drawn in ``viewer``'s workers, other files read again in ``parse_pool``'s (the process's pools)."""
    limiter = RateLimiter(state.counters("view"), settings.rate_limit_per_minute)
    # who may read some collection gets past; each view then checks the collection its link names
    caller = Depends(Guard(access, limiter, action="read"))
    headers = _headers(settings.embed_origins)
    renderer = PageRenderer.from_settings(settings, viewer)
    budget = view_budget(settings)
    originals = Originals(state.uploads, settings.data_dir)
    texts = ViewTexts.from_settings(settings, parse_pool)
    threads = CapacityLimiter(VIEW_THREADS)

    def found_in(
        identity: Identity, collection: str | None, reference: str, page: int | None, *, drawable: bool
    ) -> Evidence:
        """The evidence in the collection the link names, which the caller must be allowed to read (else the 404
        of a collection that does not exist)."""
        try:
            names = library.collections.listed()
            name = asked_collections(collection or None, settings.default_collection, identity, names)[0]
        except HTTPException as exc:
            raise EvidenceError(exc.status_code, str(exc.detail)) from exc
        parts = library.services(name)
        original = partial(originals.file, parts.settings.collection)
        found = evidence(parts.store, settings, reference, page, drawable=drawable, original=original, texts=texts)
        return replace(found, collection=collection)

    def shown(
        identity: Identity,
        collection: str | None,
        reference: str,
        span: tuple[int, int] | None,
        page: int | None,
        zoom: int,
    ) -> str:
        found = found_in(identity, collection, reference, page, drawable=True)
        quote = check_quote(found, span)
        if found.file is None or found.page is None or not _is_pdf(found):
            return text_view(found, quote, span)
        try:
            boxes = partial(sentence_boxes, found.file, found.page, viewer=viewer, budget=budget)
            passage = boxes(*found.passage) if found.passage else []
            sentence = boxes(*quote) if quote else []
        except ViewError as exc:
            found = found_in(identity, collection, reference, page, drawable=False)
            return text_view(replace(found, notice=f"the page cannot be drawn ({exc}): showing its text"), quote, span)
        return pdf_view(found, span, zoom, passage, sentence, _page_total(found.file, viewer, budget))

    def drawn(identity: Identity, collection: str | None, reference: str, page: int, dpi: int) -> bytes:
        found = found_in(identity, collection, reference, page, drawable=True)
        if found.file is None or not _is_pdf(found):
            raise EvidenceError(404, "no picture of this page: the file is gone, changed, or not a PDF")
        return renderer.png(found.file, page, dpi=dpi)

    @app.get(
        "/view/{reference}",
        response_class=HTMLResponse,
        tags=["viewer"],
        summary="A citation's document at the cited place, the supporting sentence highlighted",
        responses={
            400: {"description": "A malformed reference, quote or zoom"},
            404: {"description": "Removed, or no collection of that name that the caller may read"},
            503: {"description": "Every slot for reading a document again is taken: try again (Retry-After)"},
        },
    )
    async def view(
        reference: str,
        quote: Annotated[str | None, Query(max_length=40, description="START-END of the quote.")] = None,
        page: Annotated[int | None, Query(ge=1, le=MAX_PAGE, description="Another page of a PDF.")] = None,
        zoom: Annotated[int, Query(description=f"A PDF page's zoom in percent: {ZOOMS}.")] = ZOOMS[0],
        collection: CollectionParameter = None,
        identity: Identity = caller,
    ) -> HTMLResponse:
        """Open a citation's ``view_url`` (relative to the server's address)."""
        try:
            if zoom not in ZOOMS:
                raise EvidenceError(400, f"zoom is one of {', '.join(map(str, ZOOMS))}, not {zoom}")
            work = partial(shown, identity, collection, reference, parse_span(quote), page, zoom)
            return HTMLResponse(await to_thread.run_sync(work, limiter=threads), headers=headers)
        except EvidenceError as exc:
            busy = {"Retry-After": str(BUSY_RETRY_AFTER_S)} if exc.status == 503 else {}
            return HTMLResponse(error_view(exc), status_code=exc.status, headers={**headers, **busy})

    @app.get(
        "/view/{reference}/page.png",
        response_class=Response,
        tags=["viewer"],
        summary="A page of a cited PDF, drawn (cached on disk)",
        responses={200: {"content": {"image/png": {}}}, 422: {"description": "The page cannot be drawn: why"}},
    )
    async def page_png(
        reference: str,
        page: Annotated[int, Query(ge=1, le=MAX_PAGE)],
        collection: CollectionParameter = None,
        zoom: Annotated[int, Query(description=f"In percent: {ZOOMS}.")] = ZOOMS[0],
        identity: Identity = caller,
    ) -> Response:
        plain = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-cache"}
        try:
            if zoom not in ZOOMS:
                raise EvidenceError(400, f"zoom is one of {', '.join(map(str, ZOOMS))}, not {zoom}")
            dpi = min(MAX_DPI, settings.view_dpi * zoom // 100)
            data = await to_thread.run_sync(partial(drawn, identity, collection, reference, page, dpi), limiter=threads)
        except EvidenceError as exc:
            busy = {"Retry-After": str(BUSY_RETRY_AFTER_S)} if exc.status == 503 else {}
            return Response(str(exc), status_code=exc.status, media_type="text/plain", headers={**plain, **busy})
        except ViewError as exc:
            return Response(str(exc), status_code=422, media_type="text/plain", headers=plain)
        return Response(data, media_type="image/png", headers={**plain, "Cache-Control": "private, max-age=300"})

    app.add_api_route(
        "/view.css",
        static_asset("view.css", "text/css; charset=utf-8", 300),
        methods=["GET"],
        include_in_schema=False,
    )
