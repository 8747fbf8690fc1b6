"""The typed values that flow through docbot: on the write path files become Documents, Documents become Chunks; on
the read path a search returns a Retrieval of Passages, with the Coverage rule it was judged by."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from index.coverage import evidence

if TYPE_CHECKING:
    import numpy as np


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


@dataclass(frozen=True, slots=True)
class Passage:
    """A retrieved chunk with where it sits in its document and how it ranked."""

    id: str
    text: str
    source: str
    title: str
    page: int | None
    start: int
    end: int
    score: float  # fused RRF score
    similarity: float | None  # cosine similarity to the query, when dense search found it
    collection: str = ""  # the collection it comes from, when retrieved through index.fusion
    sentences: int = 0  # how many sentence vectors the index stored for it (0: none, embed them when needed)


@dataclass(frozen=True, slots=True)
class Coverage:
    """What "the documents cover this query" means, once for every use (index.coverage): a passage this close to
    the query (cosine) covers it when its evidence, with the query's term support, reaches the floor and the
    similarity the fixed ``relevance_floor``. The refusal decision asks it of the best passage; the grounding guard
    of a model's answer asks it of the passage sentence each claim is checked against."""

    support: float  # the query's term support on its first passages (index.term_support)
    floor: float  # the evidence a query needs (index.coverage.FLOOR); -inf when coverage = floor
    relevance_floor: float

    def covers(self, similarity: float) -> bool:
        return similarity >= self.relevance_floor and evidence(similarity, self.support) >= self.floor


@dataclass(frozen=True, slots=True)
class Retrieval:
    passages: list[Passage]
    best_similarity: float  # highest cosine similarity among dense candidates (-1 when none)
    evidence: float  # how strongly the passages bear on the query (index.coverage.evidence)
    floor: float  # the evidence a query needs to count as covered (index.coverage)
    covered: bool  # False: the documents do not cover the query
    coverage: Coverage  # the rule ``covered`` came from, for the answerer's own checks
    query_vector: np.ndarray | None = field(default=None, compare=False)  # the query's embedding, when made
