"""Gradio's upload route, guarded: :class:`InboxMiddleware` sits in front of ``/gradio_api/upload``.

It lets only a caller who may upload somewhere (an editor, not a reader or the embed key) write to Gradio's upload
cache at all; it counts each upload's bytes as they arrive against the cache and the caller
(:class:`bot.documents.upload_inbox.UploadInbox`), drops a body that stalls for ``upload_body_timeout_s`` or goes
over, with the partial files it left, and records each cached path with the session that uploaded it and the
caller it counts against.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import posixpath
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.access.policy import Access, BadCredentialsError, allowed
from bot.documents.upload_inbox import Receiving, Refusal, UploadInbox, session_key

log = logging.getLogger(__name__)

UPLOAD_ROUTE = "/gradio_api/upload"
NOT_ALLOWED = "Adding documents needs an editor or the administrator: sign in as one to upload files."


def without_leading_dots(path: str) -> str:
    """A cached file whose name starts with a dot, renamed without it (the same folder: the same content); the path
    it has now. Gradio refuses an event naming a dot file under its working directory, which failed a whole batch
    with a bare "Error"; the page would have dropped the dots from the name anyway."""
    name = os.path.basename(path)
    if not name.startswith("."):
        return path
    renamed = os.path.join(os.path.dirname(path), name.lstrip(".") or "unnamed")
    try:
        os.replace(path, renamed)
    except OSError:  # gone meanwhile: the page refuses it like any file it did not receive
        return path
    return renamed


def _is_upload(scope: Scope) -> bool:
    if scope["type"] != "http" or scope["method"] != "POST":
        return False
    path = posixpath.normpath("/" + str(scope["path"]).lstrip("/"))
    return path == UPLOAD_ROUTE


def _boundary(request: Request) -> bytes:
    """The multipart boundary the upload declares (empty when there is none: Gradio refuses such a body)."""
    for param in request.headers.get("content-type", "").split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.lower() == "boundary":
            return value.strip('"').encode("latin-1")
    return b""


@dataclass
class _Answer:
    """Gradio's answer to an upload, held back until the inbox has checked and recorded what it cached."""

    messages: list[Message] = field(default_factory=list)

    async def capture(self, message: Message) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"]) if self.messages else 0

    def paths(self) -> list[str] | None:
        """The cached paths of a 200 answer (None for any other answer, or one that is not a list of paths)."""
        if self.status != 200:
            return None
        try:
            paths = json.loads(b"".join(m.get("body", b"") for m in self.messages[1:]))
        except ValueError:
            paths = None
        if not isinstance(paths, list):
            log.warning("Gradio's upload answer was not a list of paths; those files cannot be added")
            return None
        return [str(p) for p in paths]

    async def replay(self, send: Send, paths: list[str] | None = None) -> None:
        """Send the answer on, with ``paths`` as its body when given."""
        if paths is None:
            for message in self.messages:
                await send(message)
            return
        body = json.dumps(paths).encode()
        start = self.messages[0]
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _refuse(refusal: Refusal, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer ``refusal`` and close the connection (the rest of its body is never read)."""
    response = PlainTextResponse(refusal.text, status_code=refusal.status, headers={"Connection": "close"})
    await response(scope, receive, send)


class InboxMiddleware:
    """Lets only callers who may upload write to Gradio's upload cache, counts each upload's bytes as they arrive
    against the cache and the caller, drops a stalled one, and records the paths Gradio answers with."""

    def __init__(self, app: ASGIApp, inbox: UploadInbox, access: Access, body_timeout_s: float) -> None:
        self.app = app
        self.inbox = inbox
        self.access = access
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _is_upload(scope):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        upload = await self._admit(request)
        if isinstance(upload, Refusal):
            await _refuse(upload, scope, receive, send)
            return
        answer = _Answer()
        try:
            await self.app(scope, self._metered(receive, upload, _boundary(request)), answer.capture)
            await self._settle(scope, answer, upload, session_key(request.cookies), send)
        finally:
            self.inbox.finish(upload)

    async def _admit(self, request: Request) -> Receiving | Refusal:
        """Who may start this upload: a declared length, a caller who may upload, room for it now."""
        try:
            length = int(request.headers.get("content-length", ""))
        except ValueError:
            return Refusal(411, "An upload needs a Content-Length header.")
        try:  # the grants may need the database: off the loop
            identity = await run_in_threadpool(self.access.identify, request.headers, request.cookies)
        except BadCredentialsError as exc:
            return Refusal(401, str(exc))
        if identity is None or not allowed(identity, "upload"):
            return Refusal(403, NOT_ALLOWED)
        await run_in_threadpool(self.inbox.expire)
        return self.inbox.admit(identity.proven_as, length)

    def _metered(self, receive: Receive, upload: Receiving, boundary: bytes) -> Receive:
        """``receive`` with each body chunk counted as it arrives. A body that stalls, goes over, or whose caller
        went away is ended there with the multipart's closing boundary, so that Gradio finishes with the partial
        files in its cache, where :meth:`_settle` deletes them (on a disconnect Gradio would leave them behind)."""
        cut = False

        async def metered() -> Message:
            nonlocal cut
            if cut:
                return {"type": "http.disconnect"}
            try:
                message = await asyncio.wait_for(receive(), self.body_timeout_s)
            except TimeoutError:
                upload.refusal = Refusal(
                    408,
                    f"The upload sent nothing for {self.body_timeout_s:g} s and was dropped: choose the files again.",
                )
            else:
                if message["type"] != "http.request":
                    upload.refusal = Refusal(400, "The upload was cut off.")
                elif self.inbox.take_in(upload, len(message.get("body", b""))):
                    return message
            cut = True
            return {"type": "http.request", "body": b"\r\n--" + boundary + b"--\r\n", "more_body": False}

        return metered

    async def _settle(self, scope: Scope, answer: _Answer, upload: Receiving, session: str, send: Send) -> None:
        """Record what Gradio cached and pass its answer on; for an upload cut off, delete it and refuse."""
        paths = answer.paths()
        if upload.refusal is not None:
            if paths:
                await run_in_threadpool(self.inbox.drop, paths)
            await _refuse(upload.refusal, scope, _no_body, send)
            return
        if paths is None:
            await answer.replay(send)
            return
        shown = await run_in_threadpool(self._record, paths, session, upload.owner)
        await answer.replay(send, shown if shown != paths else None)  # recorded before the caller sees the paths

    def _record(self, paths: list[str], session: str, owner: str) -> list[str]:
        shown = [without_leading_dots(path) for path in paths]
        self.inbox.record(shown, session, owner)
        return shown


async def _no_body() -> Message:
    return {"type": "http.disconnect"}
