"""The child side of a budgeted worker process (:mod:`index.parse_pool`): one request at a time over a pipe.

A worker program (``index.parse_worker``, ``bot.view.pdf_worker``) calls :func:`run` with its own preload and
request handler. :func:`run` lowers the process's CPU priority (:data:`NICENESS`), caps its address space at
``MEMORY_MB`` (``RLIMIT_AS``), imports the handler's libraries, says "ready", then answers requests until its
parent closes the pipe. A request is a header (any picklable value) followed by a block of bytes; the answer is
``("ok", value)``, ``("error", reason)`` or ``("memory", "")``. The parent kills the worker when a request takes
too long.

Libraries do not all fail with ``MemoryError`` when memory runs out (lxml reports "unknown error", say), so a
request that brought the worker within :data:`NEAR_LIMIT` of its budget counts as needing more, and the worker
then exits (status 0) rather than carry that peak to the next request.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection

from index.loaders import one_line

#: Exit status of a worker whose memory budget is too small for the libraries themselves.
NO_ROOM_TO_START = 3
#: Exit status of a worker whose parent went away while it was answering.
PARENT_GONE = 4
#: Share of the memory budget that, once reached while handling a request, counts as running out.
NEAR_LIMIT = 0.9
#: Added to a worker's nice value: on a busy machine the server's own threads (answers, health checks) get the
#: CPU first, and a hostile file takes only what they leave.
NICENESS = 10

#: A request's header and bytes → the answer's value; raises the worker's expected error with a one-line reason.
Handler = Callable[[object, bytes], object]


def peak_memory_mb() -> float:
    """The most address space this process has held (``VmPeak``), in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmPeak:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _exit_when_orphaned(parent: int) -> None:
    """A worker busy with a hostile file when its parent dies would otherwise go on with it alone."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def serve(
    requests: Connection, answers: Connection, memory_mb: int, handle: Handler, expected: tuple[type[Exception], ...]
) -> None:
    while True:
        try:
            header = requests.recv()
            data = requests.recv_bytes()
        except EOFError:  # the parent is done with this worker
            return
        try:
            answer: tuple[str, object] = ("ok", handle(header, data))
        except expected as exc:
            answer = ("error", str(exc))
        except MemoryError:
            answer = ("memory", "")
        except Exception as exc:  # a library's bug on a hostile file: the file fails, the server does not
            answer = ("error", f"the reader failed on this file ({one_line(exc)})")
        del data
        near_limit = peak_memory_mb() >= NEAR_LIMIT * memory_mb
        if near_limit and answer[0] == "error":
            answer = ("memory", "")
        answers.send(answer)
        if near_limit:
            return


def run(argv: list[str], preload: Callable[[], None], handle: Handler, expected: tuple[type[Exception], ...]) -> int:
    """The worker's whole life: ``argv`` is ``READ_FD WRITE_FD MEMORY_MB``; returns the exit status."""
    read_fd, write_fd, memory_mb = (int(arg) for arg in argv)
    requests = Connection(read_fd, writable=False)
    answers = Connection(write_fd, readable=False)
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()
    os.nice(NICENESS)
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        preload()  # before the first request: its time budget is for the file, not for imports
    except (MemoryError, ImportError, OSError):  # a budget too small to load the libraries
        return NO_ROOM_TO_START
    try:
        answers.send(("ready", ""))
        serve(requests, answers, memory_mb, handle, expected)
    except BrokenPipeError:  # the parent died (a killed index run): nobody is left to answer, nor to read a traceback
        return PARENT_GONE
    return 0
