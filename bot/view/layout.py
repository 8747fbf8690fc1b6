"""Where docbot's text of a PDF page sits on the page: character offsets → boxes (pure Python, no PDF library).

docbot's text of a page is pypdf's extraction cleaned (:mod:`index.text_clean`: line-end hyphens and line breaks
joined, running headers dropped, ligatures spelt out), which keeps for each of its characters the index of the
extracted character it comes from; the boxes come from pdfium's characters. The extracted text is aligned with
pdfium's, and a span of the cleaned text is boxed through the map back to it.

The two extractions differ in white space, ligatures and hyphens, so they are aligned on their words (NFKC,
case-folded, hyphens left out) with :mod:`difflib`, then on the characters where the words differ (matching runs
shorter than :data:`MIN_RUN` are noise and left out), then runs of words read in another order (columns taken in
another order) are found again. A span's characters become one box per line fragment.
"""

from __future__ import annotations

import math
import unicodedata
from array import array
from dataclasses import dataclass
from difflib import SequenceMatcher

from index.text_clean import CleanPage

#: Shortest run of characters the alignment trusts (a lone "e" matched across the page is chance).
MIN_RUN = 3
#: Shortest run of words found again elsewhere on the page when the two extractions read it in another order.
MOVED_RUN = 3
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
        """Whether ``other`` lies inside this box (give or take ``slack``): what a viewer's tests check."""
        return (
            self.left - slack <= other.left
            and self.top - slack <= other.top
            and self.right + slack >= other.right
            and self.bottom + slack >= other.bottom
        )


@dataclass(frozen=True, slots=True)
class PageChars:
    """pdfium's characters of one page, in its order: text, box and line number of each, packed in arrays (a page
    of 4,000 characters is kept in about 200 KB rather than a megabyte of objects)."""

    text: str
    edges: array[float]  # left, top, right, bottom of each character; NaN: no ink (a generated space, say)
    lines: array[int]  # a number per character; it changes where a line (or a column) breaks

    @classmethod
    def of(cls, text: str, boxes: list[Box | None], lines: list[int]) -> PageChars:
        edges = array("d")
        for box in boxes:
            edges.extend((box.left, box.top, box.right, box.bottom) if box else (math.nan,) * 4)
        return cls(text=text, edges=edges, lines=array("l", lines))

    def box(self, index: int) -> Box | None:
        left, top, right, bottom = self.edges[4 * index : 4 * index + 4]
        return None if math.isnan(left) else Box(left, top, right, bottom)


@dataclass(frozen=True, slots=True)
class PageLayout:
    """docbot's text of one page (``page.text``, cleaned from ``page.original``) and, for each character of the
    original, the pdfium character it is (-1: none)."""

    page: CleanPage
    chars: PageChars
    to_char: array[int]

    @property
    def text(self) -> str:
        return self.page.text

    def boxes(self, start: int, end: int) -> list[Box]:
        """One box per line fragment of the characters ``text[start:end]``, in reading order: those of the original
        they come from, with a hyphen the cleaning took out of a word at a line end."""
        shown = self.page.original_indices(start, end)
        hits = sorted({self.to_char[i] for i in shown if self.to_char[i] >= 0})
        fragments: list[Box] = []
        line = None
        for index in hits:
            box = self.chars.box(index)
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


Words = list[tuple[str, list[int]]]


def _pairs(ours: Words, theirs: Words) -> list[tuple[int, int]]:
    """(our index, their index) of the characters the two word lists share: words aligned in order first (fast,
    and where the extractions agree that is all), then the characters of the stretches that differ, then runs of
    words the two put in another order (columns read in another order, say)."""
    our_words, their_words = [w for w, _ in ours], [w for w, _ in theirs]
    if our_words == their_words:  # the usual case: the extractions differ in white space only
        return [pair for (_, a), (_, b) in zip(ours, theirs, strict=True) for pair in zip(a, b, strict=True)]
    pairs: list[tuple[int, int]] = []
    our_used: set[int] = set()
    their_used: set[int] = set()
    matcher = SequenceMatcher(None, our_words, their_words, autojunk=False)
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            for i, j in zip(range(a1, a2), range(b1, b2), strict=True):
                pairs.extend(zip(ours[i][1], theirs[j][1], strict=True))
            our_used.update(range(a1, a2))
            their_used.update(range(b1, b2))
        elif op == "replace":  # words split, joined or spelt differently: align their characters
            found = _char_pairs(ours[a1:a2], theirs[b1:b2])
            if found:
                pairs += found
                our_used.update(range(a1, a2))
                their_used.update(range(b1, b2))
    return pairs + _moved(ours, theirs, our_used, their_used)


def _char_pairs(ours: Words, theirs: Words) -> list[tuple[int, int]]:
    a_keys = "".join(w for w, _ in ours)
    b_keys = "".join(w for w, _ in theirs)
    a_at = [i for _, origin in ours for i in origin]
    b_at = [i for _, origin in theirs for i in origin]
    pairs: list[tuple[int, int]] = []
    for block in SequenceMatcher(None, a_keys, b_keys, autojunk=False).get_matching_blocks():
        if block.size >= min(MIN_RUN, len(a_keys)):
            pairs += zip(a_at[block.a : block.a + block.size], b_at[block.b : block.b + block.size], strict=True)
    return pairs


def _moved(ours: Words, theirs: Words, our_used: set[int], their_used: set[int]) -> list[tuple[int, int]]:
    """Pairs of the runs of at least :data:`MOVED_RUN` words left unmatched on both sides that are the same words
    in the same order: text the two extractions put in different places."""
    starts: dict[tuple[str, ...], list[int]] = {}
    for j in range(len(theirs) - MOVED_RUN + 1):
        if not their_used.intersection(range(j, j + MOVED_RUN)):
            starts.setdefault(tuple(w for w, _ in theirs[j : j + MOVED_RUN]), []).append(j)
    pairs: list[tuple[int, int]] = []
    i = 0
    while i <= len(ours) - MOVED_RUN:
        key = tuple(w for w, _ in ours[i : i + MOVED_RUN])
        free = not our_used.intersection(range(i, i + MOVED_RUN))
        j = next((j for j in starts.get(key, ()) if j not in their_used), None) if free else None
        if j is None:
            i += 1
            continue
        while i < len(ours) and j < len(theirs) and i not in our_used and j not in their_used:
            if ours[i][0] != theirs[j][0]:
                break
            pairs += zip(ours[i][1], theirs[j][1], strict=True)
            our_used.add(i)
            their_used.add(j)
            i, j = i + 1, j + 1
    return pairs


def align(text: str | CleanPage, chars: PageChars) -> PageLayout:
    """Map each character of docbot's text (its original, for a :class:`CleanPage`) onto pdfium's ``chars`` of the
    same page."""
    page = text if isinstance(text, CleanPage) else CleanPage.unchanged(text)
    to_char = [-1] * len(page.original)
    for ours, theirs in _pairs(_words(page.original), _words(chars.text)):
        if to_char[ours] < 0:
            to_char[ours] = theirs
    for at, char in enumerate(page.original):  # a hyphen after a placed letter is the hyphen pdfium has after it
        after = to_char[at - 1] + 1 if at else 0
        if char in _SKIPPED and to_char[at] < 0 and 0 < after < len(chars.text) and chars.text[after] in _SKIPPED:
            to_char[at] = after
    return PageLayout(page=page, chars=chars, to_char=array("l", to_char))
