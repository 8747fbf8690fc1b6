"""The network edge: what every request passes before it reaches the API, the embed or the Gradio page.

Pure ASGI middleware (no body buffering, so answer streams and Gradio's event streams pass straight through):

- :class:`ForwardedHeaders`: the caller's address (``scope["client"]``, which every rate limit keys on), scheme and
  host come from forwarded headers only when the TCP peer is a configured proxy, and then from the rightmost hop no
  trusted proxy wrote. From anyone else those headers are removed, so nothing downstream (Gradio included) reads them;
  so are the wiki proxy's user and groups headers (DOCBOT_PROXY_USER_HEADER, DOCBOT_PROXY_GROUPS_HEADER):
  :mod:`bot.access.policy` signs a reader in from them only because nobody but a trusted proxy can get them this far.
- :class:`HostAllowList`: a request naming a host outside the allow-list gets 400 (DNS rebinding against a local
  install).
- :class:`PageRateLimit`: the page's event routes under a per-caller rate limit (counted in the database).
- :class:`AnswerSlots`: the cap on answers computed at once, shared by the page, ``/api`` and ``/v1``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from fastapi import FastAPI, HTTPException
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.access.policy import Access
from bot.access.rate_limits import RateLimiter
from bot.config import Settings
from bot.state.database import DatabaseError
from bot.state.stores import Stores
from bot.web.page_session_owner import PageSessionOwner, page_caller
from bot.web.same_origin import SameOriginStateChanges

log = logging.getLogger(__name__)

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

#: Headers a proxy writes about the original request; believed only from a trusted proxy, else dropped.
FORWARDED_HEADERS = frozenset(
    {
        b"forwarded",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-forwarded-port",
        b"x-forwarded-prefix",
        b"x-real-ip",
    }
)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
#: ``DOCBOT_HOST`` values that name every interface rather than one address a browser would use.
ANY_INTERFACE = frozenset({"", "0.0.0.0", "::"})
#: The page's routes that start work (an event, an upload, an API-style call); polling and assets are not counted.
PAGE_EVENT_ROUTES = (
    "/gradio_api/queue/join",
    "/gradio_api/upload",
    "/gradio_api/run/",
    "/gradio_api/call/",
    "/gradio_api/api/",
    "/gradio_api/component_server",
)
#: Seconds a caller refused for lack of an answer slot is told to wait.
BUSY_RETRY_AFTER_S = 5
BUSY = "docbot is busy answering other questions; please retry in a few seconds"


def address_of(text: str) -> Address | None:
    """The address in a forwarded hop (``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``, ``"[::1]"``, ``::1``), else None."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def forwarded_elements(values: Sequence[str]) -> list[dict[str, str]]:
    """The elements of RFC 7239 ``Forwarded`` headers, each as its lower-cased ``name -> value`` pairs."""
    elements: list[dict[str, str]] = []
    for value in values:
        for element in value.split(","):
            pairs = (pair.partition("=") for pair in element.split(";"))
            elements.append({name.strip().lower(): text.strip().strip('"') for name, eq, text in pairs if eq})
    return elements


