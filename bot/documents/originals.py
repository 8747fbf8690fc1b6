"""Uploaded originals read from the state database, for a replica that does not have the file on its disk (it was
uploaded through another replica, or this replica's data directory was replaced).

The evidence viewer and the PDF page views read a file: the original is written once into ``data_dir/originals``
under its content hash (so a version is never mistaken for another, and replicas sharing a data directory share
the copies); the most recently used :data:`KEPT` copies stay, and a copy of a version no upload keeps any more
goes at the next sweep (:mod:`bot.documents.upload_sweep`).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from bot.state.database import DatabaseError
from bot.state.uploads import UploadStore
from index.store import StoredChunk

log = logging.getLogger(__name__)

FOLDER = "originals"
#: Copies of originals kept on a replica's disk (each at most max_upload_bytes); the least recently used go first.
KEPT = 32


class Originals:
    def __init__(self, uploads: UploadStore, data_dir: Path) -> None:
        self.uploads = uploads
        self.folder = data_dir / FOLDER

    def file(self, collection: str, chunk: StoredChunk) -> Path | None:
        """A local copy of the upload ``chunk`` was indexed from, in the version it was indexed from; None when the
        database keeps no such upload (indexed by the CLI, removed, replaced since) or cannot be read."""
        digest = str(chunk.metadata.get("content_hash", ""))
        try:
            record = self.uploads.get(collection, chunk.source)
            root = str(chunk.metadata.get("root", ""))
            if record is None or record.content_hash != digest or not record.names(root, chunk.source):
                return None
            path = self.folder / f"{digest}{Path(chunk.source).suffix.lower()}"
            if path.is_file():
                os.utime(path)  # recently used
                return path
            data = self.uploads.original(collection, chunk.source, digest)
        except DatabaseError as exc:
            log.warning("an upload's original: %s", exc)
            return None
        if data is None:  # replaced or removed a moment ago
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.part")
        partial.write_bytes(data)
        partial.replace(path)
        self._trim()
        return path

    def drop_unrecorded(self) -> int:
        """Delete the copies whose version no upload keeps any more (removed or replaced since, perhaps through
        another replica); how many went. Raises :class:`DatabaseError` (then none went)."""
        if not self.folder.is_dir():
            return 0
        kept = self.uploads.content_hashes()
        gone = [path for path in self._copies() if path.name.split(".", 1)[0] not in kept]
        for path in gone:
            path.unlink(missing_ok=True)
        return len(gone)

    def _copies(self) -> list[Path]:
        """The copies in the folder (not one being written)."""
        return [path for path in self.folder.iterdir() if not path.name.endswith(".part")]

    def _trim(self) -> None:
        copies = sorted(((_used(p), p) for p in self._copies()), reverse=True)
        for _, old in copies[KEPT:]:
            old.unlink(missing_ok=True)


def _used(path: Path) -> int:
    """When the copy was last used (0: another replica sharing the folder removed it meanwhile)."""
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return 0
