"""Incremental, crash-safe ingest: files → chunks → Chroma + BM25.

The store itself is the manifest. Every chunk records its file's content hash, the version of the loaders' text
(``index.loaders.TEXT_VERSION``: a file read by older loaders is read again) and how many chunks that
version of the file has, so a run can tell, for each file, whether the stored version is current and
complete. New chunks are written before the old version's chunks are deleted, so a run killed at any
moment leaves either the old or the new version (or both, cleaned up by the next run), never a hole;
the BM25 side is rebuilt from the store whenever its fingerprint no longer matches the store's ids.

A run that fails (a full disk, a store gone away) undoes its writes before it reports the failure: the chunks
it added are deleted and the ones it overwrote get their metadata back. Old versions are deleted only after
every write and the new BM25 side have succeeded, and disk space is held in reserve for the length of the
run, so that the undo still fits on a disk the run has filled.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import os
import shutil
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from index.chunking import Chunker
from index.errors import IndexRunError, LoadError
from index.filters import MAX_FRONT_MATTER, fields_for
from index.lexical import current_fingerprint, fingerprint, sync_lexical
from index.loaders import SUPPORTED_SUFFIXES, TEXT_VERSION, check_supported, content_hash, decode_text, read_file
from index.parse_pool import ParseBudget, ParsePool
from index.protocols import Embedder
from index.sentences import sentence_spans
from index.settings import IndexSettings
from index.store import VectorStore
from index.types import Chunk

MARKDOWN_SUFFIXES = (".md", ".markdown")
#: Chunks gathered from several files before one call to the embedding model.
EMBED_GROUP = 512

#: ``progress(files_done, files_total, chunks_embedded)``: called as the run goes.
Progress = Callable[[int, int, int], None]

#: Disk space held in ``data_dir`` during a run and given back if it fails: room to undo a failed write.
RESERVE_BYTES = 16 * 1024 * 1024
RESERVE_FILE = ".index-reserve"

#: What a chunk costs the local Chroma store on disk, over its text (measured: ~11 KB a chunk of ~560 bytes at 1k
#: chunks, the HNSW files' preallocation included): a write is refused before it starts unless this much is free.
STORE_BYTES_PER_CHUNK = 8 * 1024
STORE_BYTES_PER_TEXT_BYTE = 4


#: How a full disk shows when the error is not an ``OSError`` of its own: SQLite inside Chroma, wrapped errors.
_DISK_FULL_SIGNS = ("no space left on device", "disk is full")


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` or anything in its chain of causes is the disk running out of space."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno == errno.ENOSPC:
            return True
        if any(sign in str(seen).lower() for sign in _DISK_FULL_SIGNS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@dataclass
class IndexReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    chunks_embedded: int = 0
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def summary(self) -> str:
        lines = [
            f"added {len(self.added)}, updated {len(self.updated)}, removed {len(self.removed)}, "
            f"unchanged {len(self.unchanged)}, failed {len(self.failed)} "
            f"({self.chunks_embedded} chunks embedded in {self.seconds:.1f} s)"
        ]
        lines += [f"  failed: {source}: {reason}" for source, reason in self.failed]
        return "\n".join(lines)


@dataclass
class Undo:
    """What a failing run takes back: the chunk ids it wrote that were not stored before, and the metadata
    of stored chunks it overwrote (a changed file can keep some chunks with the very same id)."""

    before: set[str]
    added: set[str] = field(default_factory=set)
    replaced: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SourceFile:
    root: str  # absolute folder the source path is relative to
    source: str
    path: Path


@dataclass(frozen=True, slots=True)
class Pending:
    """A read file waiting for its group's embedding call: its chunks, the ids they replace, its filter fields."""

    file: SourceFile
    kind: str  # added or updated
    chunks: list[Chunk]
    old_ids: list[str]
    fields: dict[str, Any]


