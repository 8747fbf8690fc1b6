"""Files that arrived through this server's upload endpoint: the only ones the page's upload handler accepts.

Gradio keeps each file posted to ``/gradio_api/upload`` in its upload cache and answers with the cached path; the
page's upload event then gets that path back from the browser, so a hostile caller can send any server path
instead. :class:`UploadInbox` is the cache's ledger: the route's middleware (:mod:`bot.web.upload_route`) counts each
upload's bytes against the cache's ``upload_cache_bytes`` and the caller's ``upload_quota_bytes`` as they arrive
(:meth:`UploadInbox.admit`, :meth:`UploadInbox.take_in`; nothing is reserved for a ``Content-Length`` that may never
come) and records each cached path with the session that uploaded it and the caller it counts against. Files waiting
longer than ``upload_cache_ttl_s`` are deleted (:meth:`UploadInbox.expire`). :meth:`UploadInbox.take` opens only a
path recorded for the same session, inside the cache, a regular file reached without a symlink (checked on the
opened descriptor); anything else gets one error that says nothing about what is on the server's disk.
:meth:`UploadInbox.discard` deletes the cached copy once the page is done with it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from bot.documents.indexed import UploadRefusedError

#: The one answer for any file the page did not receive from this caller: it does not say whether the path exists.
NOT_RECEIVED = "a file this page did not receive from you (or already added): choose it again in the upload box"
CACHE_FULL = (
    "The upload cache is full: add the files already chosen first, or try again later; the administrator can raise "
    "DOCBOT_UPLOAD_CACHE_BYTES."
)
QUOTA_USED = (
    "Your files waiting to be added (and your uploads under way) take all of your upload allowance: add or clear "
    "the files you chose, then choose these again."
)


def session_key(cookies: Mapping[str, str]) -> str:
    """Who uploaded a file: a digest of the page's login cookies (empty when login is off)."""
    tokens = sorted(f"{name}={value}" for name, value in cookies.items() if name.startswith("access-token"))
    return hashlib.sha256("\n".join(tokens).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an upload is not taken: the HTTP status and one line for the caller (never what others hold)."""

    status: int
    text: str


@dataclass(eq=False)
class Receiving:
    """One upload under way: whose allowance its bytes count against, how many arrived, and why it was cut off."""

    owner: str
    received: int = 0
    refusal: Refusal | None = None


@dataclass
class _Cached:
    """A file Gradio cached: its size, and the sessions holding it with the caller each counts it against."""

    size: int
    holders: dict[str, str] = field(default_factory=dict)


class UploadInbox:
    """The upload cache's received files, per session, with its size cap, each caller's quota and how long a file
    may wait. Thread-safe (loop and workers share it).

    ``owned``: the folder is docbot's own (``data_dir/gradio``), so anything in it is an upload's and may be cleared
    or expired; in a folder the operator chose, only the files recorded here are."""

    def __init__(
        self,
        folder: Path,
        cap_bytes: int,
        quota_bytes: int | None = None,
        ttl_s: float = float("inf"),
        *,
        owned: bool = True,
    ) -> None:
        self.folder = folder.resolve()
        self.cap_bytes = cap_bytes
        self.quota_bytes = cap_bytes if quota_bytes is None else quota_bytes
        self.ttl_s = ttl_s
        self.owned = owned
        self._cached: dict[str, _Cached] = {}
        self._receiving: set[Receiving] = set()
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Delete everything in the cache: copies left by an earlier run can never be added (nobody holds them)."""
        if not self.folder.is_dir():
            return
        for entry in self.folder.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)

    # --- bytes as they arrive --------------------------------------------------------------------

    def held(self, owner: str | None = None) -> int:
        """Bytes the cache holds for ``owner`` (None: for everybody): files waiting to be added, and uploads under
        way as far as they arrived."""
        with self._lock:
            return self._held(owner)

    def _held(self, owner: str | None) -> int:
        receiving = sum(u.received for u in self._receiving if owner is None or u.owner == owner)
        cached = sum(c.size for c in self._cached.values() if owner is None or owner in c.holders.values())
        return receiving + cached

    def admit(self, owner: str, length: int) -> Receiving | Refusal:
        """Start receiving an upload that says it has ``length`` bytes, for ``owner``; refused at once when that
        cannot fit now. Nothing is reserved: :meth:`take_in` counts the bytes that actually arrive."""
        if length > self.quota_bytes:
            return Refusal(
                413,
                f"This upload ({length:,} bytes) is more than one person's upload allowance ({self.quota_bytes:,} "
                "bytes): choose fewer files at a time.",
            )
        with self._lock:
            refusal = self._over(owner, length)
            if refusal is not None:
                return refusal
            upload = Receiving(owner)
            self._receiving.add(upload)
            return upload

    def take_in(self, upload: Receiving, count: int) -> bool:
        """Count ``count`` more bytes of ``upload``; False (and ``upload.refusal`` set) when they do not fit."""
        with self._lock:
            refusal = self._over(upload.owner, count)
            if refusal is None:
                upload.received += count
                return True
        upload.refusal = refusal
        return False

    def _over(self, owner: str, more: int) -> Refusal | None:
        if self._held(owner) + more > self.quota_bytes:
            return Refusal(429, QUOTA_USED)
        if self._held(None) + more > self.cap_bytes:
            return Refusal(413, CACHE_FULL)
        return None

    def finish(self, upload: Receiving) -> None:
        """The upload is over: its bytes no longer count (its files do, once recorded)."""
        with self._lock:
            self._receiving.discard(upload)

    # --- cached files ----------------------------------------------------------------------------

    def record(self, paths: Iterable[str], session: str, owner: str) -> None:
        """These cached files came from ``session``; their bytes count against ``owner`` until added or gone."""
        for given in paths:
            path = os.path.abspath(given)
            try:
                size = os.lstat(path).st_size
            except OSError:
                size = 0
            with self._lock:
                self._cached.setdefault(path, _Cached(size)).holders[session] = owner

    def take(self, given: str, session: str) -> BinaryIO:
        """Open a file this session uploaded, or raise :class:`UploadRefusedError` with :data:`NOT_RECEIVED`."""
        path = os.path.abspath(given)
        with self._lock:
            held = session in (self._cached[path].holders if path in self._cached else ())
        inside = Path(path).is_relative_to(self.folder) and os.path.realpath(path) == path
        if not held or not inside:
            raise UploadRefusedError(NOT_RECEIVED)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            raise UploadRefusedError(NOT_RECEIVED) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise UploadRefusedError(NOT_RECEIVED)
        return os.fdopen(fd, "rb")

    def discard(self, given: str, session: str) -> None:
        """Forget a file for this session and delete the cached copy once no session holds it."""
        path = os.path.abspath(given)
        with self._lock:
            cached = self._cached.get(path)
            if cached is None or session not in cached.holders:
                return  # never delete a path this session did not upload
            del cached.holders[session]
            if cached.holders:
                return
            del self._cached[path]
        self._delete(path)

    def drop(self, paths: Iterable[str]) -> None:
        """Delete the files of an upload that was refused after Gradio cached them (unless a session holds the
        same path: the same name and content uploaded by someone else); called while that upload is received."""
        for given in paths:
            path = os.path.abspath(given)
            if Path(path).is_relative_to(self.folder):
                with self._lock:
                    held = path in self._cached
                if not held:
                    self._delete(path, uploads_of_its_own=1)

    def expire(self) -> int:
        """Delete the files that waited in the cache longer than ``ttl_s`` (by when they were last written) and
        forget them; how many went. In docbot's own folder that is every file (also the parts left by an upload that
        failed inside Gradio), in a folder the operator chose only the files recorded here."""
        cutoff = time.time() - self.ttl_s
        with self._lock:
            recorded = list(self._cached)
        candidates = self._files() if self.owned else recorded
        gone = 0
        for path in candidates:
            if not _written_before(path, cutoff):
                continue
            with self._lock:
                self._cached.pop(path, None)
            self._delete(path)
            gone += 1
        return gone

    def _files(self) -> list[str]:
        return [os.path.join(folder, name) for folder, _, names in os.walk(self.folder) for name in names]

    def _delete(self, path: str, uploads_of_its_own: int = 0) -> None:
        """Delete a cached file, and its folder (Gradio's, named by the content's hash) once empty, unless an upload
        other than the ``uploads_of_its_own`` deleting it is being received: that one may be making the same
        folder for the same bytes right now, and a folder removed between Gradio's ``mkdir`` and its check failed
        the upload with a 500. A folder kept then is empty and goes with :meth:`clear` at the next start."""
        Path(path).unlink(missing_ok=True)
        with self._lock:
            others = len(self._receiving) > uploads_of_its_own
        parent = Path(path).parent
        if not others and parent != self.folder and parent.is_relative_to(self.folder):
            with contextlib.suppress(OSError):  # Gradio's per-upload folder, once empty
                parent.rmdir()


def _written_before(path: str, cutoff: float) -> bool:
    try:
        return os.lstat(path).st_mtime < cutoff
    except FileNotFoundError:
        return False
