"""A PDF page as evidence: a cited span's boxes on the page, the page count, and the page drawn as a PNG.

Offsets are those of docbot's text of the page (the PDF loader's one Document per page, pages from 1): a
citation's ``quote_start``/``quote_end`` or ``passage_start``/``passage_end``. Boxes are fractions of the page
(:class:`Box`), so a browser lays them over the picture at any zoom.

Every PDF operation runs in a worker process (:mod:`bot.view.pdf_worker`) under ``view_timeout_s`` and
``parse_memory_mb``, at most :data:`CONCURRENT_VIEWS` at once: a hostile PDF fails with a one-line
:class:`ViewError`, never a stuck request. The workers are a :class:`ViewerPool`, one a process (made by the
composition root, ``app.Pools``, and handed to each call). Page layouts (and, for a minute, failures) are
remembered per file version and page in memory; pictures are kept on disk under ``data_dir/views`` up to
``view_cache_bytes``, the least recently used going first.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path

from bot.config import Settings
from bot.view.errors import ViewError
from bot.view.layout import Box, PageLayout
from index.parse_pool import ParseBudget, WorkerKind, WorkerPool

__all__ = ["Box", "PageRenderer", "ViewError", "ViewerPool", "page_count", "sentence_boxes", "view_budget", "warm_up"]

#: Resolutions a page may be drawn at (the page asks for more to zoom in sharply).
MIN_DPI, MAX_DPI = 36, 600
#: Page layouts (or their failures) remembered in memory (a page of text: about 150 KB).
LAYOUTS_KEPT = 128
#: A failure is remembered this long (a hostile file is not retried on every view; a timeout under passing load is).
FAILURE_KEPT_S = 60.0
#: PDF operations at once in this process (each in its own worker process, tens of MB); others wait their turn.
CONCURRENT_VIEWS = 2
VIEWING = WorkerKind("bot.view.pdf_worker", ViewError, "view_timeout_s", "parse_memory_mb", "show")


def view_budget(settings: Settings) -> ParseBudget:
    """What one view of a PDF may cost."""
    return ParseBudget(timeout_s=settings.view_timeout_s, memory_mb=settings.parse_memory_mb)


class ViewerPool(WorkerPool):
    """The PDF viewer's workers (started on first use), at most :data:`CONCURRENT_VIEWS` busy at once, and the page
    layouts (or failures) they answered, remembered per file version and page."""

    def __init__(self) -> None:
        super().__init__(VIEWING)
        self.turns = threading.BoundedSemaphore(CONCURRENT_VIEWS)
        self.layouts = _Memo(LAYOUTS_KEPT)


def warm_up(viewer: ViewerPool, budget: ParseBudget) -> threading.Thread:
    """Start a viewer worker in the background (a server calls this once it is up): the first page view then
    costs what any other does, not the worker's start."""
    thread = threading.Thread(target=viewer.warm, args=(budget.memory_mb,), name="docbot-view-warm-up", daemon=True)
    thread.start()
    return thread


def _call(viewer: ViewerPool, header: tuple[object, ...], budget: ParseBudget) -> object:
    """The viewer worker's answer, waiting at most ``timeout_s`` for a turn (so no request waits for long)."""
    if not viewer.turns.acquire(timeout=budget.timeout_s):
        raise ViewError(f"the viewer is busy with other pages for over {budget.timeout_s:g} s; try again shortly")
    try:
        return viewer.call(header, b"", budget=budget)
    finally:
        viewer.turns.release()


def _version(path: Path) -> tuple[str, int, int]:
    """The file as it is now (path, modification time, size): cached answers are for this version only."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise ViewError(f"the document is no longer there ({exc.strerror or exc}): it may have been removed") from exc
    return str(path.resolve()), stat.st_mtime_ns, stat.st_size


class _Memo:
    """A small thread-safe LRU of answers, and of :class:`ViewError` failures for :data:`FAILURE_KEPT_S`."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[object, ...], tuple[object, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[object, ...]) -> object | None:
        """The remembered answer (None: not remembered); a remembered failure is raised again."""
        with self._lock:
            if key not in self._items:
                return None
            found, when = self._items[key]
            if isinstance(found, ViewError) and time.monotonic() - when > FAILURE_KEPT_S:
                del self._items[key]
                return None
            self._items.move_to_end(key)
        if isinstance(found, ViewError):
            raise ViewError(str(found))
        return found

    def put(self, key: tuple[object, ...], value: object) -> None:
        with self._lock:
            self._items[key] = (value, time.monotonic())
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


