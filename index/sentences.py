"""Sentences of passage text: where each one lies, and the id its vector is stored under.

Used both when a chunk is indexed (each sentence is embedded then, for small-to-big retrieval and for answering
without embedding passage sentences at question time) and by the answering side, so both cut a passage the same
way. Citation markers (``[1]``, ``[2, 3]``) after a full stop stay with their sentence: answers are cut here too.
"""

from __future__ import annotations

import re

#: The numbers inside one citation marker: ``1`` or ``1, 3``.
MARKER_NUMBERS = r"\d{1,3}(?:\s*,\s*\d{1,3})*"
#: Each pattern that reads document text runs in linear time on any text: a list item's lookahead stays on its line.
_SENTENCE_END = re.compile(
    rf"[.!?](?:\s*\[{MARKER_NUMBERS}\])*[\"')\]]*(?P<gap>\s+)(?=[\"'(\[]?[A-Z0-9])"
    r"|(?P<para>\n{2,})"
    r"|(?P<item>\n)(?=[^\S\n]*(?:[-*•#]|\d+[.)]\s))"
)

Span = tuple[int, int]


def sentence_spans(text: str) -> list[Span]:
    """(start, end) of each sentence of ``text``, trimmed of surrounding whitespace."""
    spans = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        group = match.lastgroup or "gap"
        spans.append((start, match.start(group)))
        start = match.end(group)
    spans.append((start, len(text)))
    trimmed = []
    for lo, hi in spans:
        while lo < hi and text[lo].isspace():
            lo += 1
        while hi > lo and text[hi - 1].isspace():
            hi -= 1
        if hi > lo:
            trimmed.append((lo, hi))
    return trimmed


def sentence_id(chunk_id: str, number: int) -> str:
    """The id the vector of a chunk's ``number``-th sentence (0-based) is stored under."""
    return f"{chunk_id}:s{number}"


def chunk_of(sentence: str) -> str:
    """The chunk id inside a :func:`sentence_id`."""
    return sentence.rpartition(":s")[0]
