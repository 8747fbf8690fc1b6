"""Where docbot's text of a PDF page sits on the page: character offsets → boxes (pure Python, no PDF library).

docbot's text of a page is pypdf's extraction, normalised (:func:`index.loaders.pdf_page_text`); the boxes come
from pdfium's characters. The two extractions differ in white space, ligatures and hyphens, so they are aligned
on their non-space characters (NFKC, case-folded, hyphens left out) with :mod:`difflib`; matching runs shorter
than :data:`MIN_RUN` are noise and left out. A span's characters then become one box per line fragment.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from difflib import SequenceMatcher

#: Shortest run of characters the alignment trusts (a lone "e" matched across the page is chance).
MIN_RUN = 3
_SKIPPED = frozenset("-\u00ad\u2010\u2011\x02")  # hyphens (and pdfium's soft-hyphen mark) are layout, not text


@dataclass(frozen=True, slots=True)
class Box:
    """A rectangle on the page as fractions (0..1) of its rendered width and height, origin top-left."""

    left: float
    top: float
    right: float
    bottom: float

    def union(self, other: Box) -> Box:
        return Box(
            min(self.left, other.left),
            min(self.top, other.top),
            max(self.right, other.right),
            max(self.bottom, other.bottom),
        )

    def contains(self, other: Box, slack: float = 1e-6) -> bool:
        return (
            self.left - slack <= other.left
            and self.top - slack <= other.top
            and self.right + slack >= other.right
            and self.bottom + slack >= other.bottom
        )

    def overlaps(self, other: Box) -> bool:
        return (
            self.left < other.right and other.left < self.right and self.top < other.bottom and other.top < self.bottom
        )


@dataclass(frozen=True, slots=True)
class PageChars:
    """pdfium's characters of one page, in its order: text, box (None: no ink, e.g. a generated space) and line."""

    text: str
    boxes: tuple[Box | None, ...]
    lines: tuple[int, ...]  # a number per character; it changes where a line (or a column) breaks


@dataclass(frozen=True, slots=True)
class PageLayout:
    """docbot's text of one page and, for each of its characters, the pdfium character it is (-1: none)."""

    text: str
    chars: PageChars
    to_char: tuple[int, ...]

    def boxes(self, start: int, end: int) -> list[Box]:
        """One box per line fragment of the characters ``text[start:end]``, in reading order."""
        hits = sorted({self.to_char[i] for i in range(max(start, 0), min(end, len(self.text))) if self.to_char[i] >= 0})
        fragments: list[Box] = []
        line = None
        for index in hits:
            box = self.chars.boxes[index]
            if box is None:
                continue
            if fragments and self.chars.lines[index] == line:
                fragments[-1] = fragments[-1].union(box)
            else:
                fragments.append(box)
                line = self.chars.lines[index]
        return fragments


def _words(text: str) -> list[tuple[str, list[int]]]:
    """The words alignment compares (NFKC, case-folded, no hyphens), each with the index in ``text`` of every one
    of its characters."""
    words: list[tuple[str, list[int]]] = []
    keys: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text + " "):
        if char.isspace():
            if keys:
                words.append(("".join(keys), origin))
                keys, origin = [], []
            continue
        if char in _SKIPPED:
            continue
        for key in unicodedata.normalize("NFKC", char).casefold():
            if not key.isspace():
                keys.append(key)
                origin.append(index)
    return words


def _pairs(ours: list[tuple[str, list[int]]], theirs: list[tuple[str, list[int]]]) -> list[tuple[int, int]]:
    """(our index, their index) of the characters the two word lists share: words aligned first (fast, and
    where the extractions agree that is all), then the characters of the stretches that differ."""
    pairs: list[tuple[int, int]] = []
    our_words, their_words = [w for w, _ in ours], [w for w, _ in theirs]
    if our_words == their_words:  # the usual case: the extractions differ in white space only
        return [pair for (_, a), (_, b) in zip(ours, theirs, strict=True) for pair in zip(a, b, strict=True)]
    matcher = SequenceMatcher(None, our_words, their_words, autojunk=False)
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            for (_, a), (_, b) in zip(ours[a1:a2], theirs[b1:b2], strict=True):
                pairs.extend(zip(a, b, strict=True))
        elif op == "replace":  # words split, joined or spelt differently: align their characters
            a_keys = "".join(w for w, _ in ours[a1:a2])
            b_keys = "".join(w for w, _ in theirs[b1:b2])
            a_at = [i for _, origin in ours[a1:a2] for i in origin]
            b_at = [i for _, origin in theirs[b1:b2] for i in origin]
            chars = SequenceMatcher(None, a_keys, b_keys, autojunk=False)
            for block in chars.get_matching_blocks():
                if block.size >= min(MIN_RUN, len(a_keys)):
                    a_run, b_run = a_at[block.a : block.a + block.size], b_at[block.b : block.b + block.size]
                    pairs.extend(zip(a_run, b_run, strict=True))
    return pairs


def align(text: str, chars: PageChars) -> PageLayout:
    """Map each character of docbot's ``text`` onto pdfium's ``chars`` of the same page."""
    to_char = [-1] * len(text)
    for ours, theirs in _pairs(_words(text), _words(chars.text)):
        if to_char[ours] < 0:
            to_char[ours] = theirs
    return PageLayout(text=text, chars=chars, to_char=tuple(to_char))
