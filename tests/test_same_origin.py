"""Cross-site state changes on the visitor's cookies, and cross-site sign-ins, are refused (issue 27, finding 9);
the page's own requests, scripts with their own credentials and plain reads pass."""

from __future__ import annotations

from typing import Any

import pytest

from bot.web.same_origin import is_cross_site, own_origin


def scope(method: str = "POST", path: str = "/gradio_api/queue/join", scheme: str = "http", **headers: str) -> Any:
    raw = [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]
    return {"type": "http", "method": method, "path": path, "scheme": scheme, "headers": raw}


HOST = {"host": "127.0.0.1:7860"}


@pytest.mark.parametrize(
    ("request_scope", "refused"),
    [
        (scope(path="/login", origin="http://evil.example", **HOST), True),  # login CSRF
        (scope(path="/login", origin="null", **HOST), True),  # a sandboxed frame's form
        (scope(path="/login", sec_fetch_site="cross-site", **HOST), True),  # no Origin, but the browser says so
        (scope(path="/login", origin="http://127.0.0.1:7860", **HOST), False),  # the page's own login form
        (scope(path="/login", **HOST), False),  # not a browser (curl, a script)
        (scope(cookie="access-token-x=t", origin="http://evil.example", **HOST), True),  # a page event on cookies
        (scope(cookie="access-token-x=t", origin="http://127.0.0.1:7860/", **HOST), False),
        (scope(cookie="t=1", authorization="Bearer k", origin="https://wiki.example", **HOST), False),  # widget
        (scope(origin="https://wiki.example", **HOST), False),  # no cookies: nothing of the visitor's to use
        (scope("GET", "/api/documents", cookie="t=1", origin="http://evil.example", **HOST), False),  # a read
        (scope(path="/api/ask", cookie="t=1", origin="http://127.0.0.1:7861", **HOST), True),  # another port
    ],
)
def test_cross_site_state_changes_are_told_apart(request_scope: Any, refused: bool) -> None:
    assert is_cross_site(request_scope) is refused


def test_the_own_origin_follows_the_scheme_and_host_a_proxy_resolved() -> None:
    from starlette.datastructures import Headers

    behind = scope(path="/login", scheme="https", host="wiki.example.com:443")
    assert own_origin(behind, Headers(scope=behind)) == "https://wiki.example.com"
    assert not is_cross_site({**behind, "headers": [*behind["headers"], (b"origin", b"https://wiki.example.com")]})
