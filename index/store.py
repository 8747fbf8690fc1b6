"""Chroma: an embedded ``PersistentClient`` by default, an ``HttpClient`` when a server URL is set.

Embeddings are always passed in; Chroma's own default embedding function is never used. Two collections: the
chunks (``<collection>``) and the vectors of their sentences (``<collection>.Sentences``, one record a sentence,
id ``<chunk id>:s<n>``, with the chunk id and the sentence's span in the chunk text). A chunk's sentences are
written before the chunk and deleted before it, so every stored chunk that says how many sentences it has
(metadata ``sentences``) has them stored, whatever moment a run dies at; a chunk from an index made before
sentence vectors existed says nothing, and its sentences are embedded when needed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse
from uuid import uuid4

import numpy as np

from index.errors import CollectionGoneError, IndexMismatchError, StoreUnavailableError
from index.sentences import Span, chunk_of, sentence_id
from index.settings import IndexSettings
from index.types import Chunk

#: How many records one ``get`` page fetches.
PAGE = 5000
#: How many ids one ``get`` of ids only fetches.
ID_PAGE = 100_000
#: Chunks written in one call: bounds what a failed write may leave for a rollback to undo (a few MB).
WRITE_BATCH = 256
#: The collection metadata key whose value every write through docbot replaces (see ``VectorStore.revision``).
REVISION = "docbot_revision"


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """A chunk as read back from the store."""

    id: str
    text: str
    metadata: dict[str, Any]

    @property
    def source(self) -> str:
        return str(self.metadata["source"])

    @property
    def page(self) -> int | None:
        return int(self.metadata.get("page") or 0) or None


@dataclass(frozen=True, slots=True)
class DenseHit:
    chunk: StoredChunk
    similarity: float  # cosine similarity, 1 = identical direction


def sentences_of(collection: str) -> str:
    """The Chroma collection holding ``collection``'s sentence vectors. Its suffix has a capital letter, which no
    docbot collection name may have (index.collections), so it is never listed as a collection of its own."""
    return f"{collection}.Sentences"


def chroma_client(settings: IndexSettings) -> Any:
    """A client of the configured Chroma: the local store in ``data_dir/chroma``, or the server."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)  # checked by IndexSettings: http(s), a host, an optional port
        try:
            return chromadb.HttpClient(
                host=url.hostname,
                port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https",
                settings=chroma_settings,
            )
        except Exception as exc:
            raise StoreUnavailableError(
                f"cannot reach the Chroma server at {settings.chroma_url}: {exc}. "
                "Start it (chroma run) or unset DOCBOT_CHROMA_URL."
            ) from exc
    settings.chroma_dir.mkdir(parents=True, exist_ok=True)
    try:
        return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma_settings)
    except Exception as exc:
        raise StoreUnavailableError(
            f"cannot open the Chroma store in {settings.chroma_dir} ({exc}). If it was made by another Chroma "
            "version, move it away and run: docbot index --rebuild"
        ) from exc


def _not_found(exc: Exception) -> bool:
    """``exc`` is Chroma's "collection does not exist" (of a local store or a server alike)."""
    from chromadb.errors import NotFoundError  # imported already: a Chroma client raised ``exc``

    return isinstance(exc, NotFoundError)


