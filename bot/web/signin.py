"""``/signin``: a sign-in form for servers where anonymous callers see the page (Gradio then shows no login form).

It posts to Gradio's own ``/login``, so the session is the page's and the failed-sign-in throttle applies.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from bot.web.embed import STATIC, static_asset

_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


def install_signin(app: FastAPI) -> None:
    page = (STATIC / "signin.html").read_text(encoding="utf-8")
    headers = {"Content-Security-Policy": _POLICY, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}

    @app.get("/signin", response_class=HTMLResponse, tags=["embed"], summary="Sign-in form for the chat page")
    def signin() -> HTMLResponse:
        return HTMLResponse(page, headers=headers)

    app.add_api_route(
        "/signin.js",
        static_asset("signin.js", "text/javascript; charset=utf-8", 300),
        methods=["GET"],
        include_in_schema=False,
    )
