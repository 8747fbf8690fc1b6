"""The disk under the index fails: it fills during a run, or holds a Chroma directory docbot cannot open.

A run that fails must leave the index exactly as it was before it (chunk ids, texts, metadata and the BM25 side),
with nothing left behind in the data directory. The real disk-full case runs on a small tmpfs when this process may
mount one (root, as in CI); the same run with the fault injected as an ``OSError`` runs everywhere.
"""

from __future__ import annotations

import errno
import html
import multiprocessing
import os
import queue
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import HASHING_COVERAGE, SEED_DOC
from helpers import access_over, pools
from live import child_env, free_port
from page_events import received
from test_hostile_uploads import IN_PROCESS, Progress

from app import build
from bot.answer.chat import Bot
from bot.config import Settings
from bot.documents.upload_inbox import UploadInbox
from bot.documents.upload_staging import STAGING
from bot.web.page import ChatPage
from index import pipeline
from index.chunking import Chunker
from index.embeddings import Embedder
from index.errors import IndexRunError, StoreUnavailableError
from index.hashing import HashingEmbedder
from index.lexical import LexicalIndex
from index.loaders import load_file
from index.pipeline import Indexer, is_disk_full
from index.store import VectorStore

DOCBOT = str(Path(sys.executable).with_name("docbot"))
#: Small chunks: many cheap writes, so a small disk fills after a few of them.
SMALL_CHUNKS = {"chunk_size": 200, "chunk_overlap": 0}
HARBOUR = "\n\n".join(
    [
        "The harbour opens at six in the morning and closes at ten at night, every day of the year.",
        "Ferries to the islands leave on the hour; the last one waits for the train from the city.",
        "Pilots board large ships at the outer buoy, two miles beyond the breakwater.",
    ]
)
FIX = "move it away and run: docbot index --rebuild"

Snapshot = tuple[dict[str, dict[str, Any]], str, list[str], list[str]]


def make_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True)
    shutil.copy(SEED_DOC, folder)
    (folder / "harbour.txt").write_text(HARBOUR)
    (folder / "obsolete.txt").write_text("The old customs house closed in 1987 and became a museum of sail.")
    return folder


def change_corpus(folder: Path, new_files: int) -> None:
    """An update that keeps the first chunks of harbour.txt (same ids), a removal, and many new files."""
    (folder / "harbour.txt").write_text(HARBOUR + "\n\nTugs are on call day and night from the north quay.")
    (folder / "obsolete.txt").unlink()
    rng = random.Random(7)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9))) for _ in range(2000)]
    for n in range(new_files):
        (folder / f"new-{n:03}.txt").write_text(" ".join(rng.choice(words) for _ in range(90)) + ".")


def snapshot(settings: Settings, store: VectorStore) -> Snapshot:
    """Everything a reader of the index sees, and every file in the data directory."""
    records = {chunk_id: {**meta, "text": text} for chunk_id, text, meta in store.iter_all(with_text=True)}
    lexical = LexicalIndex.load(settings.lexical_dir)
    files = sorted(
        str(p.relative_to(settings.data_dir)) for p in settings.data_dir.rglob("*") if "chroma" not in p.parts
    )
    return records, lexical.fingerprint, sorted(lexical.ids), files


def assert_overwrites_a_stored_chunk(settings: Settings, corpus: Path, before: Snapshot) -> None:
    """The changed harbour.txt keeps chunk ids of its old version: the undo must give them their metadata back."""
    loaded = load_file(corpus / "harbour.txt", "harbour.txt", max_bytes=settings.max_file_bytes)
    chunker = Chunker(settings.chunk_size, settings.chunk_overlap)
    new_ids = {c.id for doc in loaded.documents for c in chunker.split(doc, loaded.content_hash, root=str(corpus))}
    assert new_ids & set(before[0]), "the scenario must overwrite chunks that exist"


def indexed(settings: Settings, embedder: Embedder, corpus: Path) -> tuple[VectorStore, Snapshot]:
    store = VectorStore(settings, embedder.name, embedder.dimension)
    report = Indexer(settings, embedder, store, pools().parse).run([corpus])
    assert not report.failed
    return store, snapshot(settings, store)


