"""The access policy at the edges FastAPI routes do not cover: Gradio's ``/login`` (throttled, and its session
token remembered as the identity that signed in) and the API's description (``/docs``, ``/openapi.json``).

Pure ASGI, so streams, Gradio's assets and websockets pass through untouched.
"""

from __future__ import annotations

import json
from http.cookies import SimpleCookie

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request, cookie_parser
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.access.policy import SESSION_COOKIE_PREFIX, Access, BadCredentialsError, ThrottledError, allowed

LOGIN_PATHS = frozenset({"/login", "/login/"})
#: FastAPI's description of the API: as readable as the API itself, no more.
DESCRIPTION_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def _reply(send: Send, status: int, detail: str, headers: dict[str, str]) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def session_token(message: Message) -> str | None:
    """The login token in a response's ``Set-Cookie`` headers (Gradio sets the same token under two names)."""
    for name, value in message.get("headers", []):
        if name.lower() != b"set-cookie":
            continue
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(value.decode("latin-1"))
        for key, morsel in cookie.items():
            if key.startswith(SESSION_COOKIE_PREFIX) and morsel.value:
                return morsel.value
    return None


class AccessGate:
    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in LOGIN_PATHS and scope["method"] == "POST":
            await self._login(scope, receive, send)
        elif scope["type"] == "http" and scope["path"] in DESCRIPTION_PATHS:
            await self._description(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _login(self, scope: Scope, receive: Receive, send: Send) -> None:
        address = client_address(scope)
        wait = await run_in_threadpool(self.access.throttle.retry_after, address)  # database round trips: off the loop
        if wait:
            await _reply(send, 429, str(ThrottledError(wait)), {"Retry-After": str(wait)})
            return
        login = self.access.start_login()

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                token = session_token(message) if message["status"] == 200 else None
                if token and login.identity is not None:
                    self.access.sessions.add(token, login.identity)
                elif message["status"] == 400:  # Gradio's "Incorrect credentials."
                    await run_in_threadpool(self.access.throttle.fail, address)
            await send(message)

        await self.app(scope, receive, watch)

    async def _description(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        try:
            identity = await run_in_threadpool(
                self.access.authenticate, client_address(scope), headers, cookie_parser(headers.get("cookie", ""))
            )
        except ThrottledError as exc:
            await _reply(send, 429, str(exc), {"Retry-After": str(exc.retry_after)})
            return
        except BadCredentialsError as exc:
            identity = None
            detail = str(exc)
        else:
            detail = "sign in first: send Authorization: Bearer <key> (or Basic user:password)"
        if not allowed(identity, "read"):
            await _reply(send, 401, detail, {"WWW-Authenticate": self.access.challenge()})
            return
        await self.app(scope, receive, send)


def install_gate(app: FastAPI, access: Access) -> None:
    app.add_middleware(AccessGate, access=access)


def connect_page_login(app: FastAPI, access: Access) -> None:
    """After ``gr.mount_gradio_app``: follow Gradio's log-outs, and with anonymous callers allowed (or readers signed
    in by the wiki's proxy) let them see the page (Gradio would otherwise show its login form to everybody) while
    sign-ins still work (at ``/signin``)."""
    from gradio.routes import App

    gradio_app = next(r.app for r in app.routes if isinstance(r, Mount) and isinstance(r.app, App))
    access.sessions.follow(gradio_app.tokens)
    if page_is_open(access):
        fallback = "anonymous" if access.anonymous is not None else None

        def page_user(request: Request) -> str | None:
            try:
                identity = access.identify(request.headers, request.cookies)
            except BadCredentialsError:
                identity = None
            return identity.name if identity is not None else fallback

        gradio_app.auth_dependency = page_user


def page_is_open(access: Access) -> bool:
    """Does the page open without Gradio's login form (anonymous callers, or the proxy signs readers in)?"""
    return access.login_configured and (access.anonymous is not None or access.proxy is not None)
