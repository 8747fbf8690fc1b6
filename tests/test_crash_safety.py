"""Crash safety, for real: `docbot index` is SIGKILLed at several points, and the next run must still end with
exactly the index an uninterrupted run builds.

Starting a Python process that imports torch and sentence-transformers takes many seconds, so the killed runs
are forked from a "zygote" process that has done those imports once; each fork then runs the real
``docbot index`` entry point (``bot.cli.main``) exactly as the console script does, the last one to the end.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest
from conftest import ROOT
from helpers import pools
from live import child_env

from bot.config import Settings
from index.embeddings import Embedder
from index.lexical import CURRENT, LOCK, LexicalIndex
from index.pipeline import Indexer
from index.store import VectorStore

CHUNKING = {"DOCBOT_CHUNK_SIZE": "200", "DOCBOT_CHUNK_OVERLAP": "40"}  # many small chunks: more writes to cut

ZYGOTE = """
import json, os, sys
import chromadb, sentence_transformers, torch  # the slow imports, done once before forking
import bot.cli
import index.pipeline

index.pipeline.EMBED_GROUP = 4  # about one write a file: many small transactions, so a kill lands between them too

for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        os.chdir(job["cwd"])
        os.environ.update(job["env"])
        log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(log, 1)
        os.dup2(log, 2)
        sys.argv = ["docbot", "index", *job["args"]]
        code = 0
        try:
            bot.cli.main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    print(json.dumps({"pid": pid}), flush=True)
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None}), flush=True)
"""

WORDS = (
    "harbour tide lantern river meadow ledger archive quarry copper signal orchard beacon ferry keeper storm "
    "island channel dredging cargo pilot anchor compass chart reef gull mist dune cliff village market bridge "
    "mill weaver baker smith council record winter summer autumn spring north south east west"
).split()


def prose(rng: random.Random, paragraphs: int) -> str:
    out = []
    for _ in range(paragraphs):
        sentences = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 16))).capitalize() + rng.choice("..?!")
            for _ in range(rng.randint(2, 6))
        ]
        out.append(" ".join(sentences))
    return "\n\n".join(out)


def write_corpus(folder: Path, files: int, seed: int) -> None:
    rng = random.Random(seed)
    for i in range(files):
        sub = folder / f"part{i % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"doc{i:03}.txt").write_text(prose(rng, rng.randint(2, 5)))


def change_corpus(folder: Path) -> None:
    """Edit, rewrite, shrink, delete and add files: every path of an update run."""
    rng = random.Random(99)
    files = sorted(folder.rglob("*.txt"))
    for path in files[0:4]:
        path.write_text(path.read_text() + "\n\n" + prose(rng, 1))
    for path in files[4:8]:
        path.write_text(prose(rng, 3))
    files[8].write_text("Only this sentence is left.")
    for path in files[9:13]:
        path.unlink()
    for i in range(4):
        (folder / "part0" / f"new{i}.txt").write_text(prose(rng, 3))


@dataclass
class Run:
    killed: bool
    log: str
    seen: list[str] = field(default_factory=list)  # what the trigger saw when it fired


class Zygote:
    """A process with the slow imports done, forking one `docbot index` run at a time."""

    def __init__(self) -> None:
        env = child_env()
        self.process = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE], cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def run(self, workdir: Path, data_dir: Path, arm: Callable[[], Trigger], timeout_s: float = 240) -> Run:
        """Run `docbot index docs`; SIGKILL it the moment the trigger ``arm`` sets at its start fires."""
        assert self.process.stdin is not None and self.process.stdout is not None
        log = workdir / "run.log"
        job = {"cwd": str(workdir), "env": {"DOCBOT_DATA_DIR": str(data_dir), **CHUNKING}, "args": ["docs"]}
        self.process.stdin.write(json.dumps({**job, "log": str(log)}) + "\n")
        self.process.stdin.flush()
        started = self.process.stdout.readline()
        assert started, f"the zygote exited ({self.process.wait()}): see the captured stderr"
        pid = json.loads(started)["pid"]
        trigger = arm()
        status: dict[str, Any] = {}
        waiter = threading.Thread(target=lambda: status.update(json.loads(self.process.stdout.readline())))  # type: ignore[union-attr]
        waiter.start()
        deadline = time.monotonic() + timeout_s
        seen: list[str] = []
        while waiter.is_alive() and time.monotonic() < deadline:
            if seen := trigger():
                os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.0005)
        else:
            if waiter.is_alive():
                os.kill(pid, signal.SIGKILL)
                pytest.fail(f"docbot index did not finish in {timeout_s} s: {log.read_text()[-2000:]}")
        waiter.join()
        return Run(killed=status["signal"] == signal.SIGKILL, log=log.read_text() if log.exists() else "", seen=seen)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


#: A trigger is polled every half millisecond; it returns what it saw when it wants the run killed.
Trigger = Callable[[], list[str]]


def never() -> list[str]:
    return []


def after(seconds: float) -> Trigger:
    start = time.monotonic()
    return lambda: [f"{seconds} s"] if time.monotonic() - start > seconds else []


def empty_store_bytes(scratch: Path) -> int:
    """The size of a Chroma database holding an empty collection."""
    VectorStore(Settings(data_dir=scratch), "scratch", 384)
    return (scratch / "chroma" / "chroma.sqlite3").stat().st_size


def mid_write(data_dir: Path, empty: int, grown_by: int = 0, nth: int = 1) -> Trigger:
    """Fires inside a Chroma write transaction (its SQLite journal exists): the ``nth`` one seen once this run
    has written ``grown_by`` bytes of chunks."""
    database = data_dir / "chroma" / "chroma.sqlite3"
    journal = database.with_name("chroma.sqlite3-journal")
    threshold = max(database.stat().st_size if database.exists() else 0, empty) + grown_by
    state = {"seen": 0, "in": False}

    def fire() -> list[str]:
        present = journal.exists()
        if present and not state["in"] and database.exists() and database.stat().st_size >= threshold:
            state["seen"] += 1
        state["in"] = present
        return [f"write transaction {state['seen']}"] if present and state["seen"] >= nth else []

    return fire


def bm25_save(data_dir: Path) -> Trigger:
    """Fires while the BM25 files are being written: a new entry beside the live index, holding files."""
    folder = data_dir / "bm25"
    before = set(os.listdir(folder)) if folder.exists() else set()

    def fire() -> list[str]:
        try:
            new = [n for n in os.listdir(folder) if n not in before and n != LOCK]
            return [n for n in new if not (folder / n).is_dir() or any((folder / n).iterdir())]
        except FileNotFoundError:  # the folder, or an entry in it, came or went while looking
            return []

    return fire


def chunks_in_store(data_dir: Path) -> int:
    database = data_dir / "chroma" / "chroma.sqlite3"
    if not database.exists():
        return 0
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        return int(connection.execute("select count(*) from embeddings").fetchone()[0])


def snapshot(data_dir: Path) -> dict[str, tuple[str, dict[str, Any], np.ndarray]]:
    client = chromadb.PersistentClient(
        path=str(data_dir / "chroma"), settings=chromadb.config.Settings(anonymized_telemetry=False)
    )
    got = client.get_collection("docbot").get(include=["documents", "metadatas", "embeddings"])
    assert len(got["ids"]) == len(set(got["ids"])), "duplicate ids"
    return {
        i: (d, dict(m), np.asarray(e))
        for i, d, m, e in zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"], strict=True)
    }


@pytest.mark.slow
def test_killed_index_runs_end_identical_to_an_uninterrupted_one(tmp_path: Path, embedder: Embedder) -> None:
    corpus = tmp_path / "docs"
    write_corpus(corpus, files=60, seed=1)
    data_dir = tmp_path / "data"
    empty = empty_store_bytes(tmp_path / "scratch")
    zygote = Zygote()
    try:
        # First build: killed while loading, in the middle of Chroma writes, and while saving BM25.
        runs = {"while starting": zygote.run(tmp_path, data_dir, lambda: after(0.5))}
        runs["mid-write, first build"] = zygote.run(
            tmp_path, data_dir, lambda: mid_write(data_dir, empty, grown_by=60_000)
        )
        partial = chunks_in_store(data_dir)
        runs["BM25 save, first build"] = zygote.run(tmp_path, data_dir, lambda: bm25_save(data_dir))
        built = chunks_in_store(data_dir)
        # Update: files edited, rewritten, shrunk, deleted and added; killed mid-update, then saving BM25.
        change_corpus(corpus)
        runs["mid-write, update"] = zygote.run(tmp_path, data_dir, lambda: mid_write(data_dir, empty, nth=4))
        runs["BM25 save, update"] = zygote.run(tmp_path, data_dir, lambda: bm25_save(data_dir))
        final = zygote.run(tmp_path, data_dir, lambda: never)
    finally:
        zygote.close()

    seen = {what: run.seen for what, run in runs.items()}
    for what, run in runs.items():
        assert run.killed, f"the run meant to die {what} finished: {run.log}"
        assert "Traceback" not in run.log, run.log
    assert 0 < partial < built, f"the mid-write kill did not leave a partly written store: {partial}, {seen}"

    assert not final.killed and " failed 0 (" in final.log, final.log

    # The reference: one uninterrupted run over the final files into another data directory.
    reference_settings = Settings(data_dir=tmp_path / "reference", chunk_size=200, chunk_overlap=40)
    store = VectorStore(reference_settings, embedder.name, embedder.dimension)
    reference_report = Indexer(reference_settings, embedder, store, pools().parse).run([corpus])
    assert reference_report.failed == [] and len(reference_report.added) == 60

    recovered, reference = snapshot(data_dir), snapshot(tmp_path / "reference")
    assert recovered.keys() == reference.keys()
    # Under bfloat16 a vector depends slightly on the texts sharing its batch, which a resumed run changes.
    tolerance = 1e-4 if embedder.precision == "float32" else 3e-3
    for chunk_id, (text, meta, vector) in reference.items():
        assert recovered[chunk_id][0] == text
        assert recovered[chunk_id][1] == meta
        np.testing.assert_allclose(recovered[chunk_id][2], vector, atol=tolerance)
        assert float(np.dot(recovered[chunk_id][2], vector)) > 0.9999

    # No orphans: every chunk's file exists, with the content it was made from, and every version is whole.
    per_source = Counter(meta["source"] for _, meta, _ in recovered.values())
    for _, meta, _ in recovered.values():
        path = corpus / meta["source"]
        assert path.is_file(), f"orphan chunk of {meta['source']}"
        assert meta["content_hash"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert meta["n_chunks"] == per_source[meta["source"]]
    assert len(per_source) == len(list(corpus.rglob("*.txt")))

    # BM25 holds exactly the store's chunks, and no half-written leftovers lie beside it.
    lexical_dir = data_dir / "bm25"
    lexical = LexicalIndex.load(lexical_dir)
    assert sorted(lexical.ids) == sorted(recovered)
    assert set(os.listdir(lexical_dir)) == {CURRENT, LOCK, lexical.fingerprint}

    # Chroma's vector index survived too: chunks are found by their own vectors.
    settings = Settings(data_dir=data_dir, chunk_size=200, chunk_overlap=40)
    recovered_store = VectorStore(settings, embedder.name, embedder.dimension)
    for chunk_id in random.Random(3).sample(sorted(recovered), 10):
        (hit,) = recovered_store.query(recovered[chunk_id][2], 1)
        assert hit.chunk.id == chunk_id

    # And a further run finds nothing to do.
    again = Indexer(settings, embedder, recovered_store, pools().parse).run([corpus])
    assert again.chunks_embedded == 0 and not again.changed and len(again.unchanged) == 60
