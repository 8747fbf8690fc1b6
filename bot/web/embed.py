"""The embed page (``/embed``, for an iframe in a wiki) and the script widget (``/widget.js``).

Both are static files in ``bot/web/static``. The page runs under a strict Content-Security-Policy: its own script and
style only, requests to docbot only, and framing only by docbot itself and the configured embed origins.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response

from bot.config import Settings
from bot.web.security import frame_ancestors

STATIC = Path(__file__).with_name("static")

_PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data: blob:; "
    "base-uri 'none'; form-action 'none'; "
)
_JAVASCRIPT = "text/javascript; charset=utf-8"


def static_asset(name: str, media_type: str, cache_s: int) -> Callable[[], Response]:
    body = (STATIC / name).read_bytes()
    headers = {"Cache-Control": f"public, max-age={cache_s}", "X-Content-Type-Options": "nosniff"}

    def serve() -> Response:
        return Response(body, media_type=media_type, headers=headers)

    return serve


def install_embed(app: FastAPI, settings: Settings, origins: Sequence[str]) -> None:
    page = (STATIC / "embed.html").read_text(encoding="utf-8")
    page = page.replace("{{max_question_chars}}", str(settings.max_question_chars))
    page_headers = {
        "Content-Security-Policy": _PAGE_POLICY + frame_ancestors(origins),
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-cache",
    }

    @app.get("/embed", response_class=HTMLResponse, tags=["embed"], summary="Compact chat page for an iframe")
    def embed() -> HTMLResponse:
        """Put `#key=<key>` after the address when API keys are on (a fragment never reaches the server)."""
        return HTMLResponse(page, headers=page_headers)

    app.add_api_route(
        "/widget.js",
        static_asset("widget.js", _JAVASCRIPT, 300),
        methods=["GET"],
        tags=["embed"],
        summary="Script that adds a floating chat button opening /embed in a panel",
        response_class=Response,
        responses={200: {"content": {"text/javascript": {}}}},
    )
    app.add_api_route("/embed.js", static_asset("embed.js", _JAVASCRIPT, 300), methods=["GET"], include_in_schema=False)
    app.add_api_route(
        "/embed.css",
        static_asset("embed.css", "text/css; charset=utf-8", 300),
        methods=["GET"],
        include_in_schema=False,
    )