def _ask(
    viewer: ViewerPool,
    memo: _Memo,
    key: tuple[object, ...],
    header: tuple[object, ...],
    budget: ParseBudget,
    *,
    keep: bool = True,
) -> object:
    """The worker's answer to ``header``, remembered under ``key`` (failures always, answers when ``keep``)."""
    found = memo.get(key)
    if found is not None:
        return found
    try:
        value = _call(viewer, header, budget)
    except ViewError as exc:
        memo.put(key, exc)
        raise
    if keep:
        memo.put(key, value)
    return value


def page_layout(path: Path, page: int, *, viewer: ViewerPool, budget: ParseBudget) -> PageLayout:
    """docbot's text of page ``page`` of the PDF at ``path``, aligned with pdfium's characters (cached)."""
    version = _version(path)
    layout = _ask(viewer, viewer.layouts, ("layout", *version, page), ("layout", version[0], page), budget)
    assert isinstance(layout, PageLayout)
    return layout


def sentence_boxes(
    path: Path,
    page: int,
    start: int,
    end: int,
    *,
    viewer: ViewerPool,
    budget: ParseBudget,
    expected: str | None = None,
) -> list[Box]:
    """The boxes (one per line fragment, across line and column breaks) of ``text[start:end]`` of that page.

    ``expected``: the text a citation quotes there; when the page no longer holds it at those characters, the file
    changed since the answer and :class:`ViewError` says so (rather than boxing other words).
    """
    layout = page_layout(path, page, viewer=viewer, budget=budget)
    if not 0 <= start < end <= len(layout.text):
        raise ViewError(f"characters {start}-{end} are not on page {page} (it has {len(layout.text)})")
    if expected is not None and layout.text[start:end].split() != expected.split():
        raise ViewError(f"the document changed since this answer: page {page} no longer holds the cited text there")
    return layout.boxes(start, end)


def page_count(path: Path, *, viewer: ViewerPool, budget: ParseBudget) -> int:
    version = _version(path)
    count = _ask(viewer, viewer.layouts, ("count", *version), ("count", version[0]), budget)
    assert isinstance(count, int)
    return count


class PageRenderer:
    """PDF pages drawn as PNG, kept on disk in ``folder`` up to ``cache_bytes`` (least recently used go first)."""

    def __init__(self, folder: Path, cache_bytes: int, budget: ParseBudget, viewer: ViewerPool) -> None:
        self.folder = folder
        self.cache_bytes = cache_bytes
        self.budget = budget
        self.viewer = viewer
        self._failures = _Memo(LAYOUTS_KEPT)
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, viewer: ViewerPool) -> PageRenderer:
        return cls(settings.data_dir / "views", settings.view_cache_bytes, view_budget(settings), viewer)

    def png(self, path: Path, page: int, dpi: int = 150) -> bytes:
        """Page ``page`` (from 1) of the PDF at ``path`` drawn at ``dpi``, as PNG bytes."""
        if not MIN_DPI <= dpi <= MAX_DPI:
            raise ViewError(f"a page is drawn at {MIN_DPI} to {MAX_DPI} dpi, not {dpi}")
        version = _version(path)
        key = ("render", *version, page, dpi)
        cached = self.folder / (hashlib.sha256(repr(key).encode()).hexdigest()[:32] + ".png")
        with contextlib.suppress(OSError):
            data = cached.read_bytes()
            os.utime(cached)  # recently used
            return data
        data = _ask(self.viewer, self._failures, key, ("render", version[0], page, dpi), self.budget, keep=False)
        assert isinstance(data, bytes)
        self._store(cached, data)
        return data

    def _store(self, cached: Path, data: bytes) -> None:
        """Write the picture (atomically), then trim the folder to the size cap, oldest use first."""
        if len(data) > self.cache_bytes:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            partial = cached.with_suffix(f".{os.getpid()}.{threading.get_ident()}.part")  # replicas share the folder
            partial.write_bytes(data)
            partial.replace(cached)
            with self._lock:
                self._trim()
        except OSError:  # a full or read-only disk: the picture is still shown, only not kept
            return

    def _trim(self) -> None:
        files = []
        for entry in os.scandir(self.folder):
            if entry.name.endswith(".png"):
                with contextlib.suppress(OSError):
                    stat = entry.stat()
                    files.append((stat.st_mtime_ns, stat.st_size, entry.path))
        total = sum(size for _, size, _ in files)
        for _, size, name in sorted(files):
            if total <= self.cache_bytes:
                break
            with contextlib.suppress(OSError):
                os.remove(name)
                total -= size
