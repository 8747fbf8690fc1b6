"""The network edge against the real ``docbot serve`` on 127.0.0.1 (issue #13, findings 7 and 8).

Two servers: ``direct`` (nobody in front of it, a small rate limit) and ``proxied`` (127.0.0.1 configured as the
trusted proxy, two answer slots, answers made slow by a fake OpenAI-compatible endpoint that sleeps). Each caller
of ``proxied`` claims its own address through the trusted proxy headers, so the rate limit never gets in the way
of filling the answer slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_network
from typing import Any

import httpx
import pytest
from live import LiveServer, live_server
from test_ui_browser import bot_messages

from bot.ops.health import StoreProbe
from bot.web.edge import ForwardedHeaders, HostAllowList, address_of, forwarded_elements, host_name
from bot.web.page.chat import BUSY_ANSWER
from index.store import StoreUnavailableError

pytestmark = pytest.mark.server

LIMIT = 5
SLOW_S = 6.0
SLOTS = 2
QUESTION = "What did coalition forces resume because of the growing ISIS force?"
CALLERS = 45  # more than the 40 threads Starlette runs blocking work on


class SlowEndpoint(BaseHTTPRequestHandler):
    """``POST /v1/chat/completions``: counts the request, sleeps ``SLOW_S``, then streams a short cited answer."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        with self.server.lock:  # type: ignore[attr-defined]
            self.server.received += 1  # type: ignore[attr-defined]
        time.sleep(SLOW_S)
        choice = {"index": 0, "delta": {"content": "Coalition forces resumed air strikes. [1]"}, "finish_reason": None}
        chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [choice]}
        body = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the caller gave up
            self.wfile.write(body)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowEndpoint)
    server.daemon_threads = True
    server.lock = threading.Lock()  # type: ignore[attr-defined]
    server.received = 0  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def direct(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("direct"), env={"DOCBOT_RATE_LIMIT_PER_MINUTE": str(LIMIT)}) as live:
        yield live


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory, endpoint: ThreadingHTTPServer) -> Iterator[LiveServer]:
    env = {
        "DOCBOT_TRUSTED_PROXIES": "127.0.0.1",
        "DOCBOT_RATE_LIMIT_PER_MINUTE": str(LIMIT),
        "DOCBOT_MAX_CONCURRENT_ANSWERS": str(SLOTS),
        "DOCBOT_GENERATOR": "openai",
        "DOCBOT_OPENAI_BASE_URL": f"http://127.0.0.1:{endpoint.server_port}/v1",
    }
    with live_server(tmp_path_factory.mktemp("proxied"), env=env) as live:
        yield live


# --- finding 7: forwarded headers ------------------------------------------------------------------------------


def test_spoofed_forwarded_headers_do_not_escape_the_rate_limit(direct: LiveServer) -> None:
    spoofs = [
        {"X-Forwarded-For": f"203.0.113.{n}"}
        if n % 3 == 0
        else {"Forwarded": f"for=203.0.113.{n}"}
        if n % 3 == 1
        else {"X-Real-IP": f"203.0.113.{n}"}
        for n in range(LIMIT + 1)
    ]
    statuses = [httpx.get(f"{direct.url}/api/documents", headers=spoof).status_code for spoof in spoofs]
    assert statuses == [200] * LIMIT + [429], statuses
    refused = httpx.get(f"{direct.url}/api/documents", headers={"X-Forwarded-For": "198.51.100.99"})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1


def test_a_trusted_proxy_names_the_caller_by_the_rightmost_hop_it_did_not_write(proxied: LiveServer) -> None:
    def documents(headers: dict[str, str]) -> int:
        return httpx.get(f"{proxied.url}/api/documents", headers=headers).status_code

    caller = {"Forwarded": 'for="198.51.100.7:4711";proto=https'}
    assert [documents(caller) for _ in range(LIMIT)] == [200] * LIMIT
    assert documents(caller) == 429
    # the same caller behind a second trusted hop, and a caller prepending a made-up address, are still 198.51.100.7
    assert documents({"X-Forwarded-For": "198.51.100.7, 127.0.0.1"}) == 429
    assert documents({"X-Forwarded-For": "10.9.9.9, 198.51.100.7"}) == 429
    assert documents({"X-Forwarded-For": "198.51.100.8"}) == 200  # another caller, its own budget
    assert documents({"X-Real-IP": "2001:db8::8"}) == 200


# --- finding 8: Host names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/", None),
        ("POST", "/api/ask", {"question": QUESTION}),
        ("GET", "/api/health", None),
        ("GET", "/gradio_api/info", None),
        ("GET", "/config", None),
        ("POST", "/gradio_api/queue/join", {"fn_index": 0, "session_hash": "s", "data": []}),
        ("POST", "/gradio_api/upload", None),
    ],
)
def test_an_unknown_host_name_gets_400_everywhere(direct: LiveServer, method: str, path: str, body: object) -> None:
    for host in ("evil.example", "evil.example:80", "127.0.0.1.evil.example"):
        response = httpx.request(method, f"{direct.url}{path}", json=body, headers={"Host": host})
        assert response.status_code == 400, (host, response.text)
        assert "DOCBOT_ALLOWED_HOSTS" in response.json()["detail"]


