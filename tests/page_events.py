"""Driving the chat page's events over HTTP as a browser (or an attacker) does: Gradio's login, upload and queue."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from bot.access.policy import ANONYMOUS
from bot.documents.upload_inbox import UploadInbox, session_key

FILE_META = {"_type": "gradio.FileData"}
#: The session of a page event called in-process (no login cookie), as the upload route records it.
NO_LOGIN = session_key({})


def received(inbox: UploadInbox, name: str, content: bytes, session: str = NO_LOGIN) -> str:
    """A file in the upload cache as Gradio's upload route leaves it, recorded for ``session`` as the route's
    middleware records it: for tests of the page's handler without an HTTP server in front."""
    path = inbox.folder / uuid.uuid4().hex / name
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    inbox.record([str(path)], session, ANONYMOUS)
    return str(path)


@contextmanager
def page_client(url: str, login: tuple[str, str] | None = None) -> Iterator[httpx.Client]:
    """An HTTP client for the page, signed in through Gradio's own login form when ``login`` is given."""
    with httpx.Client(base_url=url, timeout=120) as client:
        if login is not None:
            response = client.post("/login", data={"username": login[0], "password": login[1]})
            assert response.status_code == 200, response.text
            assert any(name.startswith("access-token") for name in client.cookies), "the login set no session cookie"
        yield client


def upload_event(client: httpx.Client) -> int:
    """The fn_index of the Documents tab's "Add to the index" event (its only input is the upload box)."""
    config = client.get("/config").json()
    box = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "docbot-upload")
    return int(next(d["id"] for d in config["dependencies"] if d["inputs"] == [box]))


def upload(client: httpx.Client, name: str, content: bytes) -> httpx.Response:
    """POST one file to Gradio's upload route, as the page's upload box does."""
    return client.post("/gradio_api/upload", files=[("files", (name, content, "application/octet-stream"))])


def file_data(path: str) -> dict[str, Any]:
    return {"path": path, "orig_name": path.rsplit("/", 1)[-1], "meta": FILE_META}


def run_event(
    client: httpx.Client,
    fn_index: int,
    data: list[Any],
    session: str | None = None,
    event_data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Join the queue with ``data`` and read the event's stream to its end: the ``process_completed`` message.

    ``session``: the page session to run in (its ``gr.State`` values carry over from earlier events); default a new
    one. ``event_data``: what the browser sends about the event (a like's index and value, say)."""
    session = session or uuid.uuid4().hex
    joined = client.post(
        "/gradio_api/queue/join",
        json={"fn_index": fn_index, "session_hash": session, "data": data, "event_data": event_data},
    )
    assert joined.status_code == 200, joined.text
    with client.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as stream:
        for line in stream.iter_lines():
            if not line.startswith("data:"):
                continue
            message = json.loads(line[5:])
            if message.get("msg") == "process_completed":
                return dict(message)
    raise AssertionError("the event's stream ended without process_completed")


def add_files(client: httpx.Client, fn_index: int, paths: list[str]) -> str:
    """Run "Add to the index" on these cached paths: the upload report's text, or Gradio's error payload."""
    message = run_event(client, fn_index, [[file_data(p) for p in paths]])
    if not message.get("success"):
        return f"error: {message.get('output', {}).get('error')}"
    return str(message["output"]["data"][1])
