"""What uploads leave on this replica's own disk after their document went, perhaps through another replica (which
cannot reach this disk): files of a collection's uploads folder that nothing names any more, and copies of
originals (:mod:`bot.documents.originals`) whose version no upload record keeps. Each pass also deletes the files that
waited in Gradio's upload cache longer than ``upload_cache_ttl_s`` (:meth:`UploadInbox.expire`).

A file of an uploads folder is deleted only when all of these hold, checked under the index lock (so no index run
is under way): no upload record names it in this folder, the store holds no passage indexed from it here (a file
the CLI indexed from the folder stays), and it was last written more than ``upload_sweep_grace_s`` ago (a file
being added is in the folder before its passages and its record are).
"""

from __future__ import annotations

import logging
import stat
import threading
import time
from pathlib import Path
from typing import cast

from bot.config import Settings
from bot.documents.library import Library
from bot.documents.originals import Originals
from bot.documents.upload_inbox import UploadInbox
from bot.state.database import DatabaseError
from bot.state.uploads import UploadStore
from index.errors import StoreUnavailableError
from index.pipeline import index_lock
from index.protocols import Store

log = logging.getLogger(__name__)


def sweep_uploads(store: Store, settings: Settings, uploads: UploadStore, grace_s: float) -> list[str]:
    """Delete the collection's uploads-folder files that nothing names any more (see the module's doc); their names.
    Raises :class:`DatabaseError` or :class:`StoreUnavailableError` (then the files not yet checked stay)."""
    folder = settings.uploads_dir.resolve()
    if not folder.is_dir():
        return []
    root = str(folder)
    cutoff = time.time() - grace_s
    gone: list[str] = []
    with index_lock(settings.data_dir):
        old = [path for path in sorted(folder.iterdir()) if _written_before(path, cutoff)]
        records = uploads.records(settings.collection) if old else {}
        for path in old:
            record = records.get(path.name)
            if record is not None and record.names(root, path.name):
                continue
            if any(str(chunk.metadata.get("root", "")) == root for chunk in store.by_source(path.name)):
                continue
            if _written_before(path, cutoff):  # still the old file (an upload puts a new one in its place)
                path.unlink(missing_ok=True)
                gone.append(path.name)
    return gone


def _written_before(path: Path, cutoff: float) -> bool:
    """A regular file (not a link) last written before ``cutoff`` (seconds since the epoch)."""
    try:
        found = path.lstat()  # a link's own status: never a regular file
    except FileNotFoundError:
        return False
    return stat.S_ISREG(found.st_mode) and found.st_mtime < cutoff


def sweep_library(library: Library, uploads: UploadStore, originals: Originals, grace_s: float) -> int:
    """One pass over every collection's uploads folder and the originals' copies: how many files went. A collection
    whose store or records cannot be read now is skipped (logged); the next pass tries again."""
    gone = 0
    for name in library.collections.names():
        folder = cast(Settings, library.collections.settings_for(name)).uploads_dir  # a copy of a Settings
        if not folder.is_dir() or not any(folder.iterdir()):
            continue  # opens no collection that never had an upload here
        parts = library.services(name)
        try:
            removed = sweep_uploads(parts.store, parts.settings, uploads, grace_s)
        except (DatabaseError, StoreUnavailableError) as exc:
            log.warning("sweeping the uploads of collection %s: %s", name, exc)
            continue
        if removed:
            log.info("deleted %d uploaded files of collection %s whose document went: %s", len(removed), name, removed)
        gone += len(removed)
    try:
        copies = originals.drop_unrecorded()
    except DatabaseError as exc:
        log.warning("sweeping the copies of originals: %s", exc)
        return gone
    if copies:
        log.info("deleted %d copies of originals no upload keeps any more", copies)
    return gone + copies


def start_sweeping(
    library: Library, uploads: UploadStore, originals: Originals, settings: Settings, inbox: UploadInbox | None = None
) -> threading.Event:
    """Sweep now and then every ``upload_sweep_interval_s`` in a background thread (none when it is 0); set the
    returned event to stop it. ``inbox``: the upload cache, whose files past their time go too."""
    stop = threading.Event()
    if settings.upload_sweep_interval_s <= 0:
        return stop

    def run() -> None:
        while True:
            try:
                sweep_library(library, uploads, originals, settings.upload_sweep_grace_s)
                expired = inbox.expire() if inbox is not None else 0
                if expired:
                    log.info("deleted %d files that waited in the upload cache and were never added", expired)
            except StoreUnavailableError as exc:  # listing the collections: the store is down
                log.warning("sweeping the uploads: %s", exc)
            except Exception:  # anything else: logged, and the next pass tries again
                log.exception("sweeping the uploads failed")
            if stop.wait(settings.upload_sweep_interval_s):
                return

    threading.Thread(target=run, name="docbot-upload-sweep", daemon=True).start()
    return stop
