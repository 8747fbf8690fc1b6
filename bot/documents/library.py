"""Every collection of the docbot and each one's parts, as the documents' use cases and the web side use them: the
protocols that ``app.Library`` and ``app.Services`` fill (the composition root builds them; nothing here imports it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bot.answer.chat import Bot
    from bot.config import Settings
    from index.collections import Collections
    from index.pipeline import Indexer
    from index.retriever import HybridRetriever
    from index.store import VectorStore


class CollectionParts(Protocol):
    """One collection's parts (``app.Services``)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def store(self) -> VectorStore: ...

    @property
    def indexer(self) -> Indexer: ...

    @property
    def retriever(self) -> HybridRetriever: ...


class Library(Protocol):
    """Every collection of the docbot (``app.Library``)."""

    @property
    def collections(self) -> Collections: ...

    def services(self, name: str) -> CollectionParts: ...

    def bot(self, names: Sequence[str]) -> Bot: ...
