"""Who may call the API and how often, and what browsers may do with docbot's pages.

- :class:`Guard`: the dependency in front of ``/api`` and ``/v1``: the caller's identity and right to ask (the
  policy in :mod:`bot.access.policy`), then a per-caller rate limit counted in the database
  (:mod:`bot.access.rate_limits`).
- :func:`install_browser_policy`: CORS for the embed origins only, and ``frame-ancestors`` on every response.

Keys are never stored beyond their SHA-256 digests, logged or echoed: a caller is named by the key's name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import FastAPI, HTTPException, Request, Security
from fastapi.middleware.cors import CORSMiddleware
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.access.policy import Access, BadCredentialsError, Identity, ThrottledError, allowed
from bot.access.rate_limits import RateLimiter, rate_bucket

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="APIKey",
    description="One of the keys in DOCBOT_API_KEYS, as `Authorization: Bearer <key>` (HTTP Basic with a user of "
    "DOCBOT_USERS works too); needed unless anonymous callers may ask.",
)


def frame_ancestors(origins: Sequence[str]) -> str:
    return "frame-ancestors " + " ".join(["'self'", *origins])


class Guard:
    """The dependency in front of ``/api``, ``/v1`` and the evidence viewer: who the caller is (see
    :mod:`bot.access.policy`), whether they may do ``action`` (ask; read for the viewer) on ``collection`` (None: on
    some collection; each route then checks the collections it is asked about), and the rate limit per identity (per
    address for anonymous callers). Returns the identity.

    No identity: 401. Signed in but not allowed: 403 when no collection was named (they were granted nothing), else
    404 (a collection one may not read is answered like one that does not exist)."""

    def __init__(
        self, access: Access, limiter: RateLimiter, action: str = "ask", collection: str | None = None
    ) -> None:
        self._access = access
        self._limiter = limiter
        self._action = action
        self._collection = collection

    def identity(self, request: Request) -> Identity:
        address = request.client.host if request.client else "unknown"
        challenge = {"WWW-Authenticate": self._access.challenge()}
        try:
            identity = self._access.authenticate(address, request.headers, request.cookies)
        except ThrottledError as exc:
            raise HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after)}) from exc
        except BadCredentialsError as exc:
            raise HTTPException(401, "the API key (or user and password) is not valid", headers=challenge) from exc
        if allowed(identity, self._action, self._collection):
            assert identity is not None  # allowed() refuses None
            return identity
        if identity is None or identity.anonymous:
            raise HTTPException(
                401, "an API key is required: send the header Authorization: Bearer <key>", headers=challenge
            )
        if self._collection is not None:
            raise HTTPException(404, "not found")
        raise HTTPException(
            403, f"{identity.name} may read no collection here: an administrator grants it (docbot access grant)"
        )

    def admit(self, request: Request) -> Identity:
        """The caller's identity, once counted against the rate limit (raises the 401 or 429)."""
        identity = self.identity(request)
        address = request.client.host if request.client else "unknown"
        wait = self._limiter.retry_after(rate_bucket(identity, address))
        if wait:
            raise HTTPException(
                429,
                f"rate limit of {self._limiter.limit} requests a minute reached; retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        return identity

    async def __call__(
        self, request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
    ) -> Identity:
        # in a worker thread: the counters are database round trips, which must never hold up the event loop
        return await run_in_threadpool(self.admit, request)


class FrameAncestors:
    """Adds ``Content-Security-Policy: frame-ancestors ...`` to every HTTP response that has no policy of its own.

    Pure ASGI (no body buffering), so streams, Gradio's assets and websockets pass through untouched.
    """

    def __init__(self, app: ASGIApp, policy: str) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "content-security-policy" not in headers:
                    headers.append("Content-Security-Policy", self.policy)
            await send(message)

        await self.app(scope, receive, send_with_policy)


def install_browser_policy(app: FastAPI, origins: Sequence[str]) -> None:
    """Only ``origins`` (and docbot itself) may frame docbot's pages or call the API from a browser."""
    app.add_middleware(FrameAncestors, policy=frame_ancestors(origins))
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type"],
        expose_headers=["Retry-After"],
        max_age=600,
    )