class ForwardedHeaders:
    """Forwarded headers believed only from ``proxies``; the resolved caller becomes ``scope["client"]``.

    Of ``X-Forwarded-For`` (else ``Forwarded: for=``, else ``X-Real-IP``) the caller is the rightmost address that
    is not itself a trusted proxy: a client can prepend anything, but not what its proxy appends.
    """

    def __init__(self, app: ASGIApp, proxies: Sequence[Network], identity_headers: Sequence[str] = ()) -> None:
        self.app = app
        self.proxies = tuple(proxies)
        self.untrusted = FORWARDED_HEADERS | {name.lower().encode("latin-1") for name in identity_headers}

    def trusts(self, address: Address | None) -> bool:
        return address is not None and any(address in network for network in self.proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = self.resolved(scope)
        await self.app(scope, receive, send)

    def resolved(self, scope: Scope) -> Scope:
        peer = scope.get("client")
        if not (peer and self.trusts(address_of(peer[0]))):
            return {**scope, "headers": [(k, v) for k, v in scope["headers"] if k.lower() not in self.untrusted]}
        headers = Headers(scope=scope)
        elements = forwarded_elements(headers.getlist("forwarded"))
        resolved = dict(scope)
        client = self.client(headers, elements)
        if client is not None:
            resolved["client"] = (client, 0)
        scheme = _first(headers.get("x-forwarded-proto")) or _first(_last_named(elements, "proto"))
        if scheme in ("http", "https"):
            resolved["scheme"] = ("wss" if scheme == "https" else "ws") if scope["type"] == "websocket" else scheme
        host = _first(headers.get("x-forwarded-host")) or _first(_last_named(elements, "host"))
        if host:
            resolved["headers"] = [(k, v) for k, v in scope["headers"] if k != b"host"] + [(b"host", host.encode())]
        return resolved

    def client(self, headers: Headers, elements: list[dict[str, str]]) -> str | None:
        if "x-forwarded-for" in headers:
            hops = [hop for value in headers.getlist("x-forwarded-for") for hop in value.split(",")]
        elif elements:
            hops = [element.get("for", "") for element in elements]
        else:
            hops = headers.getlist("x-real-ip")[-1:]
        addresses = [address_of(hop) for hop in hops]
        for address in reversed(addresses):
            if address is None:  # a hop no proxy of ours would write: the caller is not known, keep the proxy's
                return None
            if not self.trusts(address):
                return str(address)
        return str(addresses[0]) if addresses else None


def _first(value: str | None) -> str:
    return (value or "").split(",")[0].strip().lower()


def _last_named(elements: list[dict[str, str]], name: str) -> str | None:
    named = [element[name] for element in elements if name in element]
    return named[-1] if named else None


def host_name(header: str) -> str:
    """The name in a ``Host`` header, without port, brackets or a trailing dot, lower-cased."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    if header.count(":") == 1:
        header = header.partition(":")[0]
    return header.rstrip(".")


def allowed_hosts(settings: Settings) -> list[str]:
    """``DOCBOT_ALLOWED_HOSTS``, or the loopback names plus ``DOCBOT_HOST`` when it names one interface."""
    if settings.allowed_hosts:
        return list(settings.allowed_hosts)
    own = host_name(settings.host)
    return [*LOOPBACK_HOSTS, *([own] if own not in ANY_INTERFACE and own not in LOOPBACK_HOSTS else [])]


class HostAllowList:
    """400 for a request whose ``Host`` is not one of ``hosts`` (``*.example.com`` for subdomains, ``*`` for any)."""

    def __init__(self, app: ASGIApp, hosts: Sequence[str]) -> None:
        self.app = app
        names = {host_name(host) for host in hosts}
        self.any = "*" in names
        self.exact = frozenset(name for name in names if not name.startswith("*."))
        self.suffixes = tuple(name[1:] for name in names if name.startswith("*."))

    def allows(self, header: str | None) -> bool:
        name = host_name(header or "")
        return self.any or name in self.exact or (bool(name) and name.endswith(self.suffixes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.allows(Headers(scope=scope).get("host")):
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        else:
            detail = (
                "this server does not answer for that host name: use its address, or add the name to "
                "DOCBOT_ALLOWED_HOSTS"
            )
            await JSONResponse({"detail": detail}, status_code=400)(scope, receive, send)


class PageRateLimit:
    """The page's events (questions, uploads, calls) per caller, at most the API's rate a minute; 429 beyond it.

    The caller is whoever the request proves to be (:func:`bot.access.rate_limits.rate_bucket` names the bucket), never
    the user name typed beside a key at sign-in.
    """

    def __init__(self, app: ASGIApp, limiter: RateLimiter, caller_of: Callable[[Scope], str]) -> None:
        self.app = app
        self.limiter = limiter
        self.caller_of = caller_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith(PAGE_EVENT_ROUTES):
            await self.app(scope, receive, send)
            return
        try:
            caller = await run_in_threadpool(self.caller_of, scope)  # the grants may be read: off the loop too
            wait = await run_in_threadpool(self.limiter.retry_after, caller)  # a database round trip, off the loop
        except DatabaseError:
            log.exception("page rate limit: the state database failed")
            detail = "the state database is unavailable, so page events are refused for now; retry shortly"
            response = JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "5"})
            await response(scope, receive, send)
            return
        if not wait:
            await self.app(scope, receive, send)
            return
        detail = f"rate limit of {self.limiter.limit} page events a minute reached; retry in {wait} s"
        response = JSONResponse({"detail": detail}, status_code=429, headers={"Retry-After": str(wait)})
        await response(scope, receive, send)


class AnswerSlots:
    """At most ``limit`` answers computed at once, wherever they were asked; taking a slot never waits.

    Thread-safe: the API takes slots on the event loop, the page in Gradio's worker threads.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._free = threading.BoundedSemaphore(limit)

    @contextmanager
    def held(self) -> Iterator[bool]:
        """True while holding a slot, False (holding nothing) when all are taken."""
        taken = self._free.acquire(blocking=False)
        try:
            yield taken
        finally:
            if taken:
                self._free.release()

    async def for_request(self) -> AsyncIterator[None]:
        """A FastAPI dependency: a slot until the response (a stream included) has been sent, or 503 at once."""
        with self.held() as taken:
            if not taken:
                raise HTTPException(503, BUSY, headers={"Retry-After": str(BUSY_RETRY_AFTER_S)})
            yield


def install_edge(app: FastAPI, settings: Settings, state: Stores, access: Access) -> None:
    """The edge around the whole app (call it after mounting the page): forwarded headers, Host, page rate limit,
    cross-site state changes (:mod:`bot.web.same_origin`)."""
    if not settings.allowed_hosts and host_name(settings.host) in ANY_INTERFACE:
        log.warning(
            "serving on every interface, but only loopback host names are allowed: set DOCBOT_ALLOWED_HOSTS to the "
            "names browsers use for this server"
        )
    limiter = RateLimiter(state.counters("page"), settings.rate_limit_per_minute)
    caller_of = page_caller(access)
    app.add_middleware(PageSessionOwner, caller_of=caller_of)
    app.add_middleware(SameOriginStateChanges)
    app.add_middleware(PageRateLimit, limiter=limiter, caller_of=caller_of)
    app.add_middleware(HostAllowList, hosts=allowed_hosts(settings))
    identity_headers = [settings.proxy_user_header, settings.proxy_groups_header]
    app.add_middleware(ForwardedHeaders, proxies=settings.trusted_proxies, identity_headers=identity_headers)
