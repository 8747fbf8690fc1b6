"""What the figures were measured on: cores, memory, CPU, library versions, how busy the machine was."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGES = (
    "torch",
    "sentence-transformers",
    "transformers",
    "chromadb",
    "bm25s",
    "langchain-chroma",
    "langchain-huggingface",
    "langchain-text-splitters",
)


def _proc_field(path: str, name: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == name:
                return value.strip()
    except OSError:
        return None
    return None


def process_memory_kib(pid: int, name: str = "VmRSS") -> int:
    """A memory figure of a running process in KiB, from ``/proc/<pid>/status``: ``VmRSS`` (now) or ``VmHWM`` (peak)."""
    value = _proc_field(f"/proc/{pid}/status", name)
    if value is None:
        raise RuntimeError(f"no {name} for process {pid}")
    return int(value.split()[0])


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def describe() -> dict[str, object]:
    mem_kib = _proc_field("/proc/meminfo", "MemTotal")
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return {
        "cores": len(os.sched_getaffinity(0)),
        "cpu": _proc_field("/proc/cpuinfo", "model name") or platform.processor(),
        "memory_gib": round(int(mem_kib.split()[0]) / 2**20, 1) if mem_kib else None,
        "platform": platform.platform(),
        "versions": versions,
        "load_average_at_start": load_average(),
    }
