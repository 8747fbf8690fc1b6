"""Every file is parsed in a worker process under a time and a memory budget, never in the server's own process.

A hostile file (a regex that backtracks, a DOCX of endless paragraphs, a PDF that inflates without end) can then
cost at most ``parse_timeout_s`` of one worker's time and ``parse_memory_mb`` of its memory: the worker is
killed and replaced, the file fails with a one-line :class:`LoadError`, and the server's threads, which only
wait on a pipe, keep answering.

Workers are fresh interpreters (``python -m index.parse_worker``, started with exec, as multiprocessing's
"spawn" does, never a fork of a process holding torch's threads) that import only the parsers. They are
started lazily, on the first file, and kept for the next ones: one round trip a file is the whole cost. A process
has one pool of each kind, made by the composition root (``app.Pools``) and handed to what parses; its idle
workers are killed when it is closed, dropped, or the process exits.

:class:`WorkerPool` is the mechanism for any worker program built on :mod:`index.worker_loop` (the PDF viewer's
``bot.view.pdf_worker`` is the other one); :class:`ParsePool` is the parsers' pool.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import weakref
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from index.errors import LoadError
from index.types import LoadedFile
from index.worker_loop import NO_ROOM_TO_START

#: How long a new worker may take to start (import its libraries) before that counts as a failure.
START_TIMEOUT_S = 120.0
#: Idle workers kept for the next file; one more is started for each file parsed at the same moment.
MAX_IDLE = 2
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


@dataclass(frozen=True, slots=True)
class ParseBudget:
    """What one file may cost: wall-clock seconds and the worker's whole address space in MB."""

    timeout_s: float
    memory_mb: int


@dataclass(frozen=True, slots=True)
class WorkerKind:
    """A worker program and the words of its failures: the domain error raised and the settings to raise."""

    module: str  # run as ``python -m <module> READ_FD WRITE_FD MEMORY_MB``
    error: type[Exception]  # raised with the one-line reason
    timeout_setting: str
    memory_setting: str
    doing: str  # what a request does, for "took longer than 5 s to <doing>"


PARSING = WorkerKind("index.parse_worker", LoadError, "parse_timeout_s", "parse_memory_mb", "read")


class _WorkerLost(Exception):
    """The worker died (or could not start): the file crashed it or the budget is too small."""


class _IdleWorkerDied(_WorkerLost):
    """The worker was gone before the file reached it: another worker can take the file."""


class _Worker:
    def __init__(self, kind: WorkerKind, memory_mb: int) -> None:
        self.kind = kind
        self.memory_mb = memory_mb
        child_read, parent_write = os.pipe()
        parent_read, child_write = os.pipe()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))}
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", kind.module, str(child_read), str(child_write), str(memory_mb)],
                pass_fds=(child_read, child_write),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=env,
            )
        except BaseException:
            os.close(parent_write)
            os.close(parent_read)
            raise
        finally:
            os.close(child_read)
            os.close(child_write)
        self.requests = Connection(parent_write, readable=False)
        self.answers = Connection(parent_read, writable=False)
        try:
            if self._receive(START_TIMEOUT_S) is None:  # no "ready"
                raise _WorkerLost(f"a reader did not start within {START_TIMEOUT_S:g} s (is the machine overloaded?)")
        except _WorkerLost:
            self.close()
            raise

    def _receive(self, timeout_s: float) -> tuple[str, object] | None:
        """The worker's answer, or None when it did not come in time; raises :class:`_WorkerLost` if it died."""
        try:
            if not self.answers.poll(timeout_s):
                return None
            answer: tuple[str, object] = self.answers.recv()
            return answer
        except (EOFError, OSError) as exc:
            code = self.process.wait()
            if code == 0:  # it retired (came near its memory budget) before reading this request
                raise _IdleWorkerDied("the reader retired") from exc
            if code == NO_ROOM_TO_START:
                setting = self.kind.memory_setting
                raise _WorkerLost(
                    f"{setting} ({self.memory_mb} MB) is too small to start a reader (raise {setting})"
                ) from exc
            raise _WorkerLost(f"the file crashed its reader (exit status {code})") from exc

    def call(self, header: object, data: bytes, timeout_s: float) -> tuple[str, object]:
        try:
            self.requests.send(header)
            self.requests.send_bytes(data)
        except OSError as exc:
            raise _IdleWorkerDied(f"the reader stopped ({exc})") from exc
        answer = self._receive(timeout_s)
        if answer is None:
            kind = self.kind
            raise kind.error(f"took longer than {timeout_s:g} s to {kind.doing} (raise {kind.timeout_setting})")
        return answer

    def close(self) -> None:
        """Kill the worker (it may be stuck in a hostile file) and reap it."""
        self.process.kill()
        self.process.wait()
        self.requests.close()
        self.answers.close()


