"""The OpenAI-compatible endpoint fails: down, slow past the timeout, or talking garbage.

A stdlib HTTP server in a thread plays the endpoint; docbot runs with ``generator=openai`` against it, over the
real index of the seed document. Every turn must still be answered, extractively, with a notice saying why.
An endpoint that is not there at all: test_llm_real.py::test_openai_generator_with_the_server_down_answers_extractively
(and here, for a follow-up, whose condensing fails too).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import HASHING_COVERAGE, SEEDS
from live import free_port

from app import build
from bot.answer.chat import Bot
from bot.answer.citations import Answer
from bot.answer.llm import build_backend
from bot.config import Settings
from index.embeddings import Embedder
from index.hashing import HashingEmbedder

QUESTION = "What did coalition forces resume because of the growing ISIS force?"
EXPECTED = "resume air strikes"
TIMEOUT_S = 1.0


def _chunk(content: str) -> bytes:
    body = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    choice = {"index": 0, "delta": {"content": content}, "finish_reason": None}
    return f"data: {json.dumps({**body, 'choices': [choice]})}\n\n".encode()


class Endpoint(BaseHTTPRequestHandler):
    """``POST /v1/chat/completions`` misbehaving the way ``self.server.mode`` says."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        mode: str = self.server.mode  # type: ignore[attr-defined]
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # docbot gave up waiting, as it should
            BEHAVIOURS[mode](self)

    def reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()


def _silent_past_the_timeout(h: Endpoint) -> None:
    time.sleep(3 * TIMEOUT_S)
    h.reply(200, "text/event-stream", _chunk("Coalition forces resumed air strikes. [1]") + b"data: [DONE]\n\n")


def _trickle_past_the_timeout(h: Endpoint) -> None:
    """A token every 0.3 s (each read within the timeout), a whole reply taking 12 s."""
    h.start_stream()
    for _ in range(40):
        h.wfile.write(_chunk("air "))
        h.wfile.flush()
        time.sleep(0.3)
    h.wfile.write(b"data: [DONE]\n\n")


def _broken_stream(h: Endpoint) -> None:
    h.start_stream()
    h.wfile.write(_chunk("Coalition forces resumed") + b"data: {not json\n\n")


def _cut_stream(h: Endpoint) -> None:
    h.start_stream()
    h.wfile.write(_chunk("Coalition forces"))
    h.wfile.flush()
    h.connection.shutdown(2)


BEHAVIOURS: dict[str, Callable[[Endpoint], None]] = {
    "silent past the timeout": _silent_past_the_timeout,
    "trickling past the timeout": _trickle_past_the_timeout,
    "garbage JSON": lambda h: h.reply(200, "application/json", b'{"id": 3, "choices": "nope"'),
    "an HTML error page": lambda h: h.reply(200, "text/html", b"<html><body><h1>502 Bad Gateway</h1></body></html>"),
    "HTTP 500": lambda h: h.reply(500, "application/json", b'{"error": {"message": "out of memory"}}'),
    "a broken event stream": _broken_stream,
    "a stream cut mid-reply": _cut_stream,
    "an empty reply": lambda h: h.reply(200, "text/event-stream", b"data: [DONE]\n\n"),
    "no text, only markers": lambda h: h.reply(200, "text/event-stream", _chunk("[1] [2]") + b"data: [DONE]\n\n"),
}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def _indexed_seeds(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    folder = tmp_path_factory.mktemp("llm-faults") / "data"
    build(Settings(data_dir=folder), embedder=embedder).indexer.run([SEEDS])
    return folder


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, hashing_embedder: Embedder) -> Path:
    return _indexed_seeds(tmp_path_factory, hashing_embedder)


@pytest.fixture(scope="module")
def model_data_dir(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    return _indexed_seeds(tmp_path_factory, embedder)


def _bot(data_dir: Path, embedder: Embedder, base_url: str) -> Bot:
    coverage = HASHING_COVERAGE if isinstance(embedder, HashingEmbedder) else {}
    settings = Settings(
        data_dir=data_dir, generator="openai", openai_base_url=base_url, llm_timeout_s=TIMEOUT_S, **coverage
    )
    return Bot(settings, build(settings, embedder=embedder).retriever, build_backend(settings))


def _assert_extractive_with_notice(answer: Answer, seconds: float) -> None:
    assert answer.generator == "extractive (fallback from openai:docbot-local)"
    assert answer.notice and answer.notice.startswith("The openai:docbot-local model ")
    assert answer.notice.endswith("answered from the passages instead.")
    assert EXPECTED in answer.text and answer.text.endswith("[1]") and answer.citations
    assert seconds < 4 * TIMEOUT_S + 10, f"the turn took {seconds:.1f} s"


@pytest.mark.parametrize("mode", list(BEHAVIOURS))
def test_endpoint_misbehaving(
    mode: str, endpoint: ThreadingHTTPServer, data_dir: Path, hashing_embedder: Embedder
) -> None:
    endpoint.mode = mode  # type: ignore[attr-defined]
    bot = _bot(data_dir, hashing_embedder, f"http://127.0.0.1:{endpoint.server_port}/v1")
    started = time.monotonic()
    pieces = list(bot.stream(QUESTION))
    seconds = time.monotonic() - started
    answer = pieces[-1]
    assert isinstance(answer, Answer)
    _assert_extractive_with_notice(answer, seconds)
    assert "".join(p for p in pieces if isinstance(p, str)) == answer.text  # the stream says what the answer says
    if "timeout" in mode:
        assert f"{TIMEOUT_S:g} s" in (answer.notice or "") or "timed out" in (answer.notice or "")


# The follow-up is condensed and found by meaning ("because of it"): the real model's job.
def test_a_follow_up_with_the_endpoint_down_still_condenses_and_answers(
    model_data_dir: Path, embedder: Embedder
) -> None:
    bot = _bot(model_data_dir, embedder, f"http://127.0.0.1:{free_port()}/v1")
    first = bot.ask("What group is the article about?")
    follow_up = bot.ask("What did coalition forces resume because of it?", [(first.question, first.text)])
    assert follow_up.notice and EXPECTED in follow_up.text
