"""The upload inbox's accounting (issue 27, finding 6), in-process: bytes count as they arrive, per caller, a stalled
body is dropped with its partial files, files waiting too long expire, and only callers who may upload get in.

The middleware runs in front of a route that reads the body with Gradio's own ``upload_fn``, so what a body cut off
leaves in the cache is what Gradio would leave.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from gradio.route_utils import MultiPartException, upload_fn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.access.policy import Identity, Role
from bot.documents.upload_inbox import CACHE_FULL, QUOTA_USED, Receiving, Refusal, UploadInbox, session_key
from bot.web.upload_route import InboxMiddleware

BOUNDARY = "docbot-test-boundary"
#: The session of a caller with no page cookie.
NO_LOGIN = session_key({})
#: Who the stub access layer says each ``Authorization`` value proves.
CALLERS = {
    "ann": Identity("ann", Role.editor),
    "mallory": Identity("mallory", Role.editor),
    "rita": Identity("rita", Role.reader),
}


class StubAccess:
    """``Access.identify`` from the ``Authorization`` header alone: a name of :data:`CALLERS`, else anonymous
    (a reader)."""

    def identify(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> Identity | None:
        return CALLERS.get(headers.get("authorization", ""), Identity("anonymous", Role.reader))


def multipart(files: list[tuple[str, bytes]]) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + content
        + b"\r\n"
        for name, content in files
    ]
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def gradio_like(folder: Path) -> Starlette:
    """Gradio's upload route, reduced to what it does with the body."""

    async def upload(request: Request) -> Response:
        try:
            paths, _, _ = await upload_fn(request, str(folder), math.inf, None)
        except MultiPartException as exc:
            return PlainTextResponse(exc.message, status_code=400)
        return JSONResponse(paths)

    return Starlette(routes=[Route("/gradio_api/upload", upload, methods=["POST"])])


def scope_for(caller: str, length: int) -> dict[str, Any]:
    headers = [
        (b"authorization", caller.encode()),
        (b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode()),
        (b"content-length", str(length).encode()),
    ]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/gradio_api/upload",
        "raw_path": b"/gradio_api/upload",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }


class Exchange:
    """One upload through the middleware: the body in ``chunks``, then (``stall``) nothing more, ever."""

    def __init__(self, chunks: list[bytes], stall: bool = False) -> None:
        self.chunks = list(chunks)
        self.stall = stall
        self.read = 0
        self.status = 0
        self.body = b""
        self.headers: dict[bytes, bytes] = {}

    async def receive(self) -> dict[str, Any]:
        if self.chunks:
            chunk = self.chunks.pop(0)
            self.read += len(chunk)
            return {"type": "http.request", "body": chunk, "more_body": bool(self.chunks) or self.stall}
        if self.stall:
            await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = dict(message.get("headers", []))
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")


def run(middleware: InboxMiddleware, caller: str, exchange: Exchange, length: int) -> Exchange:
    asyncio.run(middleware(scope_for(caller, length), exchange.receive, exchange.send))
    return exchange


@pytest.fixture
def inbox(tmp_path: Path) -> UploadInbox:
    folder = tmp_path / "gradio"
    folder.mkdir()
    return UploadInbox(folder, cap_bytes=50_000, quota_bytes=20_000, ttl_s=60)


def middleware(inbox: UploadInbox, timeout_s: float = 5) -> InboxMiddleware:
    return InboxMiddleware(gradio_like(inbox.folder), inbox, StubAccess(), timeout_s)  # type: ignore[arg-type]


