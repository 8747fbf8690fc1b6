"""A page session's hash belongs to the caller who first used it (issue 27, finding 7), and never reaches the
access log."""

from __future__ import annotations

import json
import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from bot.web.page_session_owner import PageSessionOwner, SessionHashes, redacted, session_of_body


async def echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse((await request.body()).decode() or "read")


def client_as(owner: PageSessionOwner, caller: str) -> TestClient:
    return TestClient(owner, headers={"x-caller": caller})


def test_a_session_hash_used_by_one_caller_is_refused_to_another() -> None:
    routes = [
        Route("/gradio_api/queue/join", echo, methods=["POST"]),
        Route("/gradio_api/queue/data", echo),
        Route("/gradio_api/heartbeat/{session}", echo),
    ]
    owner = PageSessionOwner(Starlette(routes=routes), lambda scope: dict(scope["headers"])[b"x-caller"].decode())
    ann, rita = client_as(owner, "user:ann"), client_as(owner, "user:rita")
    body = {"fn_index": 3, "session_hash": "s-ann", "data": ["question"]}

    joined = ann.post("/gradio_api/queue/join", json=body)
    assert joined.status_code == 200 and json.loads(joined.text) == body  # the body reaches Gradio unchanged
    assert rita.post("/gradio_api/queue/join", json=body).status_code == 403
    assert rita.get("/gradio_api/queue/data", params={"session_hash": "s-ann"}).status_code == 403
    assert rita.get("/gradio_api/heartbeat/s-ann").status_code == 403
    assert ann.get("/gradio_api/queue/data", params={"session_hash": "s-ann"}).status_code == 200
    assert rita.post("/gradio_api/queue/join", json={**body, "session_hash": "s-rita"}).status_code == 200


def test_session_hashes_are_found_and_kept_out_of_the_log() -> None:
    assert session_of_body(b'{"session_hash": "abc", "data": []}') == "abc"
    assert session_of_body(b"not json") is None and session_of_body(b"[1]") is None
    path = "/gradio_api/queue/data?session_hash=abc123&x=1"
    assert redacted(path) == "/gradio_api/queue/data?session_hash=…&x=1"
    assert redacted("/gradio_api/heartbeat/abc123") == "/gradio_api/heartbeat/…"
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s"', ("1.2.3.4", "GET", path), None)
    assert SessionHashes().filter(record) and "abc123" not in record.getMessage()
