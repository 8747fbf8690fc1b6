"""Two ``docbot serve`` replicas sharing one Chroma server, one data directory and one PostgreSQL (server tier).

A conversation started on A continues on B with its history; the rate limit counts a caller's requests to both;
A killed (SIGKILL) in the middle of streaming an answer loses no stored turn, and B goes on answering, continuing
the same conversation. The model behind the answers is a fake OpenAI-compatible endpoint (it is not the subject),
which streams slowly when asked to, so that A can be killed mid-stream.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from live import ROOT, child_env, chroma_server, free_port, stop_process, wait_http
from sqlalchemy import create_engine, text

from bot.state.conversations import ConversationStore
from bot.state.database import Database

pytestmark = [pytest.mark.server, pytest.mark.slow]

TESTER_KEY, COUNTED_KEY = "tester-key-3c81", "counted-key-99d2"
TESTER, COUNTED = ({"Authorization": f"Bearer {key}"} for key in (TESTER_KEY, COUNTED_KEY))
OWNER = "key:tester"  # what proved the caller (issue 27, finding 3)
LIMIT = 16
QUESTION = "What did coalition forces resume because of the growing ISIS force?"
FOLLOW_UP = "Which warplanes carried out attacks against them last month?"
#: A question with this word makes the fake model stop for a long while after its first sentence.
SLOWLY = "slowly"
CLAIM = "Coalition forces resumed air strikes. [1] "


class FakeModel(BaseHTTPRequestHandler):
    """``POST /v1/chat/completions``, streamed: one cited claim; with SLOWLY in the prompt, a pause after it."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()  # HTTP/1.0: the body ends when the connection closes
        try:
            self._send(CLAIM + "Then")
            if SLOWLY in body:
                time.sleep(30)
            self._send(" the coalition kept on. [1]")
            self.wfile.write(b"data: [DONE]\n\n")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _send(self, content: str) -> None:
        choice = {"index": 0, "delta": {"content": content}, "finish_reason": None}
        chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [choice]}
        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.flush()


@dataclass
class Replica:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass
class Cluster:
    a: Replica
    b: Replica
    database_url: str


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, postgres: Any) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("replicas")
    name = f"r_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    database_url = postgres.url.rsplit("/", 1)[0] + f"/{name}"
    model = ThreadingHTTPServer(("127.0.0.1", 0), FakeModel)
    model.daemon_threads = True
    threading.Thread(target=model.serve_forever, daemon=True).start()
    with chroma_server(workdir) as chroma:
        env = {
            **child_env(),
            "DOCBOT_DATA_DIR": str(workdir / "data"),
            "DOCBOT_CHROMA_URL": chroma.url,
            "DOCBOT_DATABASE_URL": database_url,
            "DOCBOT_API_KEYS": f"tester:{TESTER_KEY}:reader,counted:{COUNTED_KEY}:reader",
            "DOCBOT_RATE_LIMIT_PER_MINUTE": str(LIMIT),
            "DOCBOT_GENERATOR": "openai",
            "DOCBOT_OPENAI_BASE_URL": f"http://127.0.0.1:{model.server_port}/v1",
        }
        docbot = str(Path(sys.executable).with_name("docbot"))
        subprocess.run([docbot, "index", str(ROOT / "seeds")], cwd=workdir, env=env, check=True, capture_output=True)
        replicas = [_start(docbot, workdir, env, label) for label in ("a", "b")]
        try:
            for replica in replicas:
                wait_http(f"{replica.url}/api/health", 600, replica.process)
            yield Cluster(replicas[0], replicas[1], database_url)
        finally:
            for replica in replicas:
                stop_process(replica.process)
            model.shutdown()


def _start(docbot: str, workdir: Path, env: dict[str, str], label: str) -> Replica:
    port, log = free_port(), workdir / f"replica-{label}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [docbot, "serve", "--port", str(port)], cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    return Replica(f"http://127.0.0.1:{port}", process, log)


def _stored(cluster: Cluster, conversation: str) -> list[str]:
    database = Database.open(cluster.database_url, Path("."))
    try:
        return [answer.question for answer in ConversationStore(database).answers(conversation, OWNER)]
    finally:
        database.close()


def _ask(replica: Replica, question: str, conversation: str | None = None) -> dict[str, Any]:
    body = {"question": question} | ({"conversation_id": conversation} if conversation else {"keep": True})
    response = httpx.post(f"{replica.url}/api/ask", json=body, headers=TESTER, timeout=120)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_the_rate_limit_counts_requests_to_both_replicas(cluster: Cluster) -> None:
    statuses = [
        httpx.get(f"{replica.url}/api/documents", headers=COUNTED, timeout=60).status_code
        for _ in range(LIMIT // 2)
        for replica in (cluster.a, cluster.b)
    ]
    assert statuses == [200] * LIMIT
    for replica in (cluster.a, cluster.b):
        over = httpx.get(f"{replica.url}/api/documents", headers=COUNTED, timeout=60)
        assert over.status_code == 429 and int(over.headers["Retry-After"]) >= 1


def test_a_conversation_started_on_a_continues_on_b_and_survives_a_killed_mid_stream(cluster: Cluster) -> None:
    first = _ask(cluster.a, QUESTION)
    conversation = first["conversation_id"]
    assert "air strikes" in first["answer"]
    second = _ask(cluster.b, FOLLOW_UP, conversation)  # on the other replica, with the history stored by A
    assert second["conversation_id"] == conversation
    assert second["query"] != FOLLOW_UP  # rewritten from the stored history (A's turn)
    assert _stored(cluster, conversation) == [QUESTION, FOLLOW_UP]

    body = {"question": f"Tell me {SLOWLY}: what did coalition forces resume?", "conversation_id": conversation}
    seen: list[str] = []
    with httpx.stream("POST", f"{cluster.a.url}/api/ask/stream", json=body, headers=TESTER, timeout=120) as stream:
        lines = stream.iter_lines()
        for line in lines:
            seen.append(line)
            if line.startswith("data:") and "air strikes" in line:
                break  # A is now in the middle of the answer, waiting for the model
        cluster.a.process.send_signal(signal.SIGKILL)
        cluster.a.process.wait(timeout=30)
        with pytest.raises(httpx.HTTPError):  # the stream breaks off; no answer event ever comes
            for line in lines:
                seen.append(line)
    assert "event: text" in seen and "event: answer" not in seen
    assert _stored(cluster, conversation) == [QUESTION, FOLLOW_UP]  # every completed turn is still there

    third = _ask(cluster.b, "And what did the warplanes attack?", conversation)  # B carries on with it
    assert third["conversation_id"] == conversation
    assert _stored(cluster, conversation) == [QUESTION, FOLLOW_UP, "And what did the warplanes attack?"]
    health = httpx.get(f"{cluster.b.url}/api/health", timeout=10)
    assert health.status_code == 200
