"""Cross-site requests that would act with the visitor's browser: refused before anything reads them.

A browser sends a site's cookies with a form another site posts to it, and a sign-in form posted from elsewhere
signs the visitor in as whoever the other site chose (login CSRF). So a request that changes something (any method
but GET, HEAD, OPTIONS) and is either a sign-in (``/login``) or carries cookies without its own ``Authorization``
must come from docbot's own pages: its ``Origin`` (browsers send it on every cross-origin POST) is docbot's own
``scheme://host`` as the request names it (after :class:`bot.web.edge.ForwardedHeaders`), or, when a browser sent
no ``Origin``, its ``Sec-Fetch-Site`` is not ``cross-site``. A caller with an API key or a password in the request
itself (the widget, scripts) is not acting on a browser's ambient cookies and passes.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

#: Methods that only read (and CORS's preflight).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Sign-in routes: checked with or without cookies (Gradio's login form, and its log-out).
SIGN_IN_PATHS = frozenset({"/login", "/logout"})
REFUSED = "cross-site request refused: this action must come from docbot's own page (open docbot and try again there)"


def own_origin(scope: Scope, headers: Headers) -> str:
    """``scheme://host[:port]`` the request was sent to, lower-cased (default ports as browsers write them)."""
    scheme = str(scope.get("scheme", "http")).lower()
    host = (headers.get("host") or "").strip().lower()
    default = {"http": ":80", "https": ":443"}.get(scheme, "")
    if default and host.endswith(default):
        host = host[: -len(default)]
    return f"{scheme}://{host}"


def is_cross_site(scope: Scope) -> bool:
    """Whether ``scope`` is a state change a browser was made to send from another site on the visitor's cookies."""
    if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
        return False
    headers = Headers(scope=scope)
    if scope["path"] not in SIGN_IN_PATHS and ("cookie" not in headers or "authorization" in headers):
        return False
    origin = headers.get("origin")
    if origin is None:
        return headers.get("sec-fetch-site", "").lower() == "cross-site"
    return origin.strip().lower().rstrip("/") != own_origin(scope, headers)


class SameOriginStateChanges:
    """403 for a cross-site state change (see the module's text); everything else passes untouched (pure ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if is_cross_site(scope):
            await JSONResponse({"detail": REFUSED}, status_code=403)(scope, receive, send)
            return
        await self.app(scope, receive, send)