def test_loopback_host_names_are_served(direct: LiveServer) -> None:
    port = direct.url.rsplit(":", 1)[1]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "LOCALHOST"):
        assert httpx.get(f"{direct.url}/", headers={"Host": host}).status_code == 200, host


# --- finding 7: the page's events --------------------------------------------------------------------------------


def _answer_event(url: str) -> int:
    config = httpx.get(f"{url}/config").json()
    chat = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "docbot-question")
    return next(
        d.get("id", n)
        for n, d in enumerate(config["dependencies"])
        if any(t[0] == chat and t[1] == "submit" for t in d["targets"])
    )


def test_page_events_are_rate_limited_like_the_api(direct: LiveServer) -> None:
    """The page's ask event, called in a loop (an empty question: nothing to compute), then the upload route."""
    fn_index = _answer_event(direct.url)
    statuses = []
    for n in range(LIMIT + 1):
        join = {"fn_index": fn_index, "session_hash": f"loop{n}", "data": ["", None], "event_data": None}
        response = httpx.post(
            f"{direct.url}/gradio_api/queue/join", json=join, headers={"X-Forwarded-For": f"203.0.113.{n}"}
        )
        statuses.append(response.status_code)
    assert statuses == [200] * LIMIT + [429], statuses
    assert int(response.headers["Retry-After"]) >= 1 and "page events a minute" in response.json()["detail"]
    upload = httpx.post(f"{direct.url}/gradio_api/upload", files={"files": ("a.txt", b"text")})
    assert upload.status_code == 429


# --- finding 7 and 8: the cap on concurrent answers, and a health check that never waits -------------------------


def _ask(http: httpx.Client, n: int, path: str = "/api/ask", body: dict[str, Any] | None = None) -> httpx.Response:
    headers = {"X-Forwarded-For": f"192.0.2.{n}"}  # through the trusted proxy: each caller its own rate limit
    return http.post(path, json=body or {"question": QUESTION}, headers=headers)


@pytest.fixture
def http(proxied: LiveServer) -> Iterator[httpx.Client]:
    """One client for every caller (a client per request costs the test process more than the server)."""
    limits = httpx.Limits(max_connections=CALLERS + 5)
    with httpx.Client(base_url=proxied.url, timeout=120, limits=limits) as client:
        yield client


def _wait_for_requests(endpoint: ThreadingHTTPServer, count: int) -> None:
    deadline = time.monotonic() + 60
    while endpoint.received < count:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the slow answers never reached the model endpoint"
        time.sleep(0.05)


def test_answers_beyond_the_cap_get_503_at_once_and_health_stays_quick(
    http: httpx.Client, endpoint: ThreadingHTTPServer
) -> None:
    before = endpoint.received  # type: ignore[attr-defined]
    with ThreadPoolExecutor(CALLERS) as pool:
        slow = [pool.submit(_ask, http, n) for n in range(SLOTS)]
        _wait_for_requests(endpoint, before + SLOTS)  # both slots are now waiting for the model
        crowd = [pool.submit(_ask, http, 100 + n) for n in range(CALLERS - SLOTS)]
        # refused at once; without the cap they would hold every worker thread waiting for the model
        wait(crowd, timeout=SLOW_S / 2)
        started = time.monotonic()
        health = http.get("/api/health")
        health_s = time.monotonic() - started
        stream = _ask(http, 200, "/api/ask/stream")
        chat = {"model": "docbot", "messages": [{"role": "user", "content": QUESTION}]}
        openai_style = _ask(http, 201, "/v1/chat/completions", chat)
        refused = [future.result() for future in crowd]
        answered = [future.result() for future in slow]
    assert health.status_code == 200 and health_s < 1.0, (health.text, health_s)
    assert [r.status_code for r in answered] == [200] * SLOTS, [r.text for r in answered]
    assert all("air strikes" in r.json()["answer"] for r in answered)
    for response in [*refused, stream]:
        assert response.status_code == 503, response.text
        assert int(response.headers["Retry-After"]) >= 1 and "busy" in response.json()["detail"]
    assert openai_style.status_code == 503 and openai_style.json()["error"]["type"] == "service_unavailable"
    assert int(openai_style.headers["Retry-After"]) >= 1
    # the slots are given back: the next question is answered
    assert _ask(http, 202).status_code == 200


@pytest.mark.browser
def test_the_page_says_it_is_busy_when_every_slot_is_taken(
    proxied: LiveServer, http: httpx.Client, endpoint: ThreadingHTTPServer, chromium: Any
) -> None:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(proxied.url)
    page.wait_for_selector(".docbot-status")
    before = endpoint.received  # type: ignore[attr-defined]
    with ThreadPoolExecutor(SLOTS) as pool:
        slow = [pool.submit(_ask, http, 50 + n) for n in range(SLOTS)]
        _wait_for_requests(endpoint, before + SLOTS)
        page.locator("#docbot-question textarea").fill(QUESTION)
        page.locator("#docbot-question textarea").press("Enter")
        busy = bot_messages(page).last
        busy.wait_for()
        page.locator('#docbot-chat [data-testid="bot"]', has_text="busy").wait_for()
        assert BUSY_ANSWER in busy.inner_text()
        assert [future.result().status_code for future in slow] == [200] * SLOTS
    context.close()