def assert_completes_after_the_fault(settings: Settings, embedder: Embedder, store: VectorStore, corpus: Path) -> None:
    report = Indexer(settings, embedder, store, pools().parse).run([corpus])
    assert report.updated == ["harbour.txt"] and report.removed == ["obsolete.txt"] and not report.failed
    records, _, bm25_ids, _ = snapshot(settings, store)
    assert sorted(records) == bm25_ids
    assert {m["source"] for m in records.values()} == {p.name for p in corpus.iterdir()}


# --- the fault injected: runs everywhere ---------------------------------------------------------


def _full_disk(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("where", ["second store write", "BM25 save"])
def test_a_run_failing_on_a_full_disk_leaves_the_index_as_it_was(
    where: str, hashing_embedder: Embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path / "data", **SMALL_CHUNKS)
    corpus = make_corpus(tmp_path / "docs")
    store, before = indexed(settings, hashing_embedder, corpus)
    change_corpus(corpus, new_files=12)
    assert_overwrites_a_stored_chunk(settings, corpus, before)

    if where == "second store write":
        monkeypatch.setattr(pipeline, "EMBED_GROUP", 8)  # several writes, as in a big corpus: fail after the first
        real_upsert = VectorStore.upsert
        calls = []

        def upsert_then_fill(self: VectorStore, *args: Any, **kwargs: Any) -> None:
            calls.append(1)
            if len(calls) == 2:
                _full_disk()
            real_upsert(self, *args, **kwargs)

        monkeypatch.setattr(VectorStore, "upsert", upsert_then_fill)
    else:
        import bm25s

        real_save = bm25s.BM25.save

        def save_half_then_fill(self: Any, folder: str, **kwargs: Any) -> None:
            real_save(self, folder, **kwargs)  # the files are written, then the disk is full
            _full_disk()

        monkeypatch.setattr(bm25s.BM25, "save", save_half_then_fill)

    with pytest.raises(IndexRunError, match=r"No space left on device.*the index is as it was before this run"):
        Indexer(settings, hashing_embedder, store, pools().parse).run([corpus])
    assert snapshot(settings, store) == before

    monkeypatch.undo()
    assert_completes_after_the_fault(settings, hashing_embedder, store, corpus)


# --- a real full disk: a tmpfs just big enough ----------------------------------------------------


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs mounted for the test (skipped where mounting is not allowed); unmounted after."""
    point = tmp_path / "disk"
    point.mkdir()
    mounted = _mount("-t", "tmpfs", "-o", "size=64m", "tmpfs", str(point))
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); the injected-fault test covers this")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


def _resize(point: Path, kib: int) -> None:
    result = _mount("-o", f"remount,size={kib}k", str(point))
    assert result.returncode == 0, result.stderr


def _two_failing_runs(point: Path, corpus: Path, results: Any) -> None:
    """Index, then fail twice on a full disk; put what happened on ``results``.

    Runs in a fresh process: Chroma's embedded engine keeps per-process state, and once, in a test process that
    had opened several stores, a write after a disk-full failure hung inside it. The next run is a new process
    anyway (``docbot index`` again).
    """
    try:
        embedder = Embedder.from_settings(Settings())
        settings = Settings(data_dir=point / "data", **SMALL_CHUNKS)
        store, before = indexed(settings, embedder, corpus)
        change_corpus(corpus, new_files=60)  # about 180 small chunks: well over the room left below
        assert_overwrites_a_stored_chunk(settings, corpus, before)
        used_kib = shutil.disk_usage(point).used // 1024
        reserve_kib = pipeline.RESERVE_BYTES // 1024
        outcome: dict[str, Any] = {"errors": [], "unchanged": []}
        # not even room for the reserve (refused before any write), then the reserve and room for a few dozen chunks
        for room_kib in (reserve_kib // 2, reserve_kib + 256):
            _resize(point, used_kib + room_kib)
            try:
                Indexer(settings, embedder, store, pools().parse).run([corpus])
                outcome["errors"].append(None)
            except IndexRunError as exc:
                outcome["errors"].append(str(exc))
            outcome["unchanged"].append(snapshot(settings, store) == before)
        outcome["reserve left"] = (settings.data_dir / pipeline.RESERVE_FILE).exists()
        results.put(outcome)
    except BaseException:
        results.put({"crashed": traceback.format_exc()})


def _result_of(child: Any, results: Any, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            return dict(results.get(timeout=1))
        except queue.Empty:
            assert child.is_alive(), f"the child process died with exit code {child.exitcode}"
    raise AssertionError(f"no result within {timeout_s:g} s")


@pytest.mark.slow
def test_the_disk_filling_during_a_run_leaves_the_index_as_it_was(small_disk: Path, tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "docs")
    spawn = multiprocessing.get_context("spawn")
    results = spawn.Queue()
    child = spawn.Process(target=_two_failing_runs, args=(small_disk, corpus, results))
    child.start()
    try:
        outcome = _result_of(child, results, timeout_s=600)
    finally:
        child.kill()
    assert "crashed" not in outcome, outcome["crashed"]
    refused, failed = outcome["errors"]
    assert refused and re.search(r"not enough free disk space .*free at least 16 MB", refused), refused
    assert failed and failed.endswith("the index is as it was before this run"), failed
    # Found before the write that would not fit: Chroma is never the one to hit the full disk (it can hang then).
    assert re.search(r"No space left on device: [\d.]+ MB free in .*, the next write of \d+ chunks needs", failed)
    assert outcome["unchanged"] == [True, True] and not outcome["reserve left"]

    _resize(small_disk, 64 * 1024)  # space freed: the next run completes
    env = child_env()
    env.update({"DOCBOT_DATA_DIR": str(small_disk / "data"), "DOCBOT_CHUNK_SIZE": "200", "DOCBOT_CHUNK_OVERLAP": "0"})
    run = subprocess.run([DOCBOT, "index", str(corpus)], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("added 60, updated 1, removed 1, unchanged 1, failed 0"), run.stdout


# --- an upload from the chat page whose run fails ---------------------------------------------------


def _full_at_the_store_write(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(VectorStore, "upsert", _full_disk)


def _no_room_for_the_reserve(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline.os, "posix_fallocate", _full_disk)


def _full_at_the_write_and_the_undo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(VectorStore, "upsert", _full_disk)
    monkeypatch.setattr(VectorStore, "delete", _full_disk)


def _model_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the embedding model failed")

    monkeypatch.setattr(HashingEmbedder, "encode", fail)  # the page's embedder (upload_page)


NOT_ADDED = "The files were not added:"
UNCHANGED = "The index is unchanged: every document in it can still be asked about as before."
PARTIAL = (
    "Undoing the run failed too, so the index may hold part of these files; adding them again once the cause is fixed "
    "completes them."
)
FREE_SPACE = "Free some disk space on the server (or ask its administrator to), then add the files again."
SEE_LOG = "The server log has the details; add the files again once the cause is fixed."


@pytest.fixture(scope="module")
def upload_page(tmp_path_factory: pytest.TempPathFactory, hashing_embedder: Embedder) -> ChatPage:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("upload-fails") / "data", anonymous_role="admin", **HASHING_COVERAGE
    )
    services = build(settings, embedder=hashing_embedder)
    services.indexer.run([SEED_DOC])
    # As after earlier uploads (the folders exist): the snapshot then shows any file an upload leaves.
    settings.uploads_dir.mkdir()
    (settings.data_dir / STAGING).mkdir()
    inbox = UploadInbox(settings.data_dir / "gradio", settings.upload_cache_bytes)
    inbox.folder.mkdir()
    access = access_over(settings, services.database)
    return ChatPage(Bot(settings, services.retriever, None), settings, services.indexer, inbox, access, services.state)


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (_full_at_the_store_write, f"{NOT_ADDED} the server's disk is full. {UNCHANGED} {FREE_SPACE}"),
        (_no_room_for_the_reserve, f"{NOT_ADDED} the server's disk is full. {UNCHANGED} {FREE_SPACE}"),
        (_full_at_the_write_and_the_undo, f"{NOT_ADDED} the server's disk is full. {PARTIAL} {FREE_SPACE}"),
        (_model_fails, f"{NOT_ADDED} indexing them failed (RuntimeError). {UNCHANGED} {SEE_LOG}"),
    ],
    ids=["store write", "reserve", "write and undo", "model"],
)
def test_an_upload_whose_run_fails_says_so_and_the_page_carries_on(
    fault: Any, message: str, upload_page: ChatPage, monkeypatch: pytest.MonkeyPatch
) -> None:
    page, settings = upload_page, upload_page.settings
    name = f"harbour{fault.__name__}.txt"  # a new document for each fault
    content = f"{HARBOUR}\n\nThis copy was uploaded while testing {fault.__name__}.".encode()
    before = snapshot(settings, page.store)

    chosen = received(page.inbox, name, content)
    fault(monkeypatch)
    report = page.upload([chosen], Progress(), IN_PROCESS)  # the page's own handler, as the Add button calls it

    assert 'role="alert"' in report and html.unescape(re.sub(r"<[^>]+>", "", report)) == message
    if UNCHANGED in message:
        assert snapshot(settings, page.store) == before  # the index, and no file of the upload kept in uploads/

    monkeypatch.undo()  # the page carries on: questions are answered, and the same upload now succeeds
    *_, (_, _, sources, turns, _, _) = page.respond(
        "What did coalition forces resume because of the growing ISIS force?", [], {}, IN_PROCESS
    )
    assert "air strikes" in turns[-1].answer.text and "src-card" in sources
    again = received(page.inbox, name, content)
    added = html.unescape(re.sub(r"<[^>]+>", "", page.upload([again], Progress(), IN_PROCESS)))
    assert f"Added: {name}" in added and "You can ask about them now." in added


# --- a Chroma directory from an incompatible build ------------------------------------------------


def _garbage(chroma_dir: Path) -> None:
    (chroma_dir / "chroma.sqlite3").write_bytes(random.Random(1).randbytes(64 * 1024))


def _newer_build(chroma_dir: Path) -> None:
    """A store whose schema was migrated by a later Chroma than the one installed."""
    with sqlite3.connect(chroma_dir / "chroma.sqlite3") as db:
        db.execute("CREATE TABLE migrations (dir TEXT, version INTEGER, filename TEXT, sql TEXT, hash TEXT)")
        db.execute("INSERT INTO migrations VALUES ('sysdb', 999, '99999-future.sqlite.sql', '', '')")


@pytest.mark.parametrize("damage", [_garbage, _newer_build], ids=["garbage", "newer build"])
def test_an_incompatible_chroma_directory_is_an_error_naming_the_fix(damage: Any, settings: Settings) -> None:
    settings.chroma_dir.mkdir(parents=True)
    damage(settings.chroma_dir)
    with pytest.raises(StoreUnavailableError) as refused:
        VectorStore(settings, "sentence-transformers/all-MiniLM-L6-v2", 384)
    assert str(settings.chroma_dir) in str(refused.value) and FIX in str(refused.value)


@pytest.mark.server
@pytest.mark.parametrize("command", [["index", "docs"], ["serve"]])
def test_cli_refuses_an_incompatible_chroma_directory_in_one_line(command: list[str], tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "chroma").mkdir(parents=True)
    _newer_build(data_dir / "chroma")
    make_corpus(tmp_path / "docs")
    env = child_env()
    env.update({"DOCBOT_DATA_DIR": str(data_dir), "DOCBOT_PORT": str(free_port())})
    run = subprocess.run([DOCBOT, *command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in run.stderr, run.stderr
    assert str(data_dir / "chroma") in errors[0] and FIX in errors[0]


def test_a_full_disk_is_recognised_through_wrapped_errors() -> None:
    import errno
    import sqlite3

    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    try:
        try:
            raise sqlite3.OperationalError("database or disk is full")
        except sqlite3.OperationalError as inner:
            raise RuntimeError("upsert failed") from inner
    except RuntimeError as wrapped:
        assert is_disk_full(wrapped)
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not is_disk_full(RuntimeError("model failed"))
