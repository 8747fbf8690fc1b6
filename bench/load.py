"""Load and soak against a running docbot: concurrent conversations on ``/api/ask`` and ``/api/ask/stream``.

Each conversation asks a short script of questions (follow-ups carry the history), turn by turn, alternating the
plain and the streamed route, until its time is up; then it starts the next script. A turn counts as answered
only when a 200 arrives with a whole answer (for a stream: the final ``answer`` event); a stream that ends without
one, or with an ``error`` event, is a dropped stream. The soak measures the server's resident memory
(``VmRSS`` of its process) after a warm-up and again at the end of a longer run.

    python -m bench.load --url http://127.0.0.1:7860 --conversations 50 --seconds 60
    python -m bench.load --url http://127.0.0.1:7860 --soak-seconds 300 --pid 12345 --json soak.json

Every conversation comes from this one address: raise ``DOCBOT_RATE_LIMIT_PER_MINUTE`` on the server, or pass
``--key`` with a key whose limit allows the load; and raise ``DOCBOT_MAX_CONCURRENT_ANSWERS`` well above the number
of conversations (twice: a slot is given back once the whole response is sent, a moment after the client read it),
or the answers beyond it are refused with 503 (counted as server errors).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from bench.machine import process_memory_kib

#: Conversations about the seed document; the last question of each script is a follow-up or off-topic.
SCRIPTS: tuple[tuple[str, ...], ...] = (
    ("What group is the article about?", "What did coalition forces resume because of it?"),
    (
        "In which countries are there signs that the Islamic State is trying to rebuild?",
        "What kinds of operations has it moved to?",
    ),
    ("What is the biggest worry of Western security officials?", "Why is that?"),
    ("Besides the manpower shortage, what did ISIS leaders take advantage of?",),
    ("What is the recipe for chocolate brownies with walnuts?",),
)
ROUTES = ("/api/ask", "/api/ask/stream")
REQUEST_TIMEOUT_S = 120.0
HISTORY_TURNS = 3


@dataclass(frozen=True, slots=True)
class Turn:
    route: str
    status: int  # 0: no HTTP response (timeout, reset)
    seconds: float
    answered: bool
    error: str | None = None


@dataclass
class LoadReport:
    conversations: int
    seconds: float
    requests: int
    answered: int
    by_route: dict[str, int]
    server_errors: int  # 5xx
    other_errors: int  # 4xx
    dropped_streams: int
    transport_errors: int
    p50_s: float
    p95_s: float
    max_s: float
    throughput_rps: float
    errors: list[str] = field(default_factory=list)  # the first few, for the log

    def summary(self) -> str:
        return (
            f"{self.conversations} conversations, {self.seconds:.0f} s: {self.requests} requests "
            f"({', '.join(f'{r} {n}' for r, n in self.by_route.items())}), {self.answered} answered, "
            f"{self.throughput_rps:.1f} req/s; latency p50 {self.p50_s:.2f} s, p95 {self.p95_s:.2f} s, "
            f"max {self.max_s:.2f} s; 5xx {self.server_errors}, 4xx {self.other_errors}, "
            f"dropped streams {self.dropped_streams}, transport errors {self.transport_errors}"
        )


@dataclass
class SoakReport:
    """Memory under load: RSS swings by several per cent from one request to the next, so growth compares the
    median of the first fifth of the samples with the median of the last fifth."""

    load: LoadReport
    warmup: LoadReport
    rss_samples: list[tuple[float, int]]  # (seconds since the warm-up ended, KiB)

    def _median(self, part: slice) -> float:
        return statistics.median(kib for _, kib in self.rss_samples[part])

    @property
    def rss_start_kib(self) -> float:
        return self._median(slice(0, max(1, len(self.rss_samples) // 5)))

    @property
    def rss_end_kib(self) -> float:
        return self._median(slice(-max(1, len(self.rss_samples) // 5), None))

    @property
    def growth(self) -> float:
        return self.rss_end_kib / self.rss_start_kib - 1

    def figures(self) -> dict[str, object]:
        rss = {"rss_start_kib": self.rss_start_kib, "rss_end_kib": self.rss_end_kib, "growth": self.growth}
        return {**asdict(self), **rss, "rss_max_kib": max(kib for _, kib in self.rss_samples)}

    def summary(self) -> str:
        mib = 1024
        return (
            f"soak: RSS {self.rss_start_kib / mib:.0f} MiB after warm-up, {self.rss_end_kib / mib:.0f} MiB at the end "
            f"({self.growth:+.1%}; medians of the first and last fifth of {len(self.rss_samples)} samples, max "
            f"{max(kib for _, kib in self.rss_samples) / mib:.0f} MiB); {self.load.summary()}"
        )


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def _ask(client: httpx.AsyncClient, body: dict[str, object]) -> tuple[int, str | None, str | None]:
    response = await client.post("/api/ask", json=body)
    if response.status_code != 200:
        return response.status_code, None, response.text[:200]
    return 200, str(response.json()["answer"]), None


async def _ask_stream(client: httpx.AsyncClient, body: dict[str, object]) -> tuple[int, str | None, str | None]:
    """Read the whole event stream; the answer is the final ``answer`` event, if it came."""
    async with client.stream("POST", "/api/ask/stream", json=body) as response:
        if response.status_code != 200:
            return response.status_code, None, (await response.aread()).decode(errors="replace")[:200]
        event, answer, error = "", None, None
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line[7:].strip()
            elif line.startswith("data: ") and event == "answer":
                answer = str(json.loads(line[6:])["answer"])
            elif line.startswith("data: ") and event == "error":
                error = line[6:]
        return 200, answer, error or (None if answer is not None else "the stream ended without an answer")


async def _turn(client: httpx.AsyncClient, route: str, question: str, history: list[list[str]]) -> tuple[Turn, str]:
    body: dict[str, object] = {"question": question, "history": history[-HISTORY_TURNS:]}
    started = time.perf_counter()
    try:
        status, answer, error = await (_ask_stream if route.endswith("stream") else _ask)(client, body)
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        status, answer, error = 0, None, f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - started
    return Turn(route, status, seconds, answer is not None and error is None, error), answer or ""


async def _conversation(client: httpx.AsyncClient, number: int, deadline: float, turns: list[Turn]) -> None:
    script_index, step = number % len(SCRIPTS), 0
    history: list[list[str]] = []
    while time.monotonic() < deadline:
        script = SCRIPTS[script_index]
        route = ROUTES[(number + len(turns)) % len(ROUTES)]
        turn, answer = await _turn(client, route, script[step], history)
        turns.append(turn)
        history.append([script[step], answer])
        step += 1
        if step == len(script):  # a new conversation: the next script, no history
            script_index, step, history = (script_index + 1) % len(SCRIPTS), 0, []


def _report(conversations: int, seconds: float, turns: list[Turn]) -> LoadReport:
    latencies = [t.seconds for t in turns if t.status]
    return LoadReport(
        conversations=conversations,
        seconds=seconds,
        requests=len(turns),
        answered=sum(t.answered for t in turns),
        by_route={route: sum(t.route == route for t in turns) for route in ROUTES},
        server_errors=sum(t.status >= 500 for t in turns),
        other_errors=sum(400 <= t.status < 500 for t in turns),
        dropped_streams=sum(t.route.endswith("stream") and t.status == 200 and not t.answered for t in turns),
        transport_errors=sum(t.status == 0 for t in turns),
        p50_s=statistics.median(latencies) if latencies else 0.0,
        p95_s=percentile(latencies, 0.95),
        max_s=max(latencies, default=0.0),
        throughput_rps=len(turns) / seconds if seconds else 0.0,
        errors=[f"{t.route} {t.status}: {t.error}" for t in turns if not t.answered][:10],
    )


async def run_load(url: str, conversations: int, seconds: float, key: str | None = None) -> LoadReport:
    """``conversations`` at once for ``seconds`` (turns under way at the end are finished and counted)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    limits = httpx.Limits(max_connections=conversations, max_keepalive_connections=conversations)
    turns: list[Turn] = []
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=REQUEST_TIMEOUT_S, limits=limits) as client:
        await asyncio.gather(*(_conversation(client, n, started + seconds, turns) for n in range(conversations)))
    return _report(conversations, time.monotonic() - started, turns)


