"""An upload's record and original kept in the state database once the index took it, the same for every replica;
and the one-time import of the ``documents.json`` an earlier docbot kept beside each collection's uploads folder.

The receiving replica indexes the file from its own uploads folder (so the store's chunks name that folder as their
root). A replacement received by another replica than the previous version was indexed from another folder: once
the new version's record is kept, the previous version's chunks go (a failed replacement leaves them, as before).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

from bot.config import Settings
from bot.documents.indexed import delete_chunks, document_key
from bot.state.uploads import NewUpload, UploadStore
from index.pipeline import index_lock
from index.protocols import Store

log = logging.getLogger(__name__)

#: What an earlier docbot wrote beside a collection's uploads: when each upload was indexed, and who uploaded it.
LEGACY_RECORDS = "documents.json"


def keep_indexed(
    store: Store, settings: Settings, uploads: UploadStore, sources: Iterable[str], owner: str | None
) -> int:
    """Keep the record and original of each of these files of the uploads folder, just indexed; raises
    :class:`bot.state.database.DatabaseError` (then nothing was kept). Returns how many chunks of previous versions
    indexed by another replica went (the caller then refreshes the retriever)."""
    folder = settings.uploads_dir.resolve()
    root = str(folder)
    new = [NewUpload(source, root, (folder / source).read_bytes(), owner) for source in sources]
    if not new:
        return 0
    earlier = uploads.records(settings.collection)
    uploads.keep(settings.collection, new)
    moved = [(earlier[u.source].root, u.source) for u in new if u.source in earlier and earlier[u.source].root != root]
    if not moved:
        return 0
    with index_lock(settings.data_dir):  # the previous versions, indexed by another replica from its own folder
        return sum(delete_chunks(store, old_root, source) for old_root, source in moved)


def import_legacy_records(settings: Settings, uploads: UploadStore) -> int | None:
    """Import the collection's ``documents.json`` and the files of its uploads folder it names, once (the file stays
    where it is): how many uploads, or None when there is no such file or it was imported before."""
    path = settings.index_home / LEGACY_RECORDS
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("%s cannot be read (%s): who uploaded what before is not imported", path, exc)
        data = {}
    folder = settings.uploads_dir.resolve()
    found = []
    for file in sorted(folder.iterdir()) if folder.is_dir() else []:
        value = data.get(document_key(str(folder), file.name)) if isinstance(data, dict) else None
        if value is None or not file.is_file() or file.stat().st_size > settings.max_upload_bytes:
            continue
        owner = value.get("owner") if isinstance(value, dict) else None
        when = value.get("indexed_at") if isinstance(value, dict) else value
        found.append(
            NewUpload(
                file.name,
                str(folder),
                file.read_bytes(),
                owner if isinstance(owner, str) else None,
                str(when) if when else None,
            )
        )
    if not uploads.import_once(str(path.resolve()), settings.collection, found):
        return None
    return len(found)
