"""A cited document's text read again for the evidence viewer: once per document version, a few at a time.

A view of a DOCX, HTML, Markdown or text file (or of a PDF page that cannot be drawn) shows the text docbot reads
from the file, which means parsing it again in a worker process of :mod:`index.parse_pool` under the parse budget:
seconds for a large or deeply nested file. :class:`ViewTexts` parses each version of a file once (its path,
modification time, size and the content hash the index stores, so a replaced document is never shown stale):

- the texts are kept in memory up to ``view_text_cache_mb`` (:class:`index.lru.BoundedLRU`, the least recently
  viewed going first), and a failure for :data:`FAILURE_KEPT_S`, so a file over the budget is not parsed on every
  view;
- views of a version being parsed wait for that parse (never a second worker for it);
- at most ``max_view_parses`` versions are parsed at once across the server: a view that would need one more raises
  :class:`~bot.view.errors.ViewBusy` at once (the viewer's 503 "try again" page), never waiting for a turn.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot.config import Settings
from bot.view.errors import ViewBusy
from index.errors import LoadError
from index.loaders import read_file
from index.lru import BoundedLRU
from index.parse_pool import ParseBudget, ParsePool
from index.types import LoadedFile

#: A failure is remembered this long (a file over the budget is not parsed again on every view).
FAILURE_KEPT_S = 60.0
#: What a kept reading weighs beyond its texts (the entry, its key, the page numbers).
ENTRY_BYTES = 512
#: Seconds beyond the parse budget a view waits for the parse of the same version another view started.
WAIT_MARGIN_S = 5.0
BUSY = "docbot is busy reading other documents for the viewer: try again in a few seconds"

#: One version of a file: its resolved path, modification time (ns), size and the content hash the index stores.
Version = tuple[str, int, int, str]
#: The texts of a file, one per document it reads as: ``(page, text)``, page None but for a PDF.
Texts = tuple[tuple[int | None, str], ...]


@dataclass(frozen=True, slots=True)
class _Reading:
    """A parse's outcome: the texts, or the one-line reason it failed (and when)."""

    texts: Texts
    failure: str | None
    at: float


class _Pending:
    """A parse under way: the views that wait for it wake when ``done`` is set, ``reading`` None if it broke."""

    __slots__ = ("done", "reading")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.reading: _Reading | None = None


def _weight(reading: _Reading) -> int:
    return ENTRY_BYTES + sum(sys.getsizeof(text) for _, text in reading.texts)


def version_of(path: Path, content_hash: str) -> Version:
    try:
        stat = path.stat()
    except OSError as exc:
        raise LoadError(f"cannot read the file ({exc.strerror or exc})") from exc
    return str(path.resolve()), stat.st_mtime_ns, stat.st_size, content_hash


class ViewTexts:
    """``parse(path, source)`` once per file version, kept within ``cache_bytes``, at most ``parses`` at once;
    thread-safe (the viewer's threads share one)."""

    def __init__(
        self, parse: Callable[[Path, str], LoadedFile], *, cache_bytes: int, parses: int, wait_s: float
    ) -> None:
        self._parse = parse
        self._kept: BoundedLRU[Version, _Reading] = BoundedLRU(cache_bytes, _weight)
        self._slots = threading.BoundedSemaphore(parses)
        self._wait_s = wait_s
        self._pending: dict[Version, _Pending] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, pool: ParsePool) -> ViewTexts:
        """Files parsed in ``pool`` (the process's parsers) under the parse budget."""
        budget = ParseBudget(settings.parse_timeout_s, settings.parse_memory_mb)

        def parse(path: Path, source: str) -> LoadedFile:
            data = read_file(path, settings.max_file_bytes)
            return pool.parse(path, data, source, max_bytes=settings.max_file_bytes, budget=budget)

        return cls(
            parse,
            cache_bytes=settings.view_text_cache_mb * 1024 * 1024,
            parses=settings.max_view_parses,
            wait_s=settings.parse_timeout_s + WAIT_MARGIN_S,
        )

    @property
    def held(self) -> int:
        """Bytes of the readings kept now."""
        return self._kept.held

    def texts(self, path: Path, source: str, content_hash: str) -> Texts:
        """The texts of the file at ``path`` (indexed as ``source``, with ``content_hash``), parsed at most once
        per version. Raises :class:`LoadError` (unreadable, over the budget) or :class:`ViewBusy`."""
        version = version_of(path, content_hash)
        with self._lock:
            reading = self._fresh(version)
            pending = self._pending.get(version) if reading is None else None
            mine = reading is None and pending is None
            if mine:
                if not self._slots.acquire(blocking=False):
                    raise ViewBusy(BUSY)
                pending = self._pending[version] = _Pending()
        if mine:
            assert pending is not None
            reading = self._read(version, path, source, pending)
        elif reading is None:
            assert pending is not None
            if not pending.done.wait(self._wait_s) or pending.reading is None:
                raise ViewBusy(BUSY)
            reading = pending.reading
        if reading.failure is not None:
            raise LoadError(reading.failure)
        return reading.texts

    def _fresh(self, version: Version) -> _Reading | None:
        """The kept reading of ``version``; a failure older than :data:`FAILURE_KEPT_S` is forgotten."""
        reading = self._kept.get(version)
        if reading is not None and reading.failure is not None and time.monotonic() - reading.at > FAILURE_KEPT_S:
            self._kept.pop(version)
            return None
        return reading

    def _read(self, version: Version, path: Path, source: str, pending: _Pending) -> _Reading:
        """Parse (holding a slot), keep the outcome, then wake the views waiting for it."""
        try:
            try:
                loaded = self._parse(path, source)
                pending.reading = _Reading(tuple((d.page, d.text) for d in loaded.documents), None, time.monotonic())
            except LoadError as exc:
                pending.reading = _Reading((), str(exc), time.monotonic())
            self._kept.put(version, pending.reading)
            return pending.reading
        finally:
            with self._lock:
                del self._pending[version]
            self._slots.release()
            pending.done.set()