async def soak(
    url: str,
    pid: int,
    conversations: int,
    seconds: float,
    warmup_s: float,
    key: str | None = None,
) -> SoakReport:
    """A warm-up, then ``seconds`` of load with the server's memory sampled about 60 times."""
    warmup = await run_load(url, conversations, warmup_s, key)
    every_s = max(0.5, seconds / 60)
    samples = [(0.0, process_memory_kib(pid))]
    started = time.monotonic()
    load = asyncio.create_task(run_load(url, conversations, seconds, key))
    while not load.done():
        await asyncio.wait([load], timeout=every_s)
        samples.append((round(time.monotonic() - started, 1), process_memory_kib(pid)))
    return SoakReport(load.result(), warmup, samples)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:7860")
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60, help="length of the load run (0: none)")
    parser.add_argument("--key", help="API key, when the server has DOCBOT_API_KEYS")
    parser.add_argument("--pid", type=int, help="the server's process id: with --soak-seconds, measure its memory")
    parser.add_argument("--soak-seconds", type=float, default=0, help="then a soak of this length (needs --pid)")
    parser.add_argument("--warmup-seconds", type=float, default=30)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    figures: dict[str, object] = {"load_average_at_start": os.getloadavg()}
    if args.seconds:
        load = asyncio.run(run_load(args.url, args.conversations, args.seconds, args.key))
        print(load.summary())
        figures["load"] = asdict(load)
    if args.soak_seconds:
        if args.pid is None:
            parser.error("--soak-seconds needs --pid")
        result = asyncio.run(
            soak(args.url, args.pid, args.conversations, args.soak_seconds, args.warmup_seconds, key=args.key)
        )
        print(result.summary())
        figures["soak"] = result.figures()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
