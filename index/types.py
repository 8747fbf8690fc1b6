"""The typed values that flow through the write path: files become Documents, Documents become Chunks."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Document:
    """The text of one file, or of one page of a PDF, with where it came from."""

    text: str
    source: str  # path relative to the indexed root, with forward slashes
    title: str
    page: int | None = None  # 1-based PDF page


@dataclass(frozen=True, slots=True)
class LoadedFile:
    """Everything read from one file: its documents (one per PDF page) and the hash of its bytes."""

    source: str
    content_hash: str
    documents: list[Document] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A passage of a document. ``start``/``end`` are character offsets into ``Document.text``."""

    id: str
    text: str
    source: str
    title: str
    page: int | None
    start: int
    end: int
    content_hash: str  # hash of the whole file the chunk comes from

    def metadata(self, n_chunks: int) -> dict[str, str | int]:
        """What is stored beside the vector in Chroma (Chroma metadata has no ``None``)."""
        return {
            "source": self.source,
            "title": self.title,
            "page": self.page or 0,
            "start": self.start,
            "end": self.end,
            "content_hash": self.content_hash,
            "n_chunks": n_chunks,
        }
