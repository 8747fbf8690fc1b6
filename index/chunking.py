"""Document → Chunks: paragraph- then sentence-aware splitting with overlap and exact character offsets."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from langchain_text_splitters import RecursiveCharacterTextSplitter

from index.types import Chunk, Document

#: Paragraphs first, then lines, then sentences, then clauses, then words.
SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""]


def chunk_id(source: str, page: int | None, start: int, text: str) -> str:
    """Stable id: the same passage of the same file at the same place always gets the same id."""
    key = f"{source}\x1f{page or 0}\x1f{start}\x1f{text}"
    return hashlib.blake2b(key.encode("utf-8"), digest_size=16).hexdigest()


class Chunker:
    """Splits documents into overlapping passages; each knows its span in the document text."""

    def __init__(self, chunk_size: int, chunk_overlap: int) -> None:
        self._splitter = RecursiveCharacterTextSplitter(
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            separators=SEPARATORS,
            keep_separator="end",
            add_start_index=True,
            strip_whitespace=True,
        )

    def split(self, document: Document, content_hash: str) -> list[Chunk]:
        return list(self._with_offsets(document, content_hash, self._splitter.split_text(document.text)))

    @staticmethod
    def _with_offsets(document: Document, content_hash: str, parts: Iterable[str]) -> Iterable[Chunk]:
        # Each part is a verbatim slice of the text; overlap means the next one starts before this ends,
        # so search from just after the previous start.
        cursor = 0
        for part in parts:
            start = document.text.find(part, cursor)
            if start < 0:  # cannot happen for verbatim slices; kept honest rather than guessed
                raise ValueError(f"chunk not found in {document.source}")
            end = start + len(part)
            yield Chunk(
                id=chunk_id(document.source, document.page, start, part),
                text=part,
                source=document.source,
                title=document.title,
                page=document.page,
                start=start,
                end=end,
                content_hash=content_hash,
            )
            cursor = start + 1
