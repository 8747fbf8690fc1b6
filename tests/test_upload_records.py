"""Uploads kept in the state database (issue #18): records and originals written, replaced and removed; the
one-time import of an earlier ``documents.json``; and two "replicas" (one store, one database, each its own uploads
folder) that see the same owner, show the same original, and replace and remove each other's uploads.

Fast tier: SQLite, embedded Chroma, the hashing embedder.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from functools import partial
from pathlib import Path

import pytest
from answer_fixtures import clean_settings
from conftest import HASHING_COVERAGE, SEED_DOC
from helpers import app_client, pools

from app import State, build, import_upload_records
from bench.pdfs import WRAPPED, harbour_report_pdf
from bot.answer.citations import view_path
from bot.config import Settings
from bot.documents.indexed import document_key, list_documents, remove_document
from bot.documents.originals import Originals
from bot.documents.upload_records import LEGACY_RECORDS, keep_indexed
from bot.state.database import Database
from bot.state.uploads import NewUpload, UploadStore
from bot.view.evidence import evidence
from bot.view.texts import ViewTexts
from index.embeddings import Embedder
from index.pipeline import Indexer
from index.store import VectorStore

NOTE = b"The Skerrin lighthouse keeper hands over the lamp watch every Thursday at noon.\n"
KEY = "uploads-test-key-41d9"
NEWER = b"The Skerrin lighthouse keeper hands over the lamp watch every Friday at dawn.\n"


def test_records_and_originals_are_written_replaced_and_removed(state_db: Database) -> None:
    uploads = UploadStore(state_db)
    uploads.keep("docbot", [NewUpload("notes.txt", "/a/uploads", NOTE, "ann")])
    first = uploads.get("docbot", "notes.txt")
    assert first is not None and (first.owner, first.root, first.size) == ("ann", "/a/uploads", len(NOTE))
    assert first.indexed_at and uploads.original("docbot", "notes.txt", first.content_hash) == NOTE
    assert uploads.get("docbot.hr", "notes.txt") is None, "a record belongs to one collection"

    uploads.keep("docbot", [NewUpload("notes.txt", "/b/uploads", NEWER, "ann", "2026-01-02T03:04:05+00:00")])
    second = uploads.records("docbot")["notes.txt"]
    assert second.root == "/b/uploads" and second.indexed_at == "2026-01-02T03:04:05+00:00"
    assert second.content_hash != first.content_hash
    assert uploads.original("docbot", "notes.txt", first.content_hash) is None, "the replaced version is gone"
    assert uploads.original("docbot", "notes.txt", second.content_hash) == NEWER

    with pytest.raises(RuntimeError), uploads.forgetting("docbot", "notes.txt"):
        raise RuntimeError("deleting the chunks failed")
    assert set(uploads.records("docbot")) == {"notes.txt"}, "the record went without its chunks"
    with uploads.forgetting("docbot", "notes.txt") as gone:
        assert gone == [1]
    assert uploads.records("docbot") == {}

    uploads.keep("docbot.hr", [NewUpload("a.txt", "/r", NOTE, "ann"), NewUpload("b.txt", "/r", NEWER, None)])
    uploads.rename_collection("docbot.hr", "docbot.people")  # docbot collections rename hr people
    assert set(uploads.records("docbot.people")) == {"a.txt", "b.txt"} and uploads.records("docbot.hr") == {}
    assert uploads.forget_collection("docbot.people") == 2 and uploads.records("docbot.people") == {}


def test_an_earlier_documents_json_is_imported_once(settings: Settings, state_db: Database) -> None:
    folder = settings.uploads_dir.resolve()
    folder.mkdir(parents=True)
    (folder / "ann.txt").write_bytes(NOTE)
    (folder / "old.md").write_bytes(b"# Old\n\nWritten before owners were kept.\n")
    (folder / "stray.txt").write_bytes(b"no record names this file")
    records = {
        document_key(str(folder), "ann.txt"): {"indexed_at": "2025-05-06T07:08:09+00:00", "owner": "ann"},
        document_key(str(folder), "old.md"): "2024-01-01T00:00:00+00:00",
        document_key(str(folder), "gone.txt"): {"indexed_at": "2025-01-01T00:00:00+00:00", "owner": "bob"},
    }
    (settings.index_home / LEGACY_RECORDS).write_text(json.dumps(records))

    import_upload_records(settings, State(settings, state_db))
    uploads = UploadStore(state_db)
    kept = uploads.records(settings.collection)
    assert set(kept) == {"ann.txt", "old.md"}
    assert (kept["ann.txt"].owner, kept["ann.txt"].indexed_at) == ("ann", "2025-05-06T07:08:09+00:00")
    assert kept["old.md"].owner is None and kept["ann.txt"].root == str(folder)
    assert uploads.original(settings.collection, "ann.txt", kept["ann.txt"].content_hash) == NOTE

    with uploads.forgetting(settings.collection, "old.md"):  # removed since: a second start must not bring it back
        pass
    import_upload_records(settings, State(settings, state_db))
    assert set(uploads.records(settings.collection)) == {"ann.txt"}


def _receive(settings: Settings, store: VectorStore, uploads: UploadStore, embedder: Embedder, data: bytes) -> None:
    """What a replica's page does with an upload: the file in its uploads folder, indexed, then kept."""
    settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    (settings.uploads_dir / "rota.txt").write_bytes(data)
    report = Indexer(settings, embedder, store, pools().parse).run([settings.uploads_dir / "rota.txt"])
    assert not report.failed, report.summary()
    keep_indexed(store, settings, uploads, ["rota.txt"], "ann")


