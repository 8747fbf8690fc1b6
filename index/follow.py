"""Keeping what a process derives from the store (the BM25 side) in step with the store.

The store is the shared truth: any number of ``docbot serve`` replicas and ``docbot index`` runs write to one
Chroma server (or one local data folder). Each write through docbot leaves a new revision mark in the store
(``VectorStore.revision``: a token in the collection's metadata and the chunk count), cheap to read. A
:class:`StoreFollower` reads that mark at most once every ``interval_s`` seconds, when asked (``poll``, from every
search), in a background thread; when it differs from the mark the last rebuild started from, it runs the rebuild
there too. Whoever polls never waits: searches meanwhile use what the previous rebuild made, which the rebuild
replaces in one step when it is done.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class StoreFollower:
    """Runs ``rebuild`` again whenever ``mark()`` (the store's revision mark) changes."""

    def __init__(self, mark: Callable[[], str], rebuild: Callable[[], None], interval_s: float) -> None:
        self._mark = mark
        self._rebuild = rebuild
        self._interval_s = interval_s
        self._seen: str | None = None  # the mark the last rebuild started from
        self._checked = -math.inf  # monotonic time of the last check
        self._state = threading.Lock()  # guards _checked and _worker
        self._worker: threading.Thread | None = None
        self._rebuilding = threading.Lock()  # one rebuild at a time
        self._failing = False

    def sync(self) -> None:
        """Rebuild now, in the caller's thread (waits for a background rebuild in progress to finish first)."""
        with self._rebuilding:
            mark = self._mark()  # read before the rebuild: a write during it shows as a change at the next check
            self._rebuild()
            self._seen = mark
        with self._state:
            self._checked = time.monotonic()

    def poll(self) -> threading.Thread | None:
        """Start a check in the background if one is due and none is running; returns its thread, if started."""
        if self._interval_s <= 0:
            return None
        with self._state:
            now = time.monotonic()
            if self._worker is not None or now - self._checked < self._interval_s:
                return None
            self._checked = now
            self._worker = threading.Thread(target=self._check, name="docbot-store-follower", daemon=True)
            self._worker.start()
            return self._worker

    def _check(self) -> None:
        try:
            with self._rebuilding:
                mark = self._mark()
                if mark != self._seen:
                    log.info("the store changed (revision %s): rebuilding the BM25 side in the background", mark)
                    self._rebuild()
                    self._seen = mark
            self._failing = False
        except Exception as exc:  # the store down, say: answers go on with the old side; the next check retries
            if not self._failing:
                log.warning("could not follow the store's changes (%s); retrying every %s s", exc, self._interval_s)
            self._failing = True
        finally:
            with self._state:
                self._checked = time.monotonic()
                self._worker = None
