"""Files that arrived through this server's upload endpoint: the only ones the page's upload handler accepts.

Gradio keeps each file posted to ``/gradio_api/upload`` in its upload cache and answers with the cached path; the
page's upload event then gets that path back from the browser, so a hostile caller can send any server path
instead. :class:`InboxMiddleware` sits in front of the upload route: it refuses an upload that would take the cache
over ``upload_cache_bytes``, and records each cached path with the session that uploaded it.
:meth:`UploadInbox.take` opens only a path recorded for the same session, inside the cache, a regular file reached
without a symlink (checked on the opened descriptor); anything else gets one error that says nothing about what
is on the server's disk. :meth:`UploadInbox.discard` deletes the cached copy once the page is done with it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import posixpath
import shutil
import stat
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import BinaryIO

from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.web.documents import UploadRefusedError

log = logging.getLogger(__name__)

UPLOAD_ROUTE = "/gradio_api/upload"
#: The one answer for any file the page did not receive from this caller: it does not say whether the path exists.
NOT_RECEIVED = "a file this page did not receive from you (or already added): choose it again in the upload box"


def session_key(cookies: Mapping[str, str]) -> str:
    """Who uploaded a file: a digest of the page's login cookies (empty when login is off)."""
    tokens = sorted(f"{name}={value}" for name, value in cookies.items() if name.startswith("access-token"))
    return hashlib.sha256("\n".join(tokens).encode()).hexdigest()


def given_paths(value: object) -> list[str]:
    """The paths in the upload box's value as the caller sent it (FileData objects; anything else is kept as text,
    to be refused by :meth:`UploadInbox.take` like any path this server did not receive)."""
    items = value if isinstance(value, list) else [value] if value else []
    return [str(item.get("path", "")) if isinstance(item, dict) else str(item) for item in items]


class UploadInbox:
    """The upload cache's received files, per session, and its size cap. Thread-safe (loop and workers share it)."""

    def __init__(self, folder: Path, cap_bytes: int) -> None:
        self.folder = folder.resolve()
        self.cap_bytes = cap_bytes
        self._held: dict[str, set[str]] = {}
        self._pending = 0
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Delete everything in the cache: copies left by an earlier run can never be added (nobody holds them)."""
        if not self.folder.is_dir():
            return
        for entry in self.folder.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)

    def size(self) -> int:
        """Bytes the cache holds now."""
        total = 0
        for dirpath, _, filenames in os.walk(self.folder):
            for name in filenames:
                try:
                    total += os.lstat(os.path.join(dirpath, name)).st_size
                except OSError:
                    continue
        return total

    def admit(self, length: int) -> str | None:
        """Reserve room for an upload of ``length`` bytes; the reason it does not fit, or None."""
        with self._lock:
            used = self.size() + self._pending
            if used + length > self.cap_bytes:
                return (
                    f"The upload cache is full ({used:,} of {self.cap_bytes:,} bytes in use, this upload needs "
                    f"{length:,}): add the files already chosen first, or try again later; the administrator can "
                    "raise DOCBOT_UPLOAD_CACHE_BYTES."
                )
            self._pending += length
            return None

    def release(self, length: int) -> None:
        with self._lock:
            self._pending -= length

    def record(self, paths: Iterable[str], session: str) -> None:
        with self._lock:
            for path in paths:
                self._held.setdefault(os.path.abspath(path), set()).add(session)

    def take(self, given: str, session: str) -> BinaryIO:
        """Open a file this session uploaded, or raise :class:`UploadRefusedError` with :data:`NOT_RECEIVED`."""
        path = os.path.abspath(given)
        with self._lock:
            held = session in self._held.get(path, ())
        inside = Path(path).is_relative_to(self.folder) and os.path.realpath(path) == path
        if not held or not inside:
            raise UploadRefusedError(NOT_RECEIVED)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            raise UploadRefusedError(NOT_RECEIVED) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise UploadRefusedError(NOT_RECEIVED)
        return os.fdopen(fd, "rb")

    def discard(self, given: str, session: str) -> None:
        """Forget a file for this session and delete the cached copy once no session holds it."""
        path = os.path.abspath(given)
        with self._lock:
            holders = self._held.get(path)
            if holders is None or session not in holders:
                return  # never delete a path this session did not upload
            holders.discard(session)
            if holders:
                return
            del self._held[path]
        Path(path).unlink(missing_ok=True)
        parent = Path(path).parent
        if parent != self.folder and parent.is_relative_to(self.folder):
            with contextlib.suppress(OSError):  # Gradio's per-upload folder, once empty
                parent.rmdir()


def _is_upload(scope: Scope) -> bool:
    if scope["type"] != "http" or scope["method"] != "POST":
        return False
    path = posixpath.normpath("/" + str(scope["path"]).lstrip("/"))
    return path == UPLOAD_ROUTE


class InboxMiddleware:
    """Caps the upload cache before Gradio reads an upload, and records the paths Gradio answers with."""

    def __init__(self, app: ASGIApp, inbox: UploadInbox) -> None:
        self.app = app
        self.inbox = inbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _is_upload(scope):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            length = int(request.headers.get("content-length", ""))
        except ValueError:
            await PlainTextResponse("An upload needs a Content-Length header.", status_code=411)(scope, receive, send)
            return
        refusal = self.inbox.admit(length)
        if refusal is not None:
            await PlainTextResponse(refusal, status_code=413)(scope, receive, send)
            return
        status = 0
        body = bytearray()
        session = session_key(request.cookies)

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and status == 200:
                body.extend(message.get("body", b""))
                if not message.get("more_body", False):  # recorded before the caller can see the paths
                    self._record(bytes(body), session)
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            self.inbox.release(length)

    def _record(self, body: bytes, session: str) -> None:
        try:
            paths = json.loads(body)
        except ValueError:
            paths = None
        if not isinstance(paths, list):
            log.warning("Gradio's upload answer was not a list of paths; those files cannot be added")
            return
        self.inbox.record((str(p) for p in paths), session)
