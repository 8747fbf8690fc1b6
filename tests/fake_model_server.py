"""A local stand-in for the model servers docbot can call (tests only): a real HTTP server on 127.0.0.1 in a thread.

- ``POST /v1/embeddings`` as OpenAI, Ollama, vLLM and Text Embeddings Inference answer it, the vectors made by the
  hashing embedder (so a question still lands nearest the passage sharing its words);
- ``POST /rerank`` as Text Embeddings Inference answers it (``[{"index", "score"}]``) and ``POST /v1/rerank`` as
  Cohere-compatible servers do (``{"results": [{"index", "relevance_score"}]}``), scoring a text by the share of
  the question's words it holds.

``server.delay_s`` holds every reply back, ``server.fail`` answers 500; ``server.requests`` keeps every body
(``server.authorizations`` each Authorization header).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from index.hashing import HashingEmbedder

_WORD = re.compile(r"\w+")


def overlap(query: str, text: str) -> float:
    """The share of the query's words the text holds."""
    wanted = set(_WORD.findall(query.lower()))
    return len(wanted & set(_WORD.findall(text.lower()))) / max(1, len(wanted))


@dataclass
class FakeModelServer:
    url: str  # http://127.0.0.1:PORT
    dimension: int = 64
    delay_s: float = 0.0
    fail: bool = False
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)  # each request's Authorization header

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [body for seen, body in self.requests if seen == path]

    def reply(self, path: str, body: dict[str, Any]) -> Any:
        if path == "/v1/embeddings":
            texts = body["input"]
            vectors = HashingEmbedder(self.dimension).encode(texts)
            # Reversed, and scaled off unit length: the client must sort by index and normalise.
            return {
                "object": "list",
                "model": body.get("model"),
                "data": [
                    {"object": "embedding", "index": i, "embedding": (3.0 * vectors[i]).tolist()}
                    for i in reversed(range(len(texts)))
                ],
            }
        if path == "/rerank":
            scores = [overlap(body["query"], text) for text in body["texts"]]
            return sorted(({"index": i, "score": s} for i, s in enumerate(scores)), key=lambda r: -r["score"])
        if path == "/v1/rerank":
            scores = [overlap(body["query"], text) for text in body["documents"]]
            ranked = sorted(
                ({"index": i, "relevance_score": s} for i, s in enumerate(scores)), key=lambda r: -r["relevance_score"]
            )
            return {"id": "fake", "results": ranked}
        return None


@contextmanager
def fake_model_server(dimension: int = 64) -> Iterator[FakeModelServer]:
    """A fake model server on a free loopback port, stopped on exit."""
    state: dict[str, FakeModelServer] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            server = state["server"]
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            server.requests.append((self.path, body))
            server.authorizations.append(self.headers.get("Authorization"))
            if server.delay_s:
                time.sleep(server.delay_s)
            reply = None if server.fail else server.reply(self.path, body)
            data = json.dumps(reply if reply is not None else {"error": "no"}).encode()
            try:
                self.send_response(200 if reply is not None else (500 if server.fail else 404))
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state["server"] = FakeModelServer(f"http://127.0.0.1:{httpd.server_address[1]}", dimension)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["server"]
    finally:
        httpd.shutdown()
        httpd.server_close()