@pytest.fixture
def replicas(tmp_path: Path) -> tuple[Settings, Settings]:
    """Two replicas' settings over one store and one database, each with its own uploads folder."""
    data = tmp_path / "shared"
    return (
        Settings(data_dir=data, index_dir=tmp_path / "a"),
        Settings(data_dir=data, index_dir=tmp_path / "b"),
    )


def received_by_a(replicas: tuple[Settings, Settings], embedder: Embedder) -> tuple[VectorStore, Database, UploadStore]:
    """The replicas' one store and one database, once replica A received rota.txt (:data:`NOTE`)."""
    a, _ = replicas
    store = VectorStore(a, embedder.name, embedder.dimension)
    database = Database.for_settings(a)
    uploads = UploadStore(database)
    _receive(a, store, uploads, embedder, NOTE)
    return store, database, uploads


def test_an_upload_received_by_one_replica_is_the_same_on_the_other(
    replicas: tuple[Settings, Settings], hashing_embedder: Embedder, tmp_path: Path
) -> None:
    a, b = replicas
    store, database, uploads = received_by_a(replicas, hashing_embedder)

    (listed,) = list_documents(store, b, uploads)
    assert listed.uploaded and listed.owner == "ann" and listed.indexed_at, listed
    record = uploads.get(b.collection, "rota.txt")  # what B's page checks before a replacement
    assert record is not None and record.owner == "ann"

    # B has no such file: the viewer shows the original from the database, the cited sentence in it
    (a.uploads_dir / "rota.txt").unlink()
    chunk = store.by_source("rota.txt")[0]
    originals = Originals(uploads, tmp_path / "b-data")
    texts = ViewTexts.from_settings(b, pools().parse)
    shown = evidence(store, b, chunk.id, drawable=True, texts=texts, original=partial(originals.file, b.collection))
    assert shown.file is not None and shown.file.read_bytes() == NOTE and shown.notice is None
    assert "every Thursday at noon" in shown.text
    without = evidence(store, b, chunk.id, drawable=True, texts=texts)
    assert without.file is None and without.notice and "Thursday" in without.text  # the index's text, as before

    # ann replaces it through B: one document again (B's), the previous version's chunks gone
    _receive(b, store, uploads, hashing_embedder, NEWER)
    (replaced,) = list_documents(store, a, uploads)
    assert replaced.root == str(b.uploads_dir.resolve()) and replaced.owner == "ann"
    assert all("Friday" in c.text for c in store.by_source("rota.txt"))

    # and removes it through A: chunks, record and original go
    assert remove_document(store, a, replaced, uploads) > 0
    assert list_documents(store, b, uploads) == [] and uploads.records(a.collection) == {}
    assert (b.uploads_dir / "rota.txt").exists(), "B's own copy stays on B's disk (A cannot reach it)"
    database.close()


def test_a_seed_document_indexed_by_the_cli_is_not_an_upload(
    settings: Settings, hashing_embedder: Embedder, state_db: Database, tmp_path: Path
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    shutil.copyfile(SEED_DOC, folder / SEED_DOC.name)
    store = VectorStore(settings, hashing_embedder.name, hashing_embedder.dimension)
    Indexer(settings, hashing_embedder, store, pools().parse).run([folder])
    uploads = UploadStore(state_db)
    # an upload of the same name elsewhere does not make the CLI's document an upload, nor give it an owner
    uploads.keep(settings.collection, [NewUpload(SEED_DOC.name, str(settings.uploads_dir.resolve()), NOTE, "ann")])
    (listed,) = list_documents(store, settings, uploads)
    assert not listed.uploaded and listed.owner is None
    chunk = store.by_source(SEED_DOC.name)[0]
    originals = Originals(uploads, settings.data_dir)
    assert originals.file(settings.collection, chunk) is None


def test_the_viewer_draws_an_uploaded_pdf_from_the_database_when_the_file_is_gone(
    tmp_path: Path, hashing_embedder: Embedder
) -> None:
    """A replica without the file (here: the file taken away) shows the cited PDF page drawn, the sentence boxed."""
    settings = clean_settings(tmp_path / "data", api_keys=KEY, **HASHING_COVERAGE)
    services = build(settings, embedder=hashing_embedder)
    settings.uploads_dir.mkdir(parents=True)
    pdf = harbour_report_pdf(settings.uploads_dir / "harbour-report.pdf")
    assert not services.indexer.run([pdf]).failed
    keep_indexed(services.store, settings, UploadStore(services.database), [pdf.name], "ann")
    pdf.unlink()

    chunk = next(c for c in services.store.by_source(pdf.name) if WRAPPED[:40] in c.text.replace("\n", " "))
    lo = int(chunk.metadata["start"]) + chunk.text.replace("\n", " ").index(WRAPPED)
    with app_client(services, key=KEY) as web:
        view = web.get(view_path(chunk.id, lo, lo + len(WRAPPED)))
        assert view.status_code == 200, view.text
        assert "view-notice" not in view.text and 'class="quote" id="cited"' in view.text, view.text
        picture = re.search(r'<img src="([^"]+)"', view.text)
        assert picture is not None
        drawn = web.get(f"/view/{html.unescape(picture.group(1))}")
        assert drawn.status_code == 200 and drawn.content.startswith(b"\x89PNG"), drawn.text[:200]
    assert [p.suffix for p in (settings.data_dir / "originals").iterdir()] == [".pdf"]
