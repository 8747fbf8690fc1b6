"""The page's document helpers: safe upload names, listing, removal, index times, surrounding text."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import SEED_DOC
from helpers import pools
from hypothesis import given
from hypothesis import strategies as st

from bot.config import Settings
from bot.documents.indexed import (
    UploadRefusedError,
    list_documents,
    remove_document,
    sanitise_filename,
    stitch,
    surrounding_text,
)
from bot.documents.upload_records import keep_indexed
from bot.documents.upload_staging import STAGING, stage_upload
from bot.state.database import Database
from bot.state.uploads import UploadStore
from index.embeddings import Embedder
from index.loaders import SUPPORTED_SUFFIXES
from index.pipeline import Indexer
from index.retriever import HybridRetriever
from index.store import StoredChunk, VectorStore


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("Quarterly Report (final).DOCX", "Quarterly_Report_final.docx"),
        ("../../etc/notes.txt", "notes.txt"),
        ("..\\..\\windows\\win.ini.md", "win.ini.md"),
        ("/abs/path/.hidden.md", "hidden.md"),
        ("a..b...c.html", "a.b.c.html"),
        ("naïve café.txt", "naïve_café.txt"),
        ("evil\u202egnp.txt", "evil_gnp.txt"),
        ("x" * 300 + ".txt", "x" * 96 + ".txt"),
    ],
)
def test_sanitise_filename_keeps_a_safe_basename(given: str, expected: str) -> None:
    assert sanitise_filename(given) == expected


@pytest.mark.parametrize("name", ["run.exe", "archive.tar.gz", "noextension", "", "../..", "....txt", "/.txt"])
def test_sanitise_filename_refuses_unsafe_or_unsupported(name: str) -> None:
    with pytest.raises(UploadRefusedError):
        sanitise_filename(name)


@given(st.text(max_size=80), st.sampled_from(sorted(SUPPORTED_SUFFIXES)))
def test_sanitised_names_never_leave_the_folder(stem: str, suffix: str) -> None:
    try:
        name = sanitise_filename(stem + suffix)
    except UploadRefusedError:
        return
    assert "/" not in name and "\\" not in name and ".." not in name
    assert not name.startswith((".", "-")) and name.endswith(suffix)
    assert Path(name).name == name and len(name) <= 100


def test_staged_upload_checks_size_and_keeps_the_previous_version_until_kept(
    settings: Settings, tmp_path: Path
) -> None:
    browser_file = tmp_path / "incoming" / "My Notes.txt"
    browser_file.parent.mkdir()
    browser_file.write_text("Some notes.")
    with browser_file.open("rb") as source:
        first = stage_upload(source, "My_Notes.txt", settings)
    assert first.target == settings.uploads_dir.resolve() / "My_Notes.txt" and first.previous is None
    assert first.target.read_text() == "Some notes."
    first.keep()

    browser_file.write_text("Better notes.")
    with browser_file.open("rb") as source:
        second = stage_upload(source, "My_Notes.txt", settings)
    assert second.target.read_text() == "Better notes." and second.previous is not None
    second.undo()  # its indexing failed: the previous version is back
    assert first.target.read_text() == "Some notes." and not second.previous.exists()
    with browser_file.open("rb") as source:
        third = stage_upload(source, "My_Notes.txt", settings)
    third.keep()
    assert third.target.read_text() == "Better notes." and not list((settings.data_dir / STAGING).iterdir())

    small = settings.model_copy(update={"max_upload_bytes": 5})
    with browser_file.open("rb") as source, pytest.raises(UploadRefusedError, match="over the upload limit"):
        stage_upload(source, "notes.txt", small)
    empty = tmp_path / "incoming" / "empty.txt"
    empty.write_bytes(b"")
    with empty.open("rb") as source, pytest.raises(UploadRefusedError, match="empty"):
        stage_upload(source, "empty.txt", settings)


def _chunk(start: int, text: str) -> StoredChunk:
    return StoredChunk(f"id{start}", text, {"source": "s.txt", "start": start, "end": start + len(text)})


def test_stitch_rebuilds_overlapping_chunks_with_exact_offsets() -> None:
    document = "Alpha beta gamma.\n\nDelta epsilon zeta. Eta theta iota."
    chunks = [_chunk(0, document[0:17]), _chunk(19, document[19:38]), _chunk(30, document[30:])]
    begin, text = stitch(reversed(chunks))
    assert begin == 0 and text == document
    assert stitch([]) == (0, "")


def test_listing_removal_and_surrounding_text_on_a_real_index(
    settings: Settings, hashing_embedder: Embedder, tmp_path: Path, state_db: Database
) -> None:
    uploads = UploadStore(state_db)
    store = VectorStore(settings, hashing_embedder.name, hashing_embedder.dimension)
    retriever = HybridRetriever(settings=settings, embedder=hashing_embedder, store=store)
    settings.uploads_dir.mkdir(parents=True)
    uploaded = settings.uploads_dir.resolve() / SEED_DOC.name
    shutil.copyfile(SEED_DOC, uploaded)
    other = tmp_path / "other" / "plain.txt"
    other.parent.mkdir()
    other.write_text("A short note about the <b>harbour</b> ferry timetable.")
    Indexer(settings, hashing_embedder, store, pools().parse).run([uploaded, other])
    keep_indexed(store, settings, uploads, [SEED_DOC.name], "ann")

    documents = {d.source: d for d in list_documents(store, settings, uploads)}
    assert set(documents) == {SEED_DOC.name, "plain.txt"}
    seed = documents[SEED_DOC.name]
    assert seed.uploaded and seed.chunks > 1 and seed.owner == "ann" and seed.indexed_at
    assert not documents["plain.txt"].uploaded and documents["plain.txt"].indexed_at is None

    retriever.refresh()
    from bot.answer.chat import Bot

    answer = Bot(settings, retriever, None).ask("Who is the new leader of the Islamic State group?")
    citation = answer.citations[0]
    context = surrounding_text(store, citation, window=300)
    lo, hi = context.passage
    assert context.text[lo:hi] == citation.passage
    assert context.text[context.quote[0] : context.quote[1]] == citation.quote
    assert len(context.text) <= len(citation.passage) + 2 * 300

    removed = remove_document(store, settings, seed, uploads)
    assert removed == seed.chunks
    assert not uploaded.exists()
    assert [d.source for d in list_documents(store, settings, uploads)] == ["plain.txt"]
    assert uploads.records(settings.collection) == {}
    # The answer still shows its passage when the document has gone from the index.
    gone = surrounding_text(store, citation)
    assert gone.text == citation.passage
