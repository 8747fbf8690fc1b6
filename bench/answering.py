"""End-to-end answering: ``Bot.ask`` latency in-process, and ``/api/ask`` requests/s with concurrent clients.

Both use the default (extractive) generator over an index built by :mod:`bench.retrieval`. The API is the
real app (``python app.py``) in its own process on a free loopback port; the load is bounded in
requests, and the server is stopped when done.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from app import build
from bench.machine import load_average, process_memory_kib
from bench.retrieval import WARM_UP, Latency
from bot.answer.chat import Bot
from bot.config import Settings
from index.filters import Filter
from index.protocols import Embedder, Retriever, Store
from index.types import Retrieval

ROOT = Path(__file__).resolve().parent.parent
SERVER_START_S = 600.0  # a busy 2-core machine has taken over 180 s to load the model


@dataclass
class AnswerRun:
    chunks: int
    generator: str
    questions: int
    ask: Latency  # Bot.ask, in-process
    refused: int  # answers that were "the documents do not cover this"
    #: Bot.ask as before sentence vectors were stored: the question embedded again and every passage sentence
    #: embedded at question time (the same questions, in turn with ``ask``).
    ask_embedding_sentences: Latency | None = None
    speed_up: float | None = None  # ask_embedding_sentences p50 / ask p50


@dataclass
class EmbeddingSentences:
    """A retriever whose results carry neither the query vector nor stored sentence counts: the answerer then embeds
    the question and every passage sentence itself, as it did before sentence vectors were stored at index time."""

    inner: Retriever

    @property
    def embedder(self) -> Embedder:
        return self.inner.embedder

    @property
    def store(self) -> Store:
        return self.inner.store

    def search(
        self, query: str, k: int | None = None, *, lexical: bool = True, where: Filter | None = None
    ) -> Retrieval:
        found = self.inner.search(query, k, lexical=lexical, where=where)
        passages = [dataclasses.replace(p, sentences=0) for p in found.passages]
        return dataclasses.replace(found, passages=passages, query_vector=None)

    def refresh(self) -> None:
        self.inner.refresh()


@dataclass
class ApiRun:
    chunks: int
    clients: int
    requests: int
    seconds: float
    requests_per_s: float
    latency: Latency
    errors: int
    server_peak_rss_mib: float  # the server process's VmHWM after the load: index, model and all
    load_average: tuple[float, ...] = ()


def measure_answers(settings: Settings, questions: list[str], chunks: int) -> AnswerRun:
    """``Bot.ask`` over the index, and the same with every passage sentence embedded at question time, in turn."""
    bot = build(settings).bot
    before = Bot(bot.settings, EmbeddingSentences(bot.retriever), bot.backend)
    for question in questions[:WARM_UP]:
        bot.ask(question)
        before.ask(question)
    seconds: list[float] = []
    before_seconds: list[float] = []
    refused = 0
    for question in questions:
        started = time.perf_counter()
        answer = bot.ask(question)
        seconds.append(time.perf_counter() - started)
        refused += answer.refused
        started = time.perf_counter()
        before.ask(question)
        before_seconds.append(time.perf_counter() - started)
    ask, embedding = Latency.of(seconds), Latency.of(before_seconds)
    speed_up = round(embedding.p50_ms / ask.p50_ms, 2)
    return AnswerRun(chunks, bot.generator_name, len(questions), ask, refused, embedding, speed_up)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"app.py exited with {server.returncode} before serving:\n{tail}")
        try:
            if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"app.py did not answer /api/health within {SERVER_START_S:.0f} s")


async def load(bases: list[str], questions: list[str], clients: int, per_client: int) -> tuple[list[float], int, float]:
    """``clients`` concurrent clients, ``per_client`` questions each, client n asking ``bases[n % len(bases)]``:
    (latency of every request, requests not answered 200, wall seconds). One warm-up question per server first."""
    seconds: list[float] = []
    errors = 0

    async def client(number: int, http: httpx.AsyncClient) -> None:
        nonlocal errors
        base = bases[number % len(bases)]
        for i in range(per_client):
            question = questions[(number * per_client + i) % len(questions)]
            started = time.perf_counter()
            try:
                status = (await http.post(f"{base}/api/ask", json={"question": question})).status_code
            except httpx.TransportError:
                status = 0
            seconds.append(time.perf_counter() - started)
            errors += status != 200

    async with httpx.AsyncClient(timeout=120) as http:
        for base in bases:
            await http.post(f"{base}/api/ask", json={"question": questions[0]})
        started = time.perf_counter()
        await asyncio.gather(*(client(n, http) for n in range(clients)))
        return seconds, errors, time.perf_counter() - started


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]


@contextmanager
def serve(data_dir: Path, env: dict[str, str], log: Path) -> Iterator[Served]:
    """``python app.py`` (= ``docbot serve``) over ``data_dir`` with ``env`` on top of the load settings, on a free
    loopback port; stopped on exit."""
    port = free_port()
    full_env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "ANONYMIZED_TELEMETRY": "False",
        "DOCBOT_DATA_DIR": str(data_dir),
        "DOCBOT_HOST": "127.0.0.1",
        "DOCBOT_PORT": str(port),
        "DOCBOT_RATE_LIMIT_PER_MINUTE": "1000000",  # every client is 127.0.0.1
        **env,
    }
    base = f"http://127.0.0.1:{port}"
    with open(log, "wb") as sink:
        server = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py")], env=full_env, cwd=data_dir, stdout=sink, stderr=sink
        )
    try:
        _wait_ready(base, server, log)
        yield Served(base, server)
    finally:
        stop(server)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a process the bench started; kill it if it has not stopped within 30 s."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def measure_api(data_dir: Path, questions: list[str], chunks: int, clients: int, per_client: int) -> ApiRun:
    """Serve the index in ``data_dir`` with ``python app.py`` and ask it from ``clients`` concurrent clients."""
    # None refused as busy: a slot outlives its reply a little.
    env = {"DOCBOT_MAX_CONCURRENT_ANSWERS": str(2 * clients)}
    with serve(data_dir, env, data_dir / "server.log") as server:
        before = load_average()
        seconds, errors, wall = asyncio.run(load([server.url], questions, clients, per_client))
        peak = process_memory_kib(server.process.pid, "VmHWM") / 1024
    return ApiRun(
        chunks=chunks,
        clients=clients,
        requests=len(seconds),
        seconds=round(wall, 2),
        requests_per_s=round(len(seconds) / wall, 2),
        latency=Latency.of(seconds),
        errors=errors,
        server_peak_rss_mib=round(peak, 1),
        load_average=(*before, *load_average()),
    )
