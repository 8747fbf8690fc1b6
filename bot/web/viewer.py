"""The evidence viewer: ``GET /view/{reference}?quote=START-END`` opens a citation's document at the cited place.

Every citation's ``view_url`` points here (:func:`bot.answer.citations.view_path`). DOCX, HTML, Markdown and text
documents are shown as the text docbot read from them, escaped (no markup of the document is ever live, so no
script and no remote content), the passage marked lightly and the supporting sentence highlighted, scrolled into
view by the ``#cited`` anchor. The page runs under a Content-Security-Policy that allows docbot's stylesheet and
images only: no script at all.

Access is the API's: the caller must be allowed to read (:mod:`bot.web.access`), rate limited like ``/api``.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Annotated

from fastapi import Depends, FastAPI, Query
from fastapi.responses import HTMLResponse

from bot.config import Settings
from bot.web.access import Access
from bot.web.embed import static_asset
from bot.web.evidence import Evidence, ViewError, evidence, parse_span
from bot.web.security import Guard, RateLimiter, frame_ancestors
from index.store import VectorStore

_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; script-src 'none'; "
)
#: Largest page number a link may ask for (a PDF of more pages has no text docbot could have indexed).
MAX_PAGE = 100_000


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


def _head(found: Evidence, tools: str = "") -> str:
    where = [found.source] + ([f"page {found.page} of {len(found.pages)}"] if found.page else [])
    notice = f'<p class="view-notice" role="status">{escape(found.notice)}</p>' if found.notice else ""
    return (
        f'<header class="view-head"><h1>{escape(found.title)}</h1>'
        f'<p class="view-meta">{escape(" · ".join(where))}</p>{notice}{tools}</header>'
    )


def _pages_nav(found: Evidence) -> str:
    """Links to the neighbouring pages of a PDF (pages with text in the index)."""
    if found.page is None:
        return ""
    at = found.pages.index(found.page) if found.page in found.pages else -1
    links = []
    if at > 0:
        links.append(f'<a class="view-prev" href="?page={found.pages[at - 1]}">‹ page {found.pages[at - 1]}</a>')
    if 0 <= at < len(found.pages) - 1:
        links.append(f'<a class="view-next" href="?page={found.pages[at + 1]}">page {found.pages[at + 1]} ›</a>')
    return f'<nav class="view-pages">{"".join(links)}</nav>' if links else ""


def check_quote(found: Evidence, quote: tuple[int, int] | None) -> tuple[int, int] | None:
    """The quote span, which must lie in the cited passage (when the view shows the cited page)."""
    if quote is None or found.passage is None:
        return None
    lo, hi = found.passage
    if not lo <= quote[0] < quote[1] <= hi:
        raise ViewError(400, f"quote={quote[0]}-{quote[1]} is not inside the cited passage ({lo}-{hi})")
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


def text_view(found: Evidence, quote: tuple[int, int] | None) -> str:
    body = f'{_head(found, _pages_nav(found))}<main class="view-text">{text_html(found, quote)}</main>'
    return _page(found.title, body)


def error_view(error: ViewError) -> str:
    title = "Removed" if error.status == 404 else "Cannot show this evidence"
    return _page(title, f'<main class="view-error"><h1>{title}</h1><p role="alert">{escape(str(error))}</p></main>')


def install_viewer(app: FastAPI, store: VectorStore, settings: Settings, access: Access) -> None:
    guard = Guard(access, RateLimiter(settings.rate_limit_per_minute), action="read")
    headers = _headers(settings.embed_origins)

    @app.get(
        "/view/{reference}",
        response_class=HTMLResponse,
        tags=["viewer"],
        summary="A citation's document at the cited place, the supporting sentence highlighted",
        dependencies=[Depends(guard)],
        responses={400: {"description": "A malformed reference, quote or page"}, 404: {"description": "Removed"}},
    )
    def view(
        reference: str,
        quote: Annotated[str | None, Query(max_length=40, description="START-END of the quote.")] = None,
        page: Annotated[int | None, Query(ge=1, le=MAX_PAGE, description="Another page of a PDF.")] = None,
    ) -> HTMLResponse:
        """Open a citation's ``view_url`` (relative to the server's address)."""
        try:
            span = parse_span(quote)
            found = evidence(store, settings, reference, page, text=True)
            return HTMLResponse(text_view(found, check_quote(found, span)), headers=headers)
        except ViewError as exc:
            return HTMLResponse(error_view(exc), status_code=exc.status, headers=headers)

    app.add_api_route(
        "/view.css",
        static_asset("view.css", "text/css; charset=utf-8", 300),
        methods=["GET"],
        include_in_schema=False,
    )
