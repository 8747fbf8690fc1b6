"""A page session belongs to the caller who opened it: a session hash alone reads nothing.

Gradio keeps a page's state (its chat turns, the picked collections) and streams its events by the ``session_hash``
the browser made up and sends with every event (in the body of ``/gradio_api/queue/join``, the query of
``/gradio_api/queue/data``, the path of ``/gradio_api/heartbeat/<hash>``). Anyone who learnt a hash (from a log, a
shared screen) could send it too and get that session's turns back from a handler. So the first caller to use a
hash owns it, named as its rate limit is (:func:`bot.access.rate_limits.rate_bucket`: the signed-in user, the proxy
reader, a key per address, else the address), and a request naming that hash from anyone else is refused before
Gradio sees it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.access.policy import Access, BadCredentialsError
from bot.access.rate_limits import rate_bucket
from index.lru import BoundedLRU

#: Page sessions whose owner is remembered (the least recently used forgotten first: a forgotten one is owned
#: again by whoever uses it next).
MAX_OWNED_SESSIONS = 100_000
#: The largest event body read to find its session hash (a question, filter chips, file references: small).
MAX_EVENT_BODY = 1 << 20
_HEARTBEAT = re.compile(r"^/gradio_api/heartbeat/([^/]+)$")
#: A session hash in a logged path: in a query, or a heartbeat's path.
_SESSION_IN_TEXT = re.compile(r"(session_hash=|/gradio_api/heartbeat/)[^&/?\s\"]+")
REFUSED = "this page session was opened by someone else: reload the page to start your own"


def session_of_query(scope: Scope) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("session_hash")
    return values[0] if values else None


def session_of_body(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    found = data.get("session_hash") if isinstance(data, dict) else None
    return found if isinstance(found, str) else None


class PageSessionOwner:
    """Refuses (403) a Gradio request that names a session hash another caller opened (pure ASGI: the bodies it
    reads are small event bodies, replayed to Gradio unchanged; streams pass straight through)."""

    def __init__(self, app: ASGIApp, caller_of: Callable[[Scope], str]) -> None:
        self.app = app
        self.caller_of = caller_of
        self.owners: BoundedLRU[str, str] = BoundedLRU(MAX_OWNED_SESSIONS, lambda _: 1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/gradio_api/"):
            await self.app(scope, receive, send)
            return
        heartbeat = _HEARTBEAT.match(scope["path"])
        session = heartbeat.group(1) if heartbeat else session_of_query(scope)
        if session is None and scope["method"] == "POST" and "json" in Headers(scope=scope).get("content-type", ""):
            body, receive = await _read_body(receive)
            if body is None:
                await JSONResponse({"detail": "the event is too large"}, status_code=413)(scope, receive, send)
                return
            session = session_of_body(body)
        # identifying the caller may read the grants from the database: off the event loop
        if session is not None and not await run_in_threadpool(self.owned_by_caller, session, scope):
            await JSONResponse({"detail": REFUSED}, status_code=403)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def owned_by_caller(self, session: str, scope: Scope) -> bool:
        """Whether this caller owns ``session`` (taking it, if nobody does yet)."""
        caller = self.caller_of(scope)
        owner = self.owners.get(session)
        if owner is None:
            self.owners.put(session, caller)
            return True
        return owner == caller


async def _read_body(receive: Receive) -> tuple[bytes | None, Receive]:
    """The whole request body (None when over :data:`MAX_EVENT_BODY`) and a ``receive`` that replays it."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > MAX_EVENT_BODY:
            return None, receive
        more = message.get("more_body", False)
    body = b"".join(chunks)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


def page_caller(access: Access) -> Callable[[Scope], str]:
    """Who a page request proves to be, as a rate-limit bucket (the address when it proves nobody)."""

    def caller_of(scope: Scope) -> str:
        headers = Headers(scope=scope)
        address = scope["client"][0] if scope.get("client") else "unknown"
        try:
            identity = access.identify(headers, cookie_parser(headers.get("cookie", "")))
        except BadCredentialsError:
            identity = None
        return rate_bucket(identity, address)

    return caller_of


class SessionHashes(logging.Filter):
    """Keeps page session hashes out of the server's access log (uvicorn logs each request's path and query)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redacted(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True


def redacted(text: str) -> str:
    """``text`` with every session hash in it replaced by an ellipsis."""
    return _SESSION_IN_TEXT.sub("\\1…", text)
