"""What uploads leave on a replica's own disk once their document went through another replica (or was replaced
there): the sweep deletes those files and the copies of originals no upload keeps, and nothing a document still
uses, the CLI indexed or an upload is being added with.

Fast tier: SQLite, embedded Chroma, the hashing embedder. The live test with two ``docbot serve`` replicas on a
Chroma server and PostgreSQL is in tests/test_replicas_live.py.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from answer_fixtures import clean_settings
from conftest import HASHING_COVERAGE
from helpers import pools
from test_upload_records import NEWER, NOTE, _receive, received_by_a, replicas  # noqa: F401 (a fixture)

from app import build_library
from bot.config import Settings
from bot.documents.indexed import list_documents, remove_document
from bot.documents.originals import Originals
from bot.documents.upload_sweep import start_sweeping, sweep_uploads
from bot.state.uploads import UploadStore
from index.embeddings import Embedder
from index.pipeline import Indexer

HOUR = 3600.0
SWEEPER = "docbot-upload-sweep"


def _age(*paths: Path) -> None:
    """Make these files look written two hours ago."""
    then = time.time() - 2 * HOUR
    for path in paths:
        os.utime(path, (then, then))


def test_a_replica_sweeps_the_files_an_upload_left_once_its_document_went_elsewhere(
    replicas: tuple[Settings, Settings],  # noqa: F811 (the fixture)
    hashing_embedder: Embedder,
    tmp_path: Path,
) -> None:
    a, b = replicas
    store, database, uploads = received_by_a(replicas, hashing_embedder)
    cli = a.uploads_dir / "indexed-by-the-cli.txt"  # indexed from the folder with no upload record
    cli.write_bytes(b"The relief keeper logs the barometer reading at every change of watch.\n")
    assert not Indexer(a, hashing_embedder, store, pools().parse).run([cli]).failed
    arriving = a.uploads_dir / "arriving.txt"  # an upload not indexed yet: neither passages nor a record
    arriving.write_bytes(NEWER)
    _age(a.uploads_dir / "rota.txt", cli)
    assert sweep_uploads(store, a, uploads, HOUR) == [], "a recorded upload, the CLI's file and a new one stay"
    _age(arriving)
    assert sweep_uploads(store, a, uploads, HOUR) == ["arriving.txt"], "an old file nothing names goes"

    # B shows the original from the database (a copy on B's disk), then ann replaces the file through B
    originals = Originals(uploads, tmp_path / "b-data")
    assert originals.file(b.collection, store.by_source("rota.txt")[0]) is not None
    assert originals.drop_unrecorded() == 0, "the copy of a kept version stays"
    _receive(b, store, uploads, hashing_embedder, NEWER)
    _age(a.uploads_dir / "rota.txt", b.uploads_dir / "rota.txt")
    assert sweep_uploads(store, a, uploads, HOUR) == ["rota.txt"], "A's copy of the replaced version stays"
    assert sweep_uploads(store, b, uploads, HOUR) == [] and (b.uploads_dir / "rota.txt").read_bytes() == NEWER
    assert originals.drop_unrecorded() == 1 and not list(originals.folder.iterdir()), "a replaced version's copy"

    # and removes it through A: B's file goes at B's next sweep; the CLI's file stays
    (document,) = [d for d in list_documents(store, a, uploads) if d.source == "rota.txt"]
    assert remove_document(store, a, document, uploads) > 0
    assert sweep_uploads(store, b, uploads, HOUR) == ["rota.txt"]
    assert sorted(p.name for p in a.uploads_dir.iterdir()) == [cli.name]
    assert [d.source for d in list_documents(store, b, uploads)] == [cli.name]
    database.close()


def test_a_server_sweeps_at_start_and_then_every_interval(tmp_path: Path, hashing_embedder: Embedder) -> None:
    settings = clean_settings(
        tmp_path / "data", upload_sweep_interval_s=0.2, upload_sweep_grace_s=HOUR, **HASHING_COVERAGE
    )
    library = build_library(settings, embedder=hashing_embedder)
    uploads = UploadStore(library.services("default").database)
    settings.uploads_dir.mkdir(parents=True)
    left = settings.uploads_dir / "left-behind.txt"
    left.write_bytes(NOTE)
    _age(left)
    stop = start_sweeping(library, uploads, Originals(uploads, settings.data_dir), settings)
    try:
        deadline = time.monotonic() + 10
        while left.exists():
            assert time.monotonic() < deadline, "the file was not swept within 10 s"
            time.sleep(0.05)
        again = settings.uploads_dir / "left-later.txt"  # a later pass
        again.write_bytes(NOTE)
        _age(again)
        while again.exists():
            assert time.monotonic() < deadline, "the second pass did not come"
            time.sleep(0.05)
    finally:
        stop.set()
    before = {t for t in threading.enumerate() if t.name == SWEEPER}
    never = clean_settings(tmp_path / "off", upload_sweep_interval_s=0)
    start_sweeping(library, uploads, Originals(uploads, settings.data_dir), never)
    assert {t for t in threading.enumerate() if t.name == SWEEPER} <= before, "0 starts no sweeping"
