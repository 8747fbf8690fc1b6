"""Issue 27, finding 6, against a real ``docbot serve`` on loopback: nobody can block everybody's uploads.

Before: the upload inbox reserved each upload's declared ``Content-Length`` before its body came, for anyone Gradio
let upload (a reader, the embed key), with no body timeout, and cached files never added stayed until a restart;
thirteen stalled uploads from a reader got every editor's upload a 413 that said how many bytes remained. A batch
with one name starting with a dot failed whole with a bare "Error" and left the other cached copies behind.
"""

from __future__ import annotations

import html
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from live import LiveServer, live_server
from page_events import add_files, page_client, upload, upload_event

from bot.documents.upload_inbox import NOT_RECEIVED
from bot.web.upload_route import NOT_ALLOWED

pytestmark = pytest.mark.server

BOSS, ED, MAL, RITA = ("boss", "boss-pw-3391"), ("ed", "ed-pw-5512"), ("mal", "mal-pw-7720"), ("rita", "rita-pw-6604")
EMBED_KEY = "embed-key-0c44d2"
QUOTA = 200_000
CACHE = 1_000_000
TIMEOUT_S = 4
TTL_S = 20
BOUNDARY = "stall-boundary"
STALLS = 13
NOTE = b"# Lantern Walk\n\nThe lantern walk of Orrin Quay starts at the lighthouse at nine in the evening.\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {
        "DOCBOT_USERS": ",".join([":".join(BOSS), ":".join(ED), ":".join(MAL), ":".join(RITA) + ":reader"]),
        "DOCBOT_API_KEYS": EMBED_KEY,
        "DOCBOT_UPLOAD_QUOTA_BYTES": str(QUOTA),
        "DOCBOT_UPLOAD_CACHE_BYTES": str(CACHE),
        "DOCBOT_UPLOAD_BODY_TIMEOUT_S": str(TIMEOUT_S),
        "DOCBOT_UPLOAD_CACHE_TTL_S": str(TTL_S),
        "DOCBOT_UPLOAD_SWEEP_INTERVAL_S": "1",
    }
    with live_server(tmp_path_factory.mktemp("upload-quota"), env=env, timeout_s=300) as live:
        yield live


def cached_files(server: LiveServer) -> list[Path]:
    return [p for p in (server.data_dir / "gradio").rglob("*") if p.is_file()]


def text_of(report: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", report))


def open_upload(server: LiveServer, client: httpx.Client, length: int, first: bytes) -> socket.socket:
    """An upload to Gradio's route with the page cookies of ``client`` that declares ``length`` bytes, sends
    ``first`` of them and then nothing more (the socket stays open)."""
    host = server.url.removeprefix("http://")
    cookies = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    head = (
        f"POST /gradio_api/upload HTTP/1.1\r\nHost: {host}\r\nOrigin: {server.url}\r\nCookie: {cookies}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {length}\r\n\r\n"
    )
    address, port = host.split(":")
    sock = socket.create_connection((address, int(port)), timeout=60)
    sock.sendall(head.encode() + first)
    return sock


def answer_of(sock: socket.socket, timeout_s: float) -> bytes:
    """Everything the server sends until it closes the connection (or ``timeout_s`` passes)."""
    sock.settimeout(timeout_s)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        pass
    return data


def test_a_reader_or_the_embed_key_cannot_write_to_the_upload_cache(server: LiveServer) -> None:
    with page_client(server.url, RITA) as rita:
        started = time.monotonic()
        sock = open_upload(server, rita, 150_000, b"")  # the body is never sent: refused on the headers
        answer = answer_of(sock, 30)
        sock.close()
        assert answer.startswith(b"HTTP/1.1 403"), answer[:200]
        assert NOT_ALLOWED.encode() in answer and time.monotonic() - started < 20
        refused = upload(rita, "notes.md", NOTE)
        assert refused.status_code == 403, refused.text
    embed = httpx.post(
        f"{server.url}/gradio_api/upload",
        files=[("files", ("notes.md", NOTE, "text/markdown"))],
        headers={"Authorization": f"Bearer {EMBED_KEY}"},
        timeout=60,
    )
    assert embed.status_code == 403, embed.text
    assert not cached_files(server)


def test_stalled_uploads_do_not_block_an_editor_and_are_dropped_after_the_body_timeout(server: LiveServer) -> None:
    first = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="x.md"\r\n\r\nxx'.encode()
    with page_client(server.url, MAL) as mal, page_client(server.url, ED) as ed:
        stalled = [open_upload(server, mal, QUOTA // 2, first) for _ in range(STALLS)]  # 1.3 MB declared, 1 MB cache
        try:
            started = time.monotonic()
            event = upload_event(ed)
            cached = upload(ed, "lantern-walk.md", NOTE)
            assert cached.status_code == 200, cached.text
            assert "Added: lantern-walk.md" in text_of(add_files(ed, event, cached.json()))
            answers = [answer_of(sock, TIMEOUT_S + 60) for sock in stalled]
            assert time.monotonic() - started < TIMEOUT_S + 60
        finally:
            for sock in stalled:
                sock.close()
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"sent nothing for 4 s" in answer
    assert not cached_files(server), "a stalled upload left its partial file behind"


def test_a_batch_with_a_dot_name_adds_every_file_and_leaves_no_cached_copy(server: LiveServer) -> None:
    with page_client(server.url, ED) as ed:
        event = upload_event(ed)
        files = [
            ("files", (".quay-hidden.md", NOTE.replace(b"Lantern", b"Hidden"), "text/markdown")),
            (
                "files",
                ("quay-ferry.md", b"# Quay Ferry\n\nThe Orrin Quay ferry runs every forty minutes.\n", "text/markdown"),
            ),
        ]
        cached = ed.post("/gradio_api/upload", files=files)
        assert cached.status_code == 200, cached.text
        report = text_of(add_files(ed, event, cached.json()))
    assert "quay-hidden.md" in report and "quay-ferry.md" in report and "error" not in report, report
    assert not cached_files(server)


def test_a_file_chosen_and_never_added_expires(server: LiveServer) -> None:
    with page_client(server.url, ED) as ed:
        event = upload_event(ed)
        cached = upload(ed, "forgotten.md", NOTE)
        assert cached.status_code == 200, cached.text
        deadline = time.monotonic() + TTL_S + 30
        while cached_files(server) and time.monotonic() < deadline:
            time.sleep(1)
        assert not cached_files(server), "a cached file outlived upload_cache_ttl_s"
        assert NOT_RECEIVED in text_of(add_files(ed, event, cached.json()))
