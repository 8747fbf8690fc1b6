"""The parsing worker: ``python -m index.parse_worker READ_FD WRITE_FD MEMORY_MB``, started by :mod:`index.parse_pool`.

It imports only the file parsers (never torch, never ``bot/``), caps its own address space at ``MEMORY_MB``
(``RLIMIT_AS``), then parses one file per request until its parent closes the pipe. A request is a header
``(name, source, max_bytes)`` followed by the file's bytes; the answer is ``("ok", LoadedFile)``,
``("error", reason)`` or ``("memory", "")``. The parent kills it when a file takes too long.

Parsers do not all fail with ``MemoryError`` when memory runs out (lxml reports "unknown error", say), so a
file whose parse brought the worker within :data:`NEAR_LIMIT` of its budget counts as needing more, and the
worker then exits (status 0) rather than carry that peak to the next file.
"""

from __future__ import annotations

import os
import resource
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

#: Exit status of a worker whose memory budget is too small for the parsers themselves.
NO_ROOM_TO_START = 3
#: Share of the memory budget that, once reached while reading a file, counts as running out.
NEAR_LIMIT = 0.9


def peak_memory_mb() -> float:
    """The most address space this process has held (``VmPeak``), in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmPeak:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _exit_when_orphaned(parent: int) -> None:
    """A worker busy with a hostile file when its parent dies would otherwise go on parsing it alone."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def serve(requests: Connection, answers: Connection, memory_mb: int) -> None:
    from index.errors import LoadError
    from index.loaders import one_line, parse_file

    while True:
        try:
            name, source, max_bytes = requests.recv()
            data = requests.recv_bytes()
        except EOFError:  # the parent is done with this worker
            return
        try:
            answer: tuple[str, object] = ("ok", parse_file(Path(name), data, source, max_bytes=max_bytes))
        except LoadError as exc:
            answer = ("error", str(exc))
        except MemoryError:
            answer = ("memory", "")
        except Exception as exc:  # a parser bug on a hostile file: the file fails, the server does not
            answer = ("error", f"the reader failed on this file ({one_line(exc)})")
        del data
        near_limit = peak_memory_mb() >= NEAR_LIMIT * memory_mb
        if near_limit and answer[0] == "error":
            answer = ("memory", "")
        answers.send(answer)
        if near_limit:
            return


def main(argv: list[str]) -> int:
    read_fd, write_fd, memory_mb = (int(arg) for arg in argv)
    requests = Connection(read_fd, writable=False)
    answers = Connection(write_fd, readable=False)
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        from index.loaders import preload_parsers

        preload_parsers()  # before the first file: its time budget is for the file, not for imports
    except (MemoryError, ImportError, OSError):  # a budget too small to load the parsers' libraries
        return NO_ROOM_TO_START
    answers.send(("ready", ""))
    serve(requests, answers, memory_mb)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
