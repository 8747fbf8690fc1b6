"""``/api/ask`` throughput of one and of two ``docbot serve`` replicas on this machine, as deployed (docs/deploy.md):
both against one Chroma server, each with a data directory of its own, sharing one state database.

The Chroma server serves a copy of the index :mod:`bench.retrieval` built (``chroma run`` reads the same folder
format as docbot's embedded store); each replica starts from a copy of that index's BM25 and calibration files (a
replica without them rebuilds them from the store at start: the same files, later). The shared database is one
SQLite file (PostgreSQL is what docs/deploy.md runs; the tests run the replicas on it). The same clients ask one
replica, then two (client n asks replica n mod 2), in the same run: the ratio is two replicas' answers a second
over one's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from bench import corpus, report
from bench.answering import Served, free_port, load, serve, stop
from bench.machine import describe, load_average
from bench.retrieval import Latency, kept_index
from bench.vectors import VectorCache
from bot.settings_errors import load_settings
from index.chunking import Chunker
from index.embeddings import resolve_model

CHROMA_START_S = 300.0


@dataclass
class ReplicaRun:
    replicas: int
    clients: int
    requests: int
    seconds: float
    answers_per_s: float  # requests answered 200, a second
    errors: int  # requests not answered 200 (refused, failed or cut)
    latency: Latency
    load_average: tuple[float, ...] = ()


@dataclass
class ReplicaComparison:
    chunks: int
    one: ReplicaRun
    two: ReplicaRun
    two_over_one: float  # answers a second, two replicas ÷ one


@contextmanager
def chroma_server(path: Path, log: Path) -> Iterator[Served]:
    """``chroma run`` over ``path`` on a free loopback port; stopped on exit."""
    port = free_port()
    chroma = str(Path(sys.executable).with_name("chroma"))
    with open(log, "wb") as sink:
        server = subprocess.Popen(
            [chroma, "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(path)], stdout=sink, stderr=sink
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + CHROMA_START_S
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"chroma run exited with {server.returncode}: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"chroma run did not answer within {CHROMA_START_S:.0f} s")
            time.sleep(0.3)
        yield Served(url, server)
    finally:
        stop(server)


def _replica_dir(index_dir: Path, folder: Path) -> Path:
    """A replica's own data directory: the index's BM25 and calibration files, not its Chroma folder."""
    shutil.copytree(index_dir, folder, ignore=shutil.ignore_patterns("chroma", "*.log", "gradio"))
    return folder


def _run(replicas: list[Served], questions: list[str], clients: int, per_client: int) -> ReplicaRun:
    before = load_average()
    seconds, errors, wall = asyncio.run(load([r.url for r in replicas], questions, clients, per_client))
    return ReplicaRun(
        replicas=len(replicas),
        clients=clients,
        requests=len(seconds),
        seconds=round(wall, 2),
        answers_per_s=round((len(seconds) - errors) / wall, 2),
        errors=errors,
        latency=Latency.of(seconds),
        load_average=(*before, *load_average()),
    )


def measure(
    index_dir: Path, work: Path, questions: list[str], chunks: int, clients: int, per_client: int
) -> ReplicaComparison:
    """One replica, then two, over a Chroma server serving a copy of the index in ``index_dir``."""
    work.mkdir(parents=True, exist_ok=True)
    shutil.copytree(index_dir / "chroma", work / "chroma-server")
    with ExitStack() as stack:
        chroma = stack.enter_context(chroma_server(work / "chroma-server", work / "chroma.log"))
        env = {
            "DOCBOT_CHROMA_URL": chroma.url,
            "DOCBOT_DATABASE_URL": f"sqlite:///{work / 'state.db'}",
            "DOCBOT_MAX_CONCURRENT_ANSWERS": str(2 * clients),  # none refused as busy
        }
        replicas = [
            stack.enter_context(serve(_replica_dir(index_dir, work / f"replica-{n}"), env, work / f"replica-{n}.log"))
            for n in (1, 2)
        ]
        one = _run(replicas[:1], questions, clients, per_client)
        two = _run(replicas, questions, clients, per_client)
    return ReplicaComparison(chunks, one, two, round(two.answers_per_s / one.answers_per_s, 3))


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.replicas``: this comparison alone, on the benchmark corpus at one size (vectors cached)."""
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(prog="python -m bench.replicas", description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=1000, help="index size (default 1k: the model dominates)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=160, help="requests in each of the two rows")
    parser.add_argument("--cache", type=Path, default=here / ".cache", help="corpora and chunk vectors, reused")
    parser.add_argument("--json", type=Path, default=here / "results" / "replicas.json")
    parser.add_argument("--fresh-index", action="store_true", help="rebuild the kept index even if it matches")
    args = parser.parse_args(argv)
    base = load_settings()
    chunker = Chunker(base.chunk_size, base.chunk_overlap)
    info = corpus.build_corpus(args.cache / "corpus" / str(args.chunks), args.chunks, chunker)
    vectors = VectorCache(args.cache / "vectors" / resolve_model(base.embedding_model)[1].replace("/", "--"))
    settings = base.model_copy(update={"data_dir": args.cache / f"index-{args.chunks}"})
    kept_index(info, settings, vectors, fresh=args.fresh_index)
    per_client = max(1, args.requests // args.clients)
    with tempfile.TemporaryDirectory(prefix="work-", dir=args.cache) as work:
        compared = measure(
            settings.data_dir, Path(work) / "replicas", corpus.questions(200), info.chunks, args.clients, per_client
        )
    results = {"command": " ".join(["python -m bench.replicas", *(argv or sys.argv[1:])]), "machine": describe()}
    results["replicas"] = asdict(compared)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print("\n".join(report.replicas_section(results["replicas"])))


if __name__ == "__main__":
    main()
