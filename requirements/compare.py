"""Which versions this environment runs, beside the lock: ``python requirements/compare.py requirements/lock.txt``.

``make test-latest`` prints this before its tests, so that a failure names the releases that moved.
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import distributions
from pathlib import Path

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(lock: Path) -> dict[str, str]:
    pins = (_PIN.match(line) for line in lock.read_text().splitlines())
    return {canonical(pin[1]): pin[2] for pin in pins if pin}


def installed() -> dict[str, str]:
    return {canonical(dist.metadata["Name"]): dist.version for dist in distributions()}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    pins, here = locked(Path(argv[0])), installed()
    moved = sorted(name for name in pins.keys() & here.keys() if pins[name] != here[name])
    print(f"running {len(here)} packages; {len(moved)} differ from {argv[0]}:")
    for name in moved:
        print(f"  {name:<32} {pins[name]:>14} (lock)  ->  {here[name]}")
    for name in sorted(here.keys() - pins.keys()):
        print(f"  {name:<32} {'-':>14} (lock)  ->  {here[name]} (not in the lock)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
