"""Adding files to a collection and removing a document from it: the steps behind the page's Documents tab, free of
Gradio (the page only adapts its events to :class:`DocumentChanges`).

Adding: each file this session uploaded (:class:`bot.documents.upload_inbox.UploadInbox`) is checked (a supported
type, a safe name, chosen once, and a document someone else added only by whoever may replace it) and put in the
uploads folder with any previous version kept aside (:mod:`bot.documents.upload_staging`). The files are indexed in
one run: each one the run took is kept, with its record and original (:mod:`bot.documents.upload_records`); each one
it did not is undone (a replaced version comes back). Removing: the document's chunks, record and file go.

The caller has checked that the identity may change the collection at all; who may replace or remove a document
someone uploaded is checked here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bot.access.policy import Identity, allowed
from bot.config import Settings
from bot.documents.failures import REMOVE_DATABASE_DOWN, REMOVE_STORE_DOWN, UPLOAD_DATABASE_DOWN, upload_failure
from bot.documents.indexed import (
    IndexedDocument,
    UploadRefusedError,
    delete_chunks,
    list_documents,
    remove_document,
    sanitise_filename,
)
from bot.documents.upload_inbox import UploadInbox
from bot.documents.upload_records import keep_indexed
from bot.documents.upload_staging import Staged, stage_upload
from bot.state.database import DatabaseError
from bot.state.uploads import Upload, UploadStore
from index.errors import IndexRunError, StoreUnavailableError
from index.pipeline import Indexer, IndexReport, index_lock
from index.protocols import Store

log = logging.getLogger(__name__)

#: Indexing an upload: files done, files in all, passages embedded so far (None: the run is about to start).
Progress = Callable[[int, int, int | None], None]


@dataclass(frozen=True, slots=True)
class Target:
    """The collection documents are added to or removed from: its name, store, settings (where its uploads and their
    records live), indexer, and how its retriever follows a change (shared by every bot that searches it)."""

    name: str
    store: Store
    settings: Settings
    indexer: Indexer
    refresh: Callable[[], None]


@dataclass(frozen=True, slots=True)
class Added:
    """What adding files came to: the index run's report (None: nothing was indexed), why each refused file was
    refused, and what failed, in words for the person (None: nothing failed)."""

    report: IndexReport | None = None
    refused: list[str] = field(default_factory=list)
    failure: str | None = None


@dataclass(frozen=True, slots=True)
class Removed:
    """What removing a document came to: the document (None: no document has that key), how many passages went,
    whether the caller may not remove it, and what failed, in words for the person (None: nothing failed)."""

    document: IndexedDocument | None = None
    chunks: int = 0
    refused: bool = False
    failure: str | None = None


class DocumentChanges:
    """Adds uploaded files to a collection and removes documents from it; the upload cache's copies of the files are
    deleted either way."""

    def __init__(self, inbox: UploadInbox, uploads: UploadStore) -> None:
        self.inbox = inbox
        self.uploads = uploads

    def drop(self, given: Iterable[str], session: str) -> None:
        """Delete the cached copies of files that are not to be added (their uploader may not add documents)."""
        for path in given:
            self.inbox.discard(path, session)

    def add(self, target: Target, identity: Identity, given: list[str], session: str, progress: Progress) -> Added:
        """Index the files ``session`` uploaded (``given``: their cached paths), keeping any replaced version until
        the new one is indexed."""
        try:
            records = self.uploads.records(target.settings.collection)
        except DatabaseError as exc:  # checked before anything is staged or indexed: nothing to undo
            log.warning("an upload: %s", exc)
            self.drop(given, session)
            return Added(failure=UPLOAD_DATABASE_DOWN)
        staged: dict[str, Staged] = {}
        refused: list[str] = []
        for path in given:
            try:
                self._stage(path, identity, session, staged, target, records)
            except UploadRefusedError as exc:
                refused.append(str(exc))
            finally:
                self.inbox.discard(path, session)
        if not staged:
            return Added(refused=refused)
        progress(0, len(staged), None)
        try:
            report = target.indexer.run([s.target for s in staged.values()], progress=progress)
            target.refresh()
        except (IndexRunError, StoreUnavailableError) as exc:  # a failed run, or the store down before or after it
            log.exception("indexing an upload failed")
            for done in staged.values():  # keep no file of an upload the index did not take; restore replaced ones
                done.undo()
            return Added(refused=refused, failure=upload_failure(exc))
        failed = {Path(source).name for source, _ in report.failed}
        for name, done in staged.items():
            if name in failed:  # a replacement that failed leaves the previous version, file and index
                done.undo()
            else:
                done.keep()
        owner = None if identity.anonymous else identity.name
        try:
            if keep_indexed(target.store, target.settings, self.uploads, report.added + report.updated, owner):
                target.refresh()  # a previous version indexed by another replica went
        except DatabaseError as exc:
            log.warning("keeping an upload's record: %s", exc)
            self._drop_added(target, report.added, staged)
            return Added(refused=refused, failure=UPLOAD_DATABASE_DOWN)
        except StoreUnavailableError:  # the new version is indexed and kept; the previous one's chunks stay listed
            log.exception("removing the previous version of a replaced upload failed")
        return Added(report, refused)

    def _stage(
        self,
        given: str,
        identity: Identity,
        session: str,
        staged: dict[str, Staged],
        target: Target,
        records: dict[str, Upload],
    ) -> None:
        """Put one received file in the collection's uploads folder (its previous version kept aside); refusals
        raise. ``records``: the collection's uploads (whoever received them), whose owners may replace them."""
        with self.inbox.take(given, session) as source:
            name = sanitise_filename(Path(given).name)
            if name in staged:
                raise UploadRefusedError(f"{name}: chosen twice; add one file of each name at a time")
            earlier = records.get(name)
            if earlier is not None and not allowed(identity, "replace", target.name, owner=earlier.owner):
                raise UploadRefusedError(
                    f"{name}: a document of that name was added by someone else; only they or the administrator "
                    "can replace it (rename your file to add it beside theirs)"
                )
            staged[name] = stage_upload(source, name, target.settings)

    def _drop_added(self, target: Target, added: list[str], staged: dict[str, Staged]) -> None:
        """The index took these new files but their records could not be kept: they go again (chunks and file).
        A replaced document keeps its new version (the previous one is gone from the index by then)."""
        root = str(target.settings.uploads_dir.resolve())
        with index_lock(target.settings.data_dir):
            for source in added:
                delete_chunks(target.store, root, source)
                staged[source].undo()
        target.refresh()

    def remove(self, target: Target, identity: Identity | None, key: str | None) -> Removed:
        """Remove the document with this key (:attr:`IndexedDocument.key`) if ``identity`` may: the administrator,
        or the editor who uploaded it."""
        try:
            listed = list_documents(target.store, target.settings, self.uploads)
            document = next((d for d in listed if d.key == key), None)
            if document is None:
                return Removed()
            if not allowed(identity, "remove", target.name, owner=document.owner):
                return Removed(document, refused=True)
            removed = remove_document(target.store, target.settings, document, self.uploads)
            target.refresh()
        except StoreUnavailableError:
            log.exception("removing a document failed")
            return Removed(failure=REMOVE_STORE_DOWN)
        except DatabaseError as exc:
            log.warning("removing a document: %s", exc)
            return Removed(failure=REMOVE_DATABASE_DOWN)
        return Removed(document, removed)