@dataclass
class StoredVersions:
    """What the store holds of one file: chunk ids per content hash, and how many each version should have."""

    ids: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    expected: dict[str, int] = field(default_factory=dict)

    def complete(self, digest: str) -> bool:
        return digest in self.expected and len(self.ids[digest]) == self.expected[digest]

    def ids_except(self, digest: str) -> list[str]:
        return [i for h, ids in self.ids.items() if h != digest for i in ids]


def scan(paths: Sequence[Path]) -> tuple[list[SourceFile], set[str], list[tuple[str, str]]]:
    """Files to index, the roots whose vanished files should be removed, and arguments that failed.

    A file or folder inside a folder also given is indexed once, as part of that folder.
    """
    resolved = [(given, given.resolve()) for given in paths]
    folders = [path for _, path in resolved if path.is_dir()]
    files: dict[tuple[str, str], SourceFile] = {}
    mirrored: set[str] = set()
    failed: list[tuple[str, str]] = []
    for given, path in resolved:
        outer = next((folder for folder in folders if folder != path and path.is_relative_to(folder)), None)
        if path.is_dir():
            if outer is not None or str(path) in mirrored:
                continue
            root = str(path)
            mirrored.add(root)
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    file = Path(dirpath) / name
                    if name.startswith(".") or file.suffix.lower() not in SUPPORTED_SUFFIXES:
                        continue
                    source = file.relative_to(path).as_posix()
                    files[(root, source)] = SourceFile(root, source, file)
        elif path.is_file():
            try:
                check_supported(path)
            except LoadError as exc:
                failed.append((str(given), str(exc)))
                continue
            folder = outer or path.parent
            source = path.relative_to(folder).as_posix()
            files.setdefault((str(folder), source), SourceFile(str(folder), source, path))
        else:
            failed.append((str(given), "no such file or folder"))
    return list(files.values()), mirrored, failed


