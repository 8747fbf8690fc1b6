"""A stored conversation turn as its caller may see it now, wherever one is reopened (the page, ``/api`` with a
``conversation_id``): a citation from a collection the caller can no longer read (a grant revoked since the answer)
is dropped with its quote and passage, and so is every sentence of the answer that only such citations supported;
an answer left with no source is replaced by a note. A citation stored before collections existed counts as the
default collection's.
"""

from __future__ import annotations

import re
from dataclasses import replace

from bot.access.policy import Identity, allowed
from bot.answer.citations import Answer
from bot.answer.markers import MARKER, numbers_of
from bot.answer.text import sentence_spans

REMOVED_NOTE = "A source you can no longer read was removed from this answer."
HIDDEN_ANSWER = "This answer is hidden: its sources are in a collection you can no longer read."


def readable_answer(answer: Answer, identity: Identity | None, default_collection: str) -> Answer:
    """``answer`` without what ``identity`` may no longer read (unchanged when it may read every source)."""
    gone = {c.number for c in answer.citations if not allowed(identity, "read", c.collection or default_collection)}
    if not gone:
        return answer
    kept = [c for c in answer.citations if c.number not in gone]
    text = without_sources(answer.text, gone)
    if not kept or not text:
        return replace(answer, text=HIDDEN_ANSWER, citations=[], notice=None, unsupported=[])
    return replace(answer, text=text, citations=kept, notice=REMOVED_NOTE, unsupported=[])


def without_sources(text: str, gone: set[int]) -> str:
    """``text`` without the sentences whose ``[n]`` markers all name a source in ``gone``, and without those
    numbers in the markers of the sentences that stay (their separators kept)."""
    parts: list[str] = []
    last = 0
    for lo, hi in sentence_spans(text):
        sentence = text[lo:hi]
        numbers = [n for marker in MARKER.finditer(sentence) for n in numbers_of(marker.group(1))]
        if not (numbers and set(numbers) <= gone):
            parts += [text[last:lo] if parts else "", MARKER.sub(lambda m: _marker_without(m, gone), sentence)]
        last = hi
    return "".join(parts).strip()


def _marker_without(marker: re.Match[str], gone: set[int]) -> str:
    left = [n for n in numbers_of(marker.group(1)) if n not in gone]
    if not left:
        return ""
    return marker.group(0)[: marker.start(1) - marker.start(0)] + ", ".join(map(str, left)) + "]"
