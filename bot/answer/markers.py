"""``[n]`` citation markers in answer text: the one pattern, for every part that reads, removes or rewrites them."""

from __future__ import annotations

import re

from index.sentences import MARKER_NUMBERS as NUMBERS

#: A marker with the whitespace before it (so removing it leaves no gap); group 1 holds the numbers. ``(?<!\s)``
#: keeps it linear on long runs of whitespace: a match starts only where such a run starts.
MARKER = re.compile(rf"(?<!\s)\s*\[({NUMBERS})\]")


def numbers_of(group: str) -> list[int]:
    """``"1, 3"`` (a marker's group 1) → ``[1, 3]``."""
    return [int(part) for part in group.split(",")]


def parse_markers(sentence: str) -> tuple[str, list[int]]:
    """A sentence without its ``[n]`` markers, and the numbers they held (in order, no repeats)."""
    numbers: list[int] = []
    for match in MARKER.finditer(sentence):
        for n in numbers_of(match.group(1)):
            if n not in numbers:
                numbers.append(n)
    return strip_markers(sentence), numbers


def strip_markers(text: str) -> str:
    return MARKER.sub("", text).strip()
