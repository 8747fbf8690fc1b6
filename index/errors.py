"""What goes wrong in ``index/``: the one place an edge (CLI, API, page) looks these errors up.

Each message is a sentence for the person at that edge: what failed and what to do next.
"""

from __future__ import annotations


class LoadError(Exception):
    """A file that cannot be indexed; the message is the one-line reason shown to the user."""


class EmbeddingModelError(Exception):
    """The embedding model cannot be loaded (missing package, a name that is not on this machine)."""


class RerankerModelError(Exception):
    """The configured reranker cannot be loaded (a cross-encoder that is not on this machine); the message names
    the setting (DOCBOT_RERANKER)."""


class RerankError(RuntimeError):
    """A reranking call failed (the endpoint timed out, answered an error or something unreadable): the search keeps
    the fused order (index.rerank)."""


class StoreUnavailableError(RuntimeError):
    """The vector store cannot be reached (a stopped Chroma server, a broken directory)."""


class IndexMismatchError(RuntimeError):
    """The index was built with another embedding model (or dimension) than the one configured."""


class LexicalIndexError(RuntimeError):
    """The BM25 files are missing or damaged; rebuild them from the store."""


class IndexRunError(RuntimeError):
    """An index run failed; the message says why and whether the index is as it was before the run.

    Not a kind of :class:`StoreUnavailableError`: the run may have failed on a full disk with the store up; the
    store's own failure, when it was one, is the ``__cause__``.
    """

    def __init__(self, message: str, *, index_unchanged: bool, disk_full: bool) -> None:
        super().__init__(message)
        self.index_unchanged = index_unchanged  # undone, or refused before any write
        self.disk_full = disk_full


class CollectionError(ValueError):
    """A collection name that is not allowed, one that does not exist, or one that is taken; the message says which
    and what to do."""


class CollectionGoneError(CollectionError):
    """The Chroma collection a store had open was deleted, or renamed away, while in use (by ``docbot collections``
    in another process, say). Asked again, the name opens what it names by then (``app.Library``)."""