def files_in(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_a_declared_length_reserves_nothing_only_received_bytes_count(inbox: UploadInbox) -> None:
    stalled = [inbox.admit("user:mallory", 20_000) for _ in range(13)]  # each declares the whole allowance
    assert all(isinstance(u, Receiving) for u in stalled)
    assert inbox.held() == 0
    assert isinstance(inbox.admit("user:ann", 20_000), Receiving), "an editor's upload fits beside declared bytes"
    first = stalled[0]
    assert isinstance(first, Receiving) and inbox.take_in(first, 300)
    assert inbox.held("user:mallory") == 300 and inbox.held("user:ann") == 0
    inbox.finish(first)
    assert inbox.held() == 0


def test_each_caller_has_a_quota_and_the_cache_a_cap_and_neither_refusal_tells_what_is_left(
    inbox: UploadInbox,
) -> None:
    mallory = inbox.admit("user:mallory", 15_000)
    assert isinstance(mallory, Receiving) and inbox.take_in(mallory, 15_000)
    again = inbox.admit("user:mallory", 6_000)
    assert again == Refusal(429, QUOTA_USED)
    more = inbox.admit("user:mallory", 5_000)
    assert isinstance(more, Receiving)
    assert not inbox.take_in(more, 5_001) and more.refusal == Refusal(429, QUOTA_USED)
    assert isinstance(inbox.admit("user:ann", 20_000), Receiving), "another caller's quota is untouched"
    too_big = inbox.admit("user:ann", 20_001)
    assert isinstance(too_big, Refusal) and too_big.status == 413 and "choose fewer files" in too_big.text

    for name in ("user:bob", "user:carol"):  # the cache itself: 15,000 + 2 x 17,000 > 50,000
        upload = inbox.admit(name, 17_000)
        assert isinstance(upload, Receiving) and inbox.take_in(upload, 17_000)
    late = inbox.admit("user:dave", 2_000)
    assert late == Refusal(413, CACHE_FULL)
    for text in (QUOTA_USED, CACHE_FULL):
        assert not re.search(r"\d", text), f"a refusal names a byte count: {text}"


def test_recorded_files_count_against_their_uploader_until_added(inbox: UploadInbox) -> None:
    path = inbox.folder / "abc" / "notes.md"
    path.parent.mkdir()
    path.write_bytes(b"x" * 19_000)
    inbox.record([str(path)], "session-1", "user:mallory")
    assert inbox.held("user:mallory") == 19_000
    assert inbox.admit("user:mallory", 2_000) == Refusal(429, QUOTA_USED)
    inbox.discard(str(path), "session-1")
    assert inbox.held() == 0 and not path.exists()
    assert isinstance(inbox.admit("user:mallory", 2_000), Receiving)


def test_an_upload_is_cached_recorded_and_its_bytes_then_count_as_a_file(inbox: UploadInbox) -> None:
    body = multipart([("notes.md", b"# Notes\n\nThe ferry leaves at seven.\n")])
    done = run(middleware(inbox), "ann", Exchange([body[:40], body[40:]]), len(body))
    assert done.status == 200, done.body
    (path,) = [Path(p) for p in json.loads(done.body)]
    assert path.read_bytes().startswith(b"# Notes")
    inbox.take(str(path), NO_LOGIN).close()
    assert inbox.held("user:ann") == path.stat().st_size


def test_a_stalled_body_is_dropped_with_its_partial_files_and_its_bytes_released(inbox: UploadInbox) -> None:
    body = multipart([("big.md", b"y" * 19_000)])
    started = time.monotonic()
    done = run(middleware(inbox, timeout_s=0.3), "mallory", Exchange([body[:5_000]], stall=True), len(body))
    assert time.monotonic() - started < 5
    assert done.status == 408 and b"sent nothing for 0.3 s" in done.body, done.body
    assert done.headers.get(b"connection") == b"close"
    assert not files_in(inbox.folder), "the partial file stayed in the cache"
    assert inbox.held() == 0


def test_a_body_over_the_quota_is_cut_off_where_it_goes_over(inbox: UploadInbox) -> None:
    body = multipart([("big.md", b"z" * 30_000)])
    declared = 10_000  # a lie: the body goes on past it
    chunks = [body[i : i + 4_000] for i in range(0, len(body), 4_000)]
    done = run(middleware(inbox), "mallory", Exchange(chunks), declared)
    assert done.status == 429 and done.body.decode() == QUOTA_USED
    assert not files_in(inbox.folder) and inbox.held() == 0


def test_a_reader_or_anonymous_caller_is_refused_before_a_byte_is_read(inbox: UploadInbox) -> None:
    body = multipart([("notes.md", b"hello")])
    for caller in ("rita", "nobody"):
        done = run(middleware(inbox), caller, Exchange([body]), len(body))
        assert done.status == 403 and b"needs an editor" in done.body
        assert done.read == 0, "the body was read"
    assert not files_in(inbox.folder)


def test_a_dot_name_in_a_batch_is_cached_without_its_dots_beside_the_others(inbox: UploadInbox) -> None:
    body = multipart([(".hidden.md", b"# Hidden\n"), ("good.md", b"# Good\n")])
    done = run(middleware(inbox), "ann", Exchange([body]), len(body))
    assert done.status == 200
    paths = json.loads(done.body)
    assert [Path(p).name for p in paths] == ["hidden.md", "good.md"]
    assert done.headers[b"content-length"] == str(len(done.body)).encode()
    for path in paths:
        inbox.take(path, NO_LOGIN).close()


def test_files_waiting_longer_than_their_time_expire(inbox: UploadInbox, tmp_path: Path) -> None:
    old, fresh, junk = (inbox.folder / d / "f.md" for d in ("a", "b", "c"))
    for path in (old, fresh, junk):
        path.parent.mkdir()
        path.write_bytes(b"x" * 1_000)
    inbox.record([str(old), str(fresh)], "s", "user:ann")
    an_hour_ago = time.time() - 3_600
    os.utime(old, (an_hour_ago, an_hour_ago))
    os.utime(junk, (an_hour_ago, an_hour_ago))  # left by an upload that failed inside Gradio: recorded nowhere
    assert inbox.expire() == 2
    assert not old.exists() and not old.parent.exists() and not junk.exists() and fresh.exists()
    assert inbox.held("user:ann") == 1_000

    chosen = tmp_path / "operator-cache"  # a folder the operator chose: only what docbot recorded expires
    theirs, ours = chosen / "theirs.txt", chosen / "d" / "ours.md"
    ours.parent.mkdir(parents=True)
    for path in (theirs, ours):
        path.write_text("old")
        os.utime(path, (an_hour_ago, an_hour_ago))
    shared = UploadInbox(chosen, 50_000, 20_000, 60, owned=False)
    shared.record([str(ours)], "s", "user:ann")
    assert shared.expire() == 1 and theirs.exists() and not ours.exists()
