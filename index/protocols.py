"""What the answering side types against: small ``typing.Protocol`` s that the real parts and any fake implement.

``index.embeddings.Embedder`` (or ``index.embedding_endpoint.EndpointEmbedder``), ``index.store.VectorStore``,
``index.retriever.HybridRetriever`` and the rerankers of ``index.rerank`` are the real implementations; a test may
hand ``bot/`` anything with the same shape.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

    from index.filters import Filter
    from index.store import DenseHit, StoredChunk
    from index.types import Retrieval


class Embedder(Protocol):
    """Texts → unit-length float32 vectors, one row a text."""

    @property
    def name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def encode(self, texts: list[str]) -> np.ndarray:
        """Documents' texts (chunks, sentences): what the index stores."""
        ...

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Questions (and texts compared like them: a question's parts, claims, probes), matched against stored
        vectors; may run a faster, slightly different model (index.settings.IndexSettings.query_precision)."""
        ...


class Reranker(Protocol):
    """(question, passages' texts) → one relevance score a text, higher is better (index.rerank)."""

    @property
    def name(self) -> str: ...

    def scores(self, query: str, texts: list[str]) -> list[float]:
        """Raises ``index.errors.RerankError`` when it cannot score (the search then keeps its fused order)."""
        ...


class Store(Protocol):
    """The vector store as read by the answering side and the BM25 sync."""

    @property
    def location(self) -> str: ...

    def count(self) -> int: ...

    def revision(self) -> str:
        """A mark that changes with every write to the store (see ``index.follow``)."""
        ...

    def ids(self) -> list[str]: ...

    def iter_all(self, with_text: bool) -> Iterator[tuple[str, str | None, dict[str, Any]]]: ...

    def get(self, ids: Sequence[str]) -> list[StoredChunk]: ...

    def by_source(self, source: str) -> list[StoredChunk]: ...

    def nearest(self, vector: np.ndarray, n: int, where: dict[str, Any] | None = None) -> list[tuple[str, float]]: ...

    def query(self, vector: np.ndarray, n: int) -> list[DenseHit]: ...

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]: ...

    def sentence_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]: ...

    def sentence_chunks(self, vector: np.ndarray, n: int) -> list[str]: ...

    def delete(self, ids: Sequence[str]) -> None: ...


class Retriever(Protocol):
    """A question → the passages that answer it, with whether the documents cover it at all."""

    @property
    def embedder(self) -> Embedder: ...

    @property
    def store(self) -> Store: ...

    def search(
        self, query: str, k: int | None = None, *, lexical: bool = True, where: Filter | None = None
    ) -> Retrieval: ...

    def refresh(self) -> None:
        """Pick up what an index run changed."""
        ...