# --- the edge's parsing, without a server ------------------------------------------------------------------------


def test_forwarded_hops_and_host_names_parse() -> None:
    assert str(address_of('"[2001:db8::1]:4711"')) == "2001:db8::1"
    assert str(address_of("192.0.2.1:80")) == "192.0.2.1"
    assert str(address_of("::ffff:192.0.2.1")) == "192.0.2.1"
    assert address_of("unknown") is None and address_of("_hidden") is None
    elements = forwarded_elements(['for=192.0.2.60;proto=https;by=203.0.113.43, For="[2001:db8::17]"'])
    assert elements == [{"for": "192.0.2.60", "proto": "https", "by": "203.0.113.43"}, {"for": "[2001:db8::17]"}]
    assert [host_name(h) for h in ("Example.COM.:8080", "[::1]:7860", "::1", "")] == ["example.com", "::1", "::1", ""]


async def _noop(scope: Any, receive: Any, send: Any) -> None:
    pass


def test_the_resolved_caller_and_the_allow_list() -> None:
    edge = ForwardedHeaders(_noop, [ip_network("10.0.0.0/8")])

    def resolved(peer: str, *headers: tuple[bytes, bytes]) -> dict[str, Any]:
        scope = {"type": "http", "client": (peer, 5000), "scheme": "http", "headers": [(b"host", b"a"), *headers]}
        return edge.resolved(scope)

    outsider = resolved("192.0.2.9", (b"x-forwarded-for", b"1.1.1.1"), (b"x-forwarded-host", b"evil.example"))
    assert outsider["client"] == ("192.0.2.9", 5000) and outsider["headers"] == [(b"host", b"a")]
    chain = (b"x-forwarded-for", b"6.6.6.6, 192.0.2.1, 10.0.0.2")
    proxied = resolved("10.0.0.1", chain, (b"x-forwarded-proto", b"https"))
    assert proxied["client"] == ("192.0.2.1", 0) and proxied["scheme"] == "https"
    assert resolved("10.0.0.1", (b"x-forwarded-for", b"garbage, 192.0.2.1, nonsense"))["client"][0] == "10.0.0.1"
    allow = HostAllowList(_noop, ["127.0.0.1", "*.wiki.example", "Docs.Example"])
    assert [allow.allows(h) for h in ("docs.example:443", "a.wiki.example", "wiki.example", None, "x.example")] == [
        True,
        True,
        False,
        False,
        False,
    ]
    assert HostAllowList(_noop, ["*"]).allows("anything.example")


def run_apart(coroutine: Coroutine[Any, Any, int]) -> int:
    """Run a coroutine to its end on a thread of its own (an earlier test may have left a loop running here)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_the_store_probe_answers_from_its_last_check_while_the_store_is_slow() -> None:
    now = [0.0]
    release = threading.Event()
    calls: list[str] = []

    def count() -> int:
        calls.append("count")
        if len(calls) == 2:
            release.wait(10)  # the second check hangs until released
        if len(calls) == 3:
            raise StoreUnavailableError("the store at X is unreachable")
        return 7 * len(calls)

    probe = StoreProbe(count, ttl_s=1.0, timeout_s=0.05, clock=lambda: now[0])
    assert run_apart(probe.chunks()) == 7
    assert run_apart(probe.chunks()) == 7 and calls == ["count"]  # within the TTL: not asked again
    now[0] = 5.0
    assert run_apart(probe.chunks()) == 7  # the store hangs: the last count, at once
    assert run_apart(probe.chunks()) == 7 and len(calls) == 2  # the hanging check is joined, not repeated
    release.set()
    probe.timeout_s = 10  # no race with the released thread
    assert run_apart(probe.chunks()) == 14
    now[0] = 10.0
    with pytest.raises(StoreUnavailableError):
        run_apart(probe.chunks())


def test_page_events_get_a_503_not_a_crash_when_the_state_database_is_down(tmp_path: Any) -> None:
    """The page's rate limit counts in the state database; when that database goes down under a running server a
    page event is refused with a one-line 503 and Retry-After (the API answers the same), never a server error."""
    from live import postgres_server
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from bot.access.rate_limits import RateLimiter
    from bot.state.counters import WindowCounters
    from bot.state.database import Database
    from bot.web.edge import PageRateLimit

    inner = Starlette(routes=[Route("/gradio_api/queue/join", lambda _: PlainTextResponse("joined"), methods=["POST"])])
    with postgres_server() as server:
        database = Database.open(server.url, tmp_path)
        limiter = RateLimiter(WindowCounters(database, "page", 60.0), 10)
        client = TestClient(PageRateLimit(inner, limiter=limiter, caller_of=lambda _: "ip:testclient"))
        assert client.post("/gradio_api/queue/join").text == "joined"
        server.stop()
        response = client.post("/gradio_api/queue/join")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert "state database is unavailable" in response.json()["detail"]