class WorkerPool:
    """Workers of one kind shared by every thread of the process; thread-safe."""

    def __init__(self, kind: WorkerKind) -> None:
        self.kind = kind
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        # the idle workers die with the pool: when it is dropped, or at the process's exit at the latest
        weakref.finalize(self, _close_idle, self._idle, self._lock)

    def call(self, header: object, data: bytes, *, budget: ParseBudget) -> object:
        """A worker's answer to one request; raises the kind's error with a one-line reason."""
        error = self.kind.error
        for attempt in range(2):
            worker, reused = self._take(budget.memory_mb)
            try:
                kind, value = worker.call(header, data, budget.timeout_s)
            except _WorkerLost as exc:
                worker.close()
                # A reused worker may have died while it waited (killed from outside, say) before it read this
                # request: a fresh one tells whether the file is to blame.
                if attempt == 0 and (reused or isinstance(exc, _IdleWorkerDied)):
                    continue
                raise error(str(exc)) from None
            except BaseException:  # out of time (or interrupted): the worker may still be busy with the file
                worker.close()
                raise
            if kind == "memory":
                worker.close()  # a worker that ran out of memory may be left in a bad state
                raise error(
                    f"needed more than {budget.memory_mb} MB to {self.kind.doing} (raise {self.kind.memory_setting})"
                )
            self._give_back(worker)
            if kind == "ok":
                return value
            raise error(str(value))
        raise AssertionError("unreachable")

    def _take(self, memory_mb: int) -> tuple[_Worker, bool]:
        """An idle worker with this memory budget (reused: True) or a new one (False)."""
        with self._lock:
            dead = [worker for worker in self._idle if worker.process.poll() is not None]
            self._idle[:] = [worker for worker in self._idle if worker not in dead]
            found = next((w for w in self._idle if w.memory_mb == memory_mb), None)
            if found is not None:
                self._idle.remove(found)
        for worker in dead:
            worker.close()
        if found is not None:
            return found, True
        try:
            return _Worker(self.kind, memory_mb), False
        except _WorkerLost as exc:
            raise self.kind.error(str(exc)) from None

    def warm(self, memory_mb: int) -> None:
        """Start a worker now (about a second) so the first request does not wait for it; a failure is left for
        that request to report."""
        try:
            worker = _Worker(self.kind, memory_mb)
        except _WorkerLost:
            return
        self._give_back(worker)

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            self._idle.append(worker)
            surplus = self._idle[:-MAX_IDLE]
            del self._idle[:-MAX_IDLE]
        for old in surplus:
            old.close()

    def close(self) -> None:
        """Kill the idle workers (a later request starts a new one)."""
        _close_idle(self._idle, self._lock)


def _close_idle(idle: list[_Worker], lock: threading.Lock) -> None:
    with lock:
        workers = idle[:]
        idle.clear()
    for worker in workers:
        worker.close()


class ParsePool(WorkerPool):
    """The parsers' workers: :func:`index.loaders.parse_file` under a budget."""

    def __init__(self) -> None:
        super().__init__(PARSING)

    def parse(self, path: Path, data: bytes, source: str, *, max_bytes: int, budget: ParseBudget) -> LoadedFile:
        """Documents of one file, parsed in a worker; raises :class:`LoadError` with a one-line reason."""
        loaded = self.call((str(path), source, max_bytes), data, budget=budget)
        assert isinstance(loaded, LoadedFile)
        return loaded
