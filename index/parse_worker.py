"""The parsing worker: ``python -m index.parse_worker READ_FD WRITE_FD MEMORY_MB``, started by :mod:`index.parse_pool`.

It imports only the file parsers (never torch, never ``bot/``) and parses one file per request under the budget
:mod:`index.worker_loop` sets. A request is a header ``(name, source, max_bytes)`` followed by the file's bytes;
the answer's value is a :class:`~index.types.LoadedFile`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from index.errors import LoadError
from index.worker_loop import run


def _parse(header: object, data: bytes) -> object:
    from index.loaders import parse_file

    name, source, max_bytes = header  # type: ignore[misc]
    return parse_file(Path(name), data, source, max_bytes=max_bytes)


def main(argv: list[str]) -> int:
    from index.loaders import preload_parsers

    return run(argv, preload_parsers, _parse, (LoadError,))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
