"""Document → Chunks: paragraph- then sentence-aware splitting with overlap and exact character offsets.

The splitter works on spans of the document text, never on copies of it, so every chunk's offsets are
exact by construction (``document.text[chunk.start:chunk.end] == chunk.text``), even in text that
repeats itself.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

from index.types import Chunk, Document

#: Where text may be cut, strongest first: paragraphs, lines, sentences, clauses, then words.
#: The boundary stays with the text before it.
BOUNDARIES = tuple(re.compile(pattern) for pattern in (r"\n\n", r"\n", r"[.?!…][\"'”’)\]]* ", r"[;:] ", r", ", r" "))

Span = tuple[int, int]


def chunk_id(source: str, page: int | None, start: int, text: str, root: str = "") -> str:
    """Stable id: the same passage of the same file at the same place always gets the same id."""
    key = f"{root}\x1f{source}\x1f{page or 0}\x1f{start}\x1f{text}"
    return hashlib.blake2b(key.encode("utf-8"), digest_size=16).hexdigest()


def _pieces(text: str, start: int, end: int, boundary: re.Pattern[str]) -> Iterator[Span]:
    cut = start
    for match in boundary.finditer(text, start, end):
        yield cut, match.end()
        cut = match.end()
    if cut < end:
        yield cut, end


def _strip(text: str, start: int, end: int) -> Span:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


class Chunker:
    """Splits documents into overlapping passages of at most ``chunk_size`` characters."""

    def __init__(self, chunk_size: int, chunk_overlap: int) -> None:
        if not 0 <= chunk_overlap < chunk_size:
            raise ValueError(f"need 0 <= chunk_overlap ({chunk_overlap}) < chunk_size ({chunk_size})")
        self.size = chunk_size
        self.overlap = chunk_overlap

    def split(self, document: Document, content_hash: str, *, root: str = "") -> list[Chunk]:
        """Chunks of one document; ``root`` (the indexed folder) keeps ids of same-named files apart."""
        text = document.text
        return [
            Chunk(
                id=chunk_id(document.source, document.page, start, text[start:end], root),
                text=text[start:end],
                source=document.source,
                title=document.title,
                page=document.page,
                start=start,
                end=end,
                content_hash=content_hash,
            )
            for start, end in self.spans(text)
        ]

    def spans(self, text: str) -> list[Span]:
        """Where the chunks of ``text`` lie, in order; none is empty or lies inside the one before."""
        spans: list[Span] = []
        for raw_start, raw_end in self._split(text, 0, len(text), 0):
            start, end = _strip(text, raw_start, raw_end)
            if end > start and (not spans or end > spans[-1][1]):
                spans.append((start, end))
        return spans

    def _split(self, text: str, start: int, end: int, level: int) -> Iterator[Span]:
        """Cut at the strongest boundary present; merge the small pieces, split the big ones further."""
        if end - start <= self.size:
            yield start, end
            return
        for depth in range(level, len(BOUNDARIES)):
            if BOUNDARIES[depth].search(text, start, end):
                break
        else:
            yield from self._windows(start, end)
            return
        run: list[Span] = []
        for piece in _pieces(text, start, end, BOUNDARIES[depth]):
            if piece[1] - piece[0] <= self.size:
                run.append(piece)
                continue
            yield from self._merge(run)
            run = []
            yield from self._split(text, piece[0], piece[1], depth + 1)
        yield from self._merge(run)

    def _windows(self, start: int, end: int) -> Iterator[Span]:
        """An unbroken run of characters (no space at all): fixed windows overlapping by ``chunk_overlap``."""
        while start + self.size < end:
            yield start, start + self.size
            start += self.size - self.overlap
        yield start, end

    def _merge(self, pieces: list[Span]) -> Iterator[Span]:
        """Greedily join consecutive pieces up to ``chunk_size``; each chunk repeats the tail of the one before."""
        first = 0
        for i, (_, end) in enumerate(pieces):
            if end - pieces[first][0] > self.size:
                yield pieces[first][0], pieces[i - 1][1]
                while pieces[i - 1][1] - pieces[first][0] > self.overlap or end - pieces[first][0] > self.size:
                    first += 1
        if pieces:
            yield pieces[first][0], pieces[-1][1]