class VectorStore:
    """The dense side of the index: chunk vectors, texts and metadata in one Chroma collection."""

    def __init__(
        self, settings: IndexSettings, model_name: str, dimension: int, *, rebuild: bool = False, client: Any = None
    ) -> None:
        """Open (or create) the collection; ``rebuild`` drops whatever was there first. ``client``: a Chroma client
        to share (default: a new one for ``settings``)."""
        self.location = settings.chroma_url or str(settings.chroma_dir)
        self._settings = settings
        self._client = client if client is not None else chroma_client(settings)
        self.model_name = model_name
        self.dimension = dimension
        self._sentence_name = sentences_of(settings.collection)
        if rebuild:
            self._call("drop the old index", self._drop)
        self._collection = self._open(settings.collection)
        self._sentences = self._open(self._sentence_name)
        # A Chroma server tells its batch limit once and the client keeps it: ask here, where a failure is
        # reported as this store's, not later from inside a write.
        self._call("connect", self._client.get_max_batch_size)

    @classmethod
    def existing(cls, settings: IndexSettings, client: Any = None) -> VectorStore | None:
        """The collection ``settings.collection`` opened with the model it was built with (no embedder needed, for
        reading), or None when it does not exist."""
        client = client if client is not None else chroma_client(settings)
        location = settings.chroma_url or str(settings.chroma_dir)
        try:
            if settings.collection not in [c if isinstance(c, str) else c.name for c in client.list_collections()]:
                return None
            meta = client.get_collection(settings.collection).metadata or {}
        except Exception as exc:
            raise StoreUnavailableError(f"Chroma store {location} is unavailable: {exc}") from exc
        return cls(settings, str(meta.get("embedding_model")), int(meta.get("dimension") or 0), client=client)

    @property
    def collection_id(self) -> str:
        """The id of the Chroma collection this store opened: it stays with that collection through a rename, and a
        collection made anew under the same name has another (index.collections resolves names to these)."""
        return str(self._collection.id)

    def _drop(self) -> None:
        names = {c.name for c in self._client.list_collections()}
        for name in (self._sentence_name, self._settings.collection):
            if name in names:
                self._client.delete_collection(name)

    def _open(self, name: str) -> Any:
        try:
            collection = self._client.get_or_create_collection(
                name,
                embedding_function=None,
                configuration={"hnsw": {"space": "cosine"}},
                metadata={"embedding_model": self.model_name, "dimension": self.dimension},
            )
        except Exception as exc:
            raise StoreUnavailableError(f"Chroma store {self.location} is unavailable: {exc}") from exc
        meta = collection.metadata or {}
        if meta.get("embedding_model") != self.model_name or int(meta.get("dimension", 0)) != self.dimension:
            raise IndexMismatchError(
                f"the index in {self.location} was built with {meta.get('embedding_model')!r} "
                f"({meta.get('dimension')} dimensions), but the configured model is {self.model_name!r} "
                f"({self.dimension}; DOCBOT_EMBEDDING_MODEL with its prompts DOCBOT_EMBEDDING_QUERY_PROMPT and "
                "DOCBOT_EMBEDDING_PASSAGE_PROMPT): their vectors do not mix. Set those back, or embed every document "
                "again with the new ones. Run: docbot index --rebuild"
            )
        return collection

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ValueError, TypeError):
            raise
        except Exception as exc:
            if _not_found(exc):
                raise CollectionGoneError(f"the collection was renamed or deleted before it could {what}") from exc
            raise StoreUnavailableError(f"the vector store at {self.location} failed to {what}: {exc}") from exc

    def _step(self, cap: int | None) -> int:
        """Records per call: the client's limit (asking a Chroma server for it is a request too), at most ``cap``."""
        limit = int(self._call("connect", self._client.get_max_batch_size))
        return max(1, min(limit, cap or limit))

    def count(self) -> int:
        return int(self._call("count", self._collection.count))

    def upsert(
        self,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        metadatas: Sequence[dict[str, Any]],
        sentences: Sequence[Sequence[Span]] = (),
        sentence_vectors: np.ndarray | None = None,
    ) -> None:
        """Write chunks with their vectors and metadata, in as few calls as the client allows (each call costs).

        With ``sentences`` (each chunk's sentence spans, in order) and their ``sentence_vectors`` (one row a span,
        chunk after chunk), the sentences are written first and each chunk records how many it has.
        """
        step = self._step(WRITE_BATCH)
        if sentence_vectors is not None:
            self._upsert_sentences(chunks, sentences, sentence_vectors, step)
            metadatas = [{**meta, "sentences": len(spans)} for meta, spans in zip(metadatas, sentences, strict=True)]
        for lo in range(0, len(chunks), step):
            batch = chunks[lo : lo + step]
            self._call(
                "write",
                self._collection.upsert,
                ids=[c.id for c in batch],
                embeddings=vectors[lo : lo + step],
                documents=[c.text for c in batch],
                metadatas=list(metadatas[lo : lo + step]),
            )
        self._written(len(chunks))

    def _upsert_sentences(
        self, chunks: Sequence[Chunk], sentences: Sequence[Sequence[Span]], vectors: np.ndarray, step: int
    ) -> None:
        records = [
            (sentence_id(chunk.id, n), {"chunk_id": chunk.id, "start": lo, "end": hi})
            for chunk, spans in zip(chunks, sentences, strict=True)
            for n, (lo, hi) in enumerate(spans)
        ]
        if len(records) != len(vectors):
            raise ValueError(f"{len(records)} sentence spans but {len(vectors)} sentence vectors")
        for lo in range(0, len(records), step):
            batch = records[lo : lo + step]
            self._call(
                "write",
                self._sentences.upsert,
                ids=[record_id for record_id, _ in batch],
                embeddings=vectors[lo : lo + step],
                metadatas=[meta for _, meta in batch],
            )

    def set_metadata(self, metadata: dict[str, dict[str, Any]]) -> None:
        """Replace the metadata of stored chunks by id; their vectors and texts stay."""
        ids = list(metadata)
        step = self._step(WRITE_BATCH) if ids else 1
        for lo in range(0, len(ids), step):
            batch = ids[lo : lo + step]
            self._call("write", self._collection.update, ids=batch, metadatas=[metadata[i] for i in batch])
        self._written(len(ids))

    def delete(self, ids: Sequence[str]) -> None:
        """Delete chunks, their sentences first (a chunk never outlives them; they may outlive it a moment)."""
        step = self._step(None) if ids else 1
        for lo in range(0, len(ids), step):
            batch = list(ids[lo : lo + step])
            self._call("delete", self._sentences.delete, where={"chunk_id": {"$in": batch}})
            self._call("delete", self._collection.delete, ids=batch)
        self._written(len(ids))

    def _written(self, records: int) -> None:
        """Leave a new revision mark after a write of ``records`` records (none: nothing changed)."""
        if records:
            self._call("write", self._set_revision, uuid4().hex)

    def _set_revision(self, token: str) -> None:
        current = self._client.get_collection(self._settings.collection).metadata or {}
        self._collection.modify(metadata={**current, REVISION: token})  # Chroma replaces the whole mapping

    def revision(self) -> str:
        """A mark of the stored contents, cheap to read (two small requests): a token every write through docbot
        replaces, and the chunk count (which also catches a writer that leaves no token). Equal marks: nothing
        changed through docbot in between."""

        def read() -> str:
            metadata = self._client.get_collection(self._settings.collection).metadata or {}
            return f"{metadata.get(REVISION, '-')}/{self._collection.count()}"

        return str(self._call("read", read))

    def iter_all(self, with_text: bool) -> Iterator[tuple[str, str | None, dict[str, Any]]]:
        """Every (id, text or None, metadata), page by page: the ids first (cheap), then the records by id (a page
        read at an offset costs more the further in it lies: 41 s for the metadata of 100,000 chunks, 17 s by id)."""
        include = ["metadatas", "documents"] if with_text else ["metadatas"]
        offset = 0
        while True:
            ids = self._call("read", self._collection.get, include=[], limit=ID_PAGE, offset=offset)["ids"]
            if not ids:
                return
            for lo in range(0, len(ids), PAGE):
                page = self._call("read", self._collection.get, ids=ids[lo : lo + PAGE], include=include)
                texts = page["documents"] if with_text else [None] * len(page["ids"])
                yield from zip(page["ids"], texts, page["metadatas"], strict=True)
            offset += len(ids)

    def ids(self) -> list[str]:
        return [record_id for record_id, _, _ in self.iter_all(with_text=False)]

    def get(self, ids: Sequence[str]) -> list[StoredChunk]:
        """Chunks by id, in the order asked (missing ids are skipped)."""
        if not ids:
            return []
        page = self._call("read", self._collection.get, ids=list(ids), include=["metadatas", "documents"])
        found = {
            i: StoredChunk(i, t or "", dict(m or {}))
            for i, t, m in zip(page["ids"], page["documents"], page["metadatas"], strict=True)
        }
        return [found[i] for i in ids if i in found]

    def by_source(self, source: str) -> list[StoredChunk]:
        page = self._call("read", self._collection.get, where={"source": source}, include=["metadatas", "documents"])
        chunks = [
            StoredChunk(i, t or "", dict(m or {}))
            for i, t, m in zip(page["ids"], page["documents"], page["metadatas"], strict=True)
        ]
        return sorted(chunks, key=lambda c: (c.page or 0, int(c.metadata.get("start", 0))))

    def nearest(self, vector: np.ndarray, n: int, where: dict[str, Any] | None = None) -> list[tuple[str, float]]:
        """The ids of the ``n`` chunks nearest to ``vector`` with their cosine similarity, best first; reads no
        texts or metadata (a search fetches those for the few passages it keeps). ``where``: among the chunks
        whose metadata match this Chroma filter only."""
        result = self._call(
            "search",
            self._collection.query,
            query_embeddings=[vector],
            n_results=n,
            where=where,
            include=["distances"],
        )
        return [(i, 1.0 - float(d)) for i, d in zip(result["ids"][0], result["distances"][0], strict=True)]

    def query(self, vector: np.ndarray, n: int) -> list[DenseHit]:
        """The ``n`` nearest chunks, read in full."""
        nearest = self.nearest(vector, n)
        chunks = {chunk.id: chunk for chunk in self.get([i for i, _ in nearest])}
        return [DenseHit(chunks[i], similarity) for i, similarity in nearest if i in chunks]

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored chunk vectors by id, read a page at a time; missing ids are left out."""
        found: dict[str, np.ndarray] = {}
        for lo in range(0, len(ids), PAGE):
            page = self._call("read", self._collection.get, ids=list(ids[lo : lo + PAGE]), include=["embeddings"])
            found.update(zip(page["ids"], np.asarray(page["embeddings"], dtype=np.float32), strict=True))
        return found

    def sentence_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored sentence vectors by sentence id (:func:`index.sentences.sentence_id`); missing ids are left out."""
        if not ids:
            return {}
        page = self._call("read", self._sentences.get, ids=list(ids), include=["embeddings"])
        return {i: np.asarray(v, dtype=np.float32) for i, v in zip(page["ids"], page["embeddings"], strict=True)}

    def sentence_chunks(self, vector: np.ndarray, n: int) -> list[str]:
        """The chunks of the ``n`` stored sentences nearest to ``vector`` (fewer when fewer are stored), each once, in
        the order of its best sentence. Read from the sentences' ids (:func:`index.sentences.chunk_of`): reading
        their metadata took longer than the search itself; not counted first either, a count holds the GIL about as
        long as a search."""
        result = self._call("search", self._sentences.query, query_embeddings=[vector], n_results=n, include=[])
        return list(dict.fromkeys(chunk_of(i) for i in result["ids"][0]))