@contextmanager
def index_lock(data_dir: Path) -> Iterator[None]:
    """One writer at a time (a CLI run and an upload from the page, say); released if the process dies."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "index.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_room(folder: Path, chunks: Sequence[Chunk], sentences: int = 0) -> None:
    """Raise ENOSPC before a local store write that would not fit: Chroma's embedded engine can hang when the disk
    fills inside one of its writes (seen with Chroma 1.5.9), so it should not be the one to find out. Each sentence
    vector is a record of its own, counted like a chunk (its text is not stored again)."""
    need = sum(STORE_BYTES_PER_CHUNK + STORE_BYTES_PER_TEXT_BYTE * len(c.text.encode()) for c in chunks)
    need += STORE_BYTES_PER_CHUNK * sentences
    free = shutil.disk_usage(folder).free
    if free < need:
        raise OSError(
            errno.ENOSPC,
            f"{os.strerror(errno.ENOSPC)}: {free / 2**20:.1f} MB free in {folder}, "
            f"the next write of {len(chunks)} chunks needs about {need / 2**20:.1f} MB",
        )


@contextmanager
def reserved_space(folder: Path, size: int) -> Iterator[Callable[[], None]]:
    """Hold ``size`` bytes of disk in ``folder`` until the run ends or the returned function gives them back."""
    path = folder / RESERVE_FILE
    release = functools.partial(path.unlink, missing_ok=True)
    try:
        with open(path, "wb") as handle:
            os.posix_fallocate(handle.fileno(), 0, size)
    except OSError as exc:
        release()
        raise IndexRunError(
            f"not enough free disk space in {folder} to index safely ({exc.strerror or exc}); "
            f"free at least {size // 2**20} MB and run docbot index again",
            index_unchanged=True,
            disk_full=True,
        ) from exc
    try:
        yield release
    finally:
        release()


class Indexer:
    """Brings the index in line with a set of files and folders; each file is parsed in a worker of
    ``parse_pool`` (the process's, :mod:`index.parse_pool`)."""

    def __init__(self, settings: IndexSettings, embedder: Embedder, store: VectorStore, parse_pool: ParsePool) -> None:
        self.settings = settings
        self.embedder = embedder
        self.store = store
        self.parse_pool = parse_pool
        self.chunker = Chunker(settings.chunk_size, settings.chunk_overlap)
        self.parse_budget = ParseBudget(settings.parse_timeout_s, settings.parse_memory_mb)

    def _stored(self) -> dict[tuple[str, str], StoredVersions]:
        stored: dict[tuple[str, str], StoredVersions] = defaultdict(StoredVersions)
        for chunk_id, _, meta in self.store.iter_all(with_text=False):
            versions = stored[(str(meta.get("root", "")), str(meta["source"]))]
            digest = str(meta["content_hash"])
            if meta.get("text_version", 1) != TEXT_VERSION:  # read by older loaders: read again, as if changed
                digest = f"{digest}@text-{meta.get('text_version', 1)}"
            versions.ids[digest].append(chunk_id)
            versions.expected[digest] = int(meta["n_chunks"])
        return stored

    def run(self, paths: Sequence[Path], *, progress: Progress | None = None, tags: Sequence[str] = ()) -> IndexReport:
        """``tags``: added to every file this run indexes (``docbot index --tag``), beside its own (index.filters)."""
        started = time.perf_counter()
        with index_lock(self.settings.data_dir):
            report = self._run(paths, progress or (lambda done, total, chunks: None), tuple(tags))
        report.seconds = time.perf_counter() - started
        return report

    def _run(self, paths: Sequence[Path], progress: Progress, tags: tuple[str, ...]) -> IndexReport:
        report = IndexReport()
        files, mirrored, report.failed = scan(paths)
        self._add_filter_fields()
        stored = self._stored()
        undo = Undo(before={i for versions in stored.values() for ids in versions.ids.values() for i in ids})
        with reserved_space(self.settings.data_dir, RESERVE_BYTES) as release_reserve:
            try:
                doomed = self._write(files, mirrored, stored, report, progress, undo, tags)
                current = current_fingerprint(self.settings.lexical_dir)
                if report.changed or doomed or current != fingerprint(undo.before):
                    sync_lexical(self.store, self.settings.lexical_dir, force=True, without=set(doomed))
            except BaseException as exc:
                release_reserve()
                self._roll_back(undo, exc)
                raise
        self.store.delete(doomed)  # the run has succeeded: old versions go last, a failure here is repaired later
        return report

    def _write(
        self,
        files: list[SourceFile],
        mirrored: set[str],
        stored: dict[tuple[str, str], StoredVersions],
        report: IndexReport,
        progress: Progress,
        undo: Undo,
        tags: tuple[str, ...],
    ) -> list[str]:
        """Write every new and changed file; returns the ids to delete once all is written."""
        pending: list[Pending] = []
        seen: set[tuple[str, str]] = set()
        doomed: list[str] = []

        for done, file in enumerate(files, start=1):
            progress(done - 1, len(files), report.chunks_embedded)
            key = (file.root, file.source)
            seen.add(key)
            versions = stored.get(key)
            try:
                data = read_file(file.path, self.settings.max_file_bytes)
                digest = content_hash(data)
                if versions is not None and versions.complete(digest):
                    doomed += versions.ids_except(digest)  # left by a run that died between writing and cleaning up
                    report.unchanged.append(file.source)
                    continue
                loaded = self.parse_pool.parse(
                    file.path, data, file.source, max_bytes=self.settings.max_file_bytes, budget=self.parse_budget
                )
            except LoadError as exc:
                report.failed.append((file.source, str(exc)))
                continue
            chunks = [c for doc in loaded.documents for c in self.chunker.split(doc, digest, root=file.root)]
            old_ids = versions.ids_except(digest) if versions is not None else []
            text = decode_text(data[:MAX_FRONT_MATTER]) if file.path.suffix.lower() in MARKDOWN_SUFFIXES else ""
            fields = fields_for(file.source, file.path, tags, text)
            pending.append(Pending(file, "updated" if versions is not None else "added", chunks, old_ids, fields))
            if sum(len(p.chunks) for p in pending) >= EMBED_GROUP:
                doomed += self._flush(pending, report, undo)
        doomed += self._flush(pending, report, undo)
        progress(len(files), len(files), report.chunks_embedded)

        for root, source in sorted(set(stored) - seen):
            if root in mirrored:
                doomed += [i for ids in stored[(root, source)].ids.values() for i in ids]
                report.removed.append(source)
        return doomed

    def _roll_back(self, undo: Undo, cause: BaseException) -> None:
        """Take back the failed run's writes; raise :class:`IndexRunError` saying how that went."""
        try:
            self.store.delete(sorted(undo.added))
            self.store.set_metadata(undo.replaced)
        except Exception as exc:
            raise IndexRunError(
                f"indexing failed ({cause}) and undoing its writes failed too ({exc}); "
                "fix the cause and run docbot index again",
                index_unchanged=False,
                disk_full=is_disk_full(cause) or is_disk_full(exc),
            ) from cause
        if isinstance(cause, Exception):
            raise IndexRunError(
                f"indexing failed ({cause}); the index is as it was before this run",
                index_unchanged=True,
                disk_full=is_disk_full(cause),
            ) from cause

    def _add_filter_fields(self) -> None:
        """Give chunks stored before filters existed their filter fields (index.filters): metadata only, nothing is
        embedded again."""
        missing = {chunk_id: meta for chunk_id, _, meta in self.store.iter_all(with_text=False) if "type" not in meta}
        self.store.set_metadata(
            {
                chunk_id: {
                    **meta,
                    **fields_for(str(meta["source"]), Path(str(meta.get("root", ""))) / str(meta["source"])),
                }
                for chunk_id, meta in missing.items()
            }
        )

    def _flush(self, pending: list[Pending], report: IndexReport, undo: Undo) -> list[str]:
        """Embed the chunks of the pending files and their sentences in one call and write them in one; returns the
        old ids they replace.

        One write for the group, not one a file: a write's fixed cost is most of it for a file of a few chunks.
        """
        if not pending:
            return []
        chunks = [c for item in pending for c in item.chunks]
        texts = [c.text for c in chunks]
        sentences = [sentence_spans(text) for text in texts]
        sentence_texts = [text[lo:hi] for text, spans in zip(texts, sentences, strict=True) for lo, hi in spans]
        if not self.settings.chroma_url:  # a Chroma server's disk is its own
            ensure_room(self.settings.data_dir, chunks, len(sentence_texts))
        distinct = list(dict.fromkeys(sentence_texts))  # chunks overlap: a sentence in two of them is embedded once
        vectors = self.embedder.encode([*texts, *distinct])  # one call: the model batches them together
        row = {text: len(texts) + n for n, text in enumerate(distinct)}
        sentence_vectors = vectors[[row[text] for text in sentence_texts]]
        metadatas = [
            {**c.metadata(len(item.chunks)), "root": item.file.root, "text_version": TEXT_VERSION, **item.fields}
            for item in pending
            for c in item.chunks
        ]
        new_ids = {c.id for c in chunks}
        kept = [i for i in new_ids if i in undo.before and i not in undo.replaced]
        undo.replaced.update({c.id: c.metadata for c in self.store.get(kept)})
        undo.added.update(new_ids - undo.before)  # before the write: a failed write may still land later
        self.store.upsert(chunks, vectors[: len(texts)], metadatas, sentences, sentence_vectors)
        replaced: list[str] = []
        for item in pending:
            ids = {c.id for c in item.chunks}
            replaced += [i for i in item.old_ids if i not in ids]
            (report.added if item.kind == "added" else report.updated).append(item.file.source)
        report.chunks_embedded += len(texts)
        pending.clear()
        return replaced
