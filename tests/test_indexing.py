"""Indexing with the real model and a real Chroma: metadata, incremental runs, bad files, BM25 kept in step."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from helpers import pools
from live import child_env
from test_loaders import write_docx

from app import build
from bench.pdfs import text_pdf
from bot.config import Settings
from index.chunking import Chunker
from index.embeddings import Embedder
from index.errors import IndexMismatchError, LexicalIndexError
from index.lexical import CURRENT, K1, B, LexicalIndex, sync_lexical
from index.loaders import load_file
from index.pipeline import Indexer, IndexReport
from index.store import VectorStore

DOCBOT = str(Path(sys.executable).with_name("docbot"))

TITLES = {
    "tides.txt": "tides",
    "guides/lighthouse.md": "Keeping a Lighthouse",
    "guides/ferry.html": "Ferry Timetable",
    "reports/annual.pdf": "Annual Harbour Report",
    "reports/harbour.docx": "Quarterly Harbour Report",
}


def make_corpus(folder: Path) -> Path:
    """One file of each kind, two of them in subfolders; a two-page PDF."""
    (folder / "guides").mkdir(parents=True)
    (folder / "reports").mkdir()
    (folder / "tides.txt").write_text(
        "The tide rises and falls twice a day in the bay.\n\n"
        + "Spring tides come with the full and new moon, neap tides with the quarter moons. " * 12
    )
    (folder / "guides" / "lighthouse.md").write_text(
        "# Keeping a Lighthouse\n\nThe keeper trims the wick at dusk.\n\n"
        + "Fog signals sound every thirty seconds when visibility drops below a mile. " * 10
    )
    (folder / "guides" / "ferry.html").write_text(
        "<html><head><title>Ferry Timetable</title><script>track()</script></head><body>"
        "<nav>menu</nav><p>The morning ferry leaves the north pier at seven.</p>"
        "<p>On Sundays the first crossing is at nine, and cyclists board first.</p></body></html>"
    )
    text_pdf(
        folder / "reports" / "annual.pdf",
        [["Cargo volumes grew by a tenth this year."], ["The breakwater repairs will finish in spring."]],
        title="Annual Harbour Report",
    )
    write_docx(folder / "reports" / "harbour.docx")
    return folder


def open_store(settings: Settings, embedder: Embedder, *, rebuild: bool = False) -> VectorStore:
    return VectorStore(settings, embedder.name, embedder.dimension, rebuild=rebuild)


def index(settings: Settings, embedder: Embedder, *paths: Path) -> IndexReport:
    report = Indexer(settings, embedder, open_store(settings, embedder), pools().parse).run(list(paths))
    assert_bm25_matches_store(settings, open_store(settings, embedder))
    return report


def stored(store: VectorStore) -> dict[str, dict[str, Any]]:
    records: dict[str, dict[str, Any]] = {}
    for chunk_id, text, meta in store.iter_all(with_text=True):
        assert chunk_id not in records, f"duplicate id {chunk_id}"
        records[chunk_id] = {**meta, "text": text}
    return records


def ids_by_source(store: VectorStore) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for chunk_id, meta in stored(store).items():
        out.setdefault(meta["source"], set()).add(chunk_id)
    return out


def assert_bm25_matches_store(settings: Settings, store: VectorStore) -> None:
    lexical = LexicalIndex.load(settings.lexical_dir)
    store_ids = store.ids()
    assert len(lexical.ids) == len(set(lexical.ids))
    assert sorted(lexical.ids) == sorted(store_ids)


# --- the index itself --------------------------------------------------------------------------


def test_metadata_in_chroma(settings: Settings, hashing_embedder: Embedder, tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "docs")
    report = index(settings, hashing_embedder, corpus)
    assert sorted(report.added) == sorted(TITLES)
    assert report.failed == [] and report.chunks_embedded > len(TITLES)

    store = open_store(settings, hashing_embedder)
    records = stored(store)
    assert len(records) == report.chunks_embedded
    per_source = Counter(meta["source"] for meta in records.values())
    assert set(per_source) == set(TITLES)
    for meta in records.values():
        path = corpus / meta["source"]
        loaded = load_file(path, meta["source"], max_bytes=settings.max_file_bytes)
        document = next(d for d in loaded.documents if (d.page or 0) == meta["page"])
        assert meta["title"] == TITLES[meta["source"]]
        assert meta["content_hash"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert meta["root"] == str(corpus.resolve())
        assert meta["n_chunks"] == per_source[meta["source"]]
        assert document.text[meta["start"] : meta["end"]] == meta["text"]
    pages = sorted(m["page"] for m in records.values() if m["source"] == "reports/annual.pdf")
    assert pages == [1, 2]
    assert {m["page"] for m in records.values() if m["source"] != "reports/annual.pdf"} == {0}
    assert not any("track()" in m["text"] or "menu" in m["text"] for m in records.values())

    # The vectors are the model's: each chunk is its own nearest neighbour.
    for chunk_id, meta in list(records.items())[:5]:
        (hit,) = store.query(hashing_embedder.encode([meta["text"]])[0], 1)
        assert hit.chunk.id == chunk_id and hit.similarity > 0.99


def test_incremental_runs(settings: Settings, hashing_embedder: Embedder, tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "docs")
    index(settings, hashing_embedder, corpus)
    before = ids_by_source(open_store(settings, hashing_embedder))

    again = index(settings, hashing_embedder, corpus)
    assert again.chunks_embedded == 0 and not again.changed
    assert sorted(again.unchanged) == sorted(TITLES) and again.failed == []

    # Change one file: only it is embedded again; everything else keeps its chunks.
    tides = corpus / "tides.txt"
    tides.write_text("Tidal bores surge up the estuary at the equinox.\n\n" + tides.read_text())
    changed = index(settings, hashing_embedder, corpus)
    new_version = load_file(tides, "tides.txt", max_bytes=settings.max_file_bytes)
    expected = Chunker(settings.chunk_size, settings.chunk_overlap).split(
        new_version.documents[0], new_version.content_hash, root=str(corpus.resolve())
    )
    assert changed.updated == ["tides.txt"] and changed.added == [] and changed.removed == []
    assert changed.chunks_embedded == len(expected)
    after = ids_by_source(open_store(settings, hashing_embedder))
    assert after["tides.txt"] == {c.id for c in expected}
    assert {s: i for s, i in after.items() if s != "tides.txt"} == {s: i for s, i in before.items() if s != "tides.txt"}
    hashes = {
        m["content_hash"] for m in stored(open_store(settings, hashing_embedder)).values() if m["source"] == "tides.txt"
    }
    assert hashes == {new_version.content_hash}

    # Delete one file: its chunks go.
    (corpus / "guides" / "ferry.html").unlink()
    removed = index(settings, hashing_embedder, corpus)
    assert removed.removed == ["guides/ferry.html"] and removed.chunks_embedded == 0
    assert "guides/ferry.html" not in ids_by_source(open_store(settings, hashing_embedder))

    # Add one: it comes in, and BM25 finds it.
    (corpus / "guides" / "moorings.txt").write_text("Visitors' moorings are the yellow buoys past the breakwater.")
    added = index(settings, hashing_embedder, corpus)
    assert added.added == ["guides/moorings.txt"] and added.chunks_embedded == 1
    hits = LexicalIndex.load(settings.lexical_dir).search("yellow buoys", 3)
    (moorings_id,) = ids_by_source(open_store(settings, hashing_embedder))["guides/moorings.txt"]
    assert hits[0].id == moorings_id


def test_bad_files_are_reported_and_nothing_indexed_is_lost(
    settings: Settings, hashing_embedder: Embedder, tmp_path: Path
) -> None:
    corpus = make_corpus(tmp_path / "docs")
    index(settings, hashing_embedder, corpus)
    before = ids_by_source(open_store(settings, hashing_embedder))

    (corpus / "reports" / "annual.pdf").write_bytes(b"%PDF-1.7\n" + os.urandom(4000))  # indexed, now corrupt
    (corpus / "empty.md").write_bytes(b"")
    (corpus / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + os.urandom(500))
    (corpus / "dangling.txt").symlink_to(corpus / "nowhere.txt")
    (corpus / "notes.txt").write_text("A good new file about the harbour master's log.")
    (tmp_path / "table.xlsx").write_bytes(b"PK\x03\x04")
    report = index(settings, hashing_embedder, corpus, tmp_path / "missing-folder", tmp_path / "table.xlsx")

    failed = dict(report.failed)
    assert set(failed) == {
        "reports/annual.pdf",
        "empty.md",
        "photo.txt",
        "dangling.txt",
        str(tmp_path / "missing-folder"),
        str(tmp_path / "table.xlsx"),
    }
    assert failed["reports/annual.pdf"].startswith("corrupt or unreadable PDF")
    assert failed["empty.md"] == "empty file"
    assert failed["photo.txt"].startswith("binary data")
    assert failed["dangling.txt"].startswith("cannot read the file")
    assert failed[str(tmp_path / "missing-folder")] == "no such file or folder"
    assert failed[str(tmp_path / "table.xlsx")].startswith("unsupported file type .xlsx")
    assert all("\n" not in reason for reason in failed.values())
    assert report.added == ["notes.txt"] and report.removed == [] and report.updated == []
    assert sorted(report.unchanged) == sorted(set(TITLES) - {"reports/annual.pdf"})

    after = ids_by_source(open_store(settings, hashing_embedder))
    assert after["reports/annual.pdf"] == before["reports/annual.pdf"]  # the old version stays searchable
    assert {s: i for s, i in after.items() if s != "notes.txt"} == before
    assert "missing" in IndexReport(failed=[("x.pdf", "missing")]).summary()


def test_same_file_name_in_two_folders(settings: Settings, hashing_embedder: Embedder, tmp_path: Path) -> None:
    text = "The harbour office opens at eight and closes at five.\n\n" * 3
    for name in ("team-a", "team-b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "hours.txt").write_text(text)
    first = index(settings, hashing_embedder, tmp_path / "team-a", tmp_path / "team-b")
    assert first.added == ["hours.txt", "hours.txt"]
    roots = Counter(m["root"] for m in stored(open_store(settings, hashing_embedder)).values())
    assert roots == {str(tmp_path / "team-a"): 1, str(tmp_path / "team-b"): 1}
    second = index(settings, hashing_embedder, tmp_path / "team-a", tmp_path / "team-b")
    assert second.unchanged == ["hours.txt", "hours.txt"] and second.chunks_embedded == 0


def test_files_named_twice_are_indexed_once(settings: Settings, hashing_embedder: Embedder, tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "docs")
    inside = [corpus / "tides.txt", corpus / "reports" / "annual.pdf", corpus / "guides"]
    report = index(settings, hashing_embedder, *inside, corpus, corpus)
    assert sorted(report.added) == sorted(TITLES)
    assert {m["root"] for m in stored(open_store(settings, hashing_embedder)).values()} == {str(corpus.resolve())}
    again = index(settings, hashing_embedder, corpus / "guides", corpus)
    assert sorted(again.unchanged) == sorted(TITLES) and not again.changed


def test_index_built_with_another_model(settings: Settings, hashing_embedder: Embedder, tmp_path: Path) -> None:
    VectorStore(settings, "other-model", 384)
    with pytest.raises(IndexMismatchError, match=r"built with 'other-model'.*docbot index --rebuild"):
        open_store(settings, hashing_embedder)
    store = open_store(settings, hashing_embedder, rebuild=True)
    assert store.count() == 0
    report = index(settings, hashing_embedder, make_corpus(tmp_path / "docs"))
    assert len(report.added) == len(TITLES)


# --- BM25 beside the store ---------------------------------------------------------------------


def _damage(folder: Path, how: str) -> None:
    live = folder / (folder / CURRENT).read_text().strip()
    if how == "folder deleted":
        shutil.rmtree(folder)
    elif how == "pointer garbled":
        (folder / CURRENT).write_text("not-a-fingerprint\n")
    elif how == "pointer missing":
        (folder / CURRENT).unlink()
    elif how == "ids edited":
        ids = json.loads((live / "ids.json").read_text())
        (live / "ids.json").write_text(json.dumps(ids[:-1]))
    elif how == "matrix truncated":
        matrix = next(live.glob("data*.npy"))
        matrix.write_bytes(matrix.read_bytes()[:40])
    elif how == "vocabulary garbled":
        (live / "vocab.index.json").write_text("{not json")


@pytest.mark.parametrize(
    "how",
    ["folder deleted", "pointer garbled", "pointer missing", "ids edited", "matrix truncated", "vocabulary garbled"],
)
def test_damaged_bm25_is_detected_and_rebuilt(
    settings: Settings, hashing_embedder: Embedder, tmp_path: Path, how: str
) -> None:
    index(settings, hashing_embedder, make_corpus(tmp_path / "docs"))
    store = open_store(settings, hashing_embedder)
    _damage(settings.lexical_dir, how)
    with pytest.raises(LexicalIndexError):
        LexicalIndex.load(settings.lexical_dir)

    retriever = build(settings, embedder=hashing_embedder).retriever
    assert_bm25_matches_store(settings, store)
    assert retriever.search("When does the morning ferry leave?").passages[0].source == "guides/ferry.html"
    (hit, *_) = LexicalIndex.load(settings.lexical_dir).search("breakwater repairs", 3)
    assert store.get([hit.id])[0].source == "reports/annual.pdf"


def test_bm25_out_of_step_with_the_store_is_rebuilt(
    settings: Settings, hashing_embedder: Embedder, tmp_path: Path
) -> None:
    corpus = make_corpus(tmp_path / "docs")
    index(settings, hashing_embedder, corpus)
    store = open_store(settings, hashing_embedder)
    gone = next(iter(ids_by_source(store)["tides.txt"]))
    store.delete([gone])  # behind the BM25 side's back: its files are intact but stale
    stale = LexicalIndex.load(settings.lexical_dir)
    assert gone in stale.ids
    fresh = sync_lexical(store, settings.lexical_dir)
    assert gone not in fresh.ids and sorted(fresh.ids) == sorted(store.ids())
    # The next index run notices the hole (tides.txt is incomplete) and repairs both sides.
    report = index(settings, hashing_embedder, corpus)
    assert report.updated == ["tides.txt"]
    assert gone in store.ids()


def test_bm25_scored_with_other_parameters_is_rebuilt_once(
    settings: Settings, hashing_embedder: Embedder, tmp_path: Path
) -> None:
    """An index whose BM25 side was scored with other (k1, b), by an older docbot, is rescored from the stored
    texts when opened; the chunks and their ids stay as they are."""
    index(settings, hashing_embedder, make_corpus(tmp_path / "docs"))
    store = open_store(settings, hashing_embedder)
    chunks = list(store.iter_all(with_text=True))
    old = LexicalIndex.build([i for i, _, _ in chunks], [t or "" for _, t, _ in chunks], k1=1.5, b=0.75)
    old.save(settings.lexical_dir)
    assert LexicalIndex.load(settings.lexical_dir).parameters == (1.5, 0.75)
    fresh = sync_lexical(store, settings.lexical_dir)
    assert fresh.parameters == (K1, B) and fresh.fingerprint == old.fingerprint
    assert LexicalIndex.load(settings.lexical_dir).parameters == (K1, B)
    assert_bm25_matches_store(settings, store)
    rescored = LexicalIndex.build([i for i, _, _ in chunks], [t or "" for _, t, _ in chunks])
    for query in ("breakwater repairs", "When does the morning ferry leave?"):
        assert fresh.search(query, 5) == rescored.search(query, 5) != old.search(query, 5)


# --- the command line --------------------------------------------------------------------------


def docbot(cwd: Path, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = child_env()
    env["DOCBOT_DATA_DIR"] = str(data_dir)
    return subprocess.run([DOCBOT, "index", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.server
def test_cli_index_incremental_and_strict(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "docs")
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a PDF")
    data_dir = tmp_path / "data"

    first = docbot(tmp_path, data_dir, "docs")
    assert first.returncode == 0, first.stderr
    lines = first.stdout.strip().splitlines()
    assert lines[0].startswith("added 5, updated 0, removed 0, unchanged 0, failed 1 (")
    assert lines[1].startswith("  failed: broken.pdf: corrupt or unreadable PDF (")

    (corpus / "tides.txt").write_text("Only one short line about tides now.")
    (corpus / "guides" / "ferry.html").unlink()
    second = docbot(tmp_path, data_dir, "docs", "--strict")
    assert second.returncode == 1
    assert second.stdout.startswith("added 0, updated 1, removed 1, unchanged 3, failed 1 (1 chunks embedded in ")
    assert "failed: broken.pdf" in second.stdout

    settings = Settings(data_dir=data_dir)
    store = VectorStore(settings, "sentence-transformers/all-MiniLM-L6-v2", 384)
    records = stored(store)
    assert {m["source"] for m in records.values()} == set(TITLES) - {"guides/ferry.html"}
    assert [m["text"] for m in records.values() if m["source"] == "tides.txt"] == [
        "Only one short line about tides now."
    ]
    assert_bm25_matches_store(settings, store)


@pytest.mark.server
def test_cli_other_model_is_a_clear_error_and_rebuild_fixes_it(tmp_path: Path) -> None:
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "note.txt").write_text("The harbour master keeps the tide tables.")
    data_dir = tmp_path / "data"
    VectorStore(Settings(data_dir=data_dir), "other-model", 384)

    refused = docbot(tmp_path, data_dir)  # no path: seeds/ in the working directory
    assert refused.returncode != 0
    assert "other-model" in refused.stderr and "docbot index --rebuild" in refused.stderr
    assert "Traceback" not in refused.stderr

    rebuilt = docbot(tmp_path, data_dir, "--rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert rebuilt.stdout.startswith("added 1, updated 0, removed 0, unchanged 0, failed 0 (1 chunks embedded")
    settings = Settings(data_dir=data_dir)
    store = VectorStore(settings, "sentence-transformers/all-MiniLM-L6-v2", 384)
    assert [m["source"] for m in stored(store).values()] == ["note.txt"]
    assert_bm25_matches_store(settings, store)
