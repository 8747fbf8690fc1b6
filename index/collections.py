"""Named collections: each a Chroma collection of its own beside its own BM25 files and upload records.

The index docbot always had (Chroma collection ``settings.collection``, ``data_dir/bm25``,
``data_dir/documents.json``) is the collection ``default``, opened where it is: nothing moves, nothing is embedded
again. Another collection ``NAME`` is the Chroma collection ``<settings.collection>.NAME`` with its files in
``data_dir/collections/NAME/``. The Chroma store is the registry: the collections are the Chroma collections named
so, which holds for a local store and for a Chroma server shared by several docbot servers alike.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from index.errors import CollectionError, StoreUnavailableError
from index.lexical import CURRENT
from index.settings import IndexSettings
from index.store import VectorStore, chroma_client, sentences_of

if TYPE_CHECKING:
    from pathlib import Path

DEFAULT = "default"
#: Lowercase letters, digits, ``-`` and ``_``, 1 to 40 characters, starting and ending with a letter or digit (the
#: name becomes part of a Chroma collection name, which must start and end so).
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,38}[a-z0-9])?")
SEPARATOR = "."
#: Under ``data_dir``: the folders of the collections other than ``default``.
FOLDER = "collections"
#: How old the list a server's requests read (:meth:`Collections.listed`, :meth:`Collections.identity`) may be: a
#: collection another process creates, renames or deletes shows within this time, one store round trip a second
#: instead of one a request.
LISTED_MAX_AGE_S = 1.0


def check_name(name: str) -> str:
    """``name`` if it can name a collection, else a :class:`CollectionError` saying what a name may be."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise CollectionError(
            f"{str(name)[:60]!r} is not a collection name: use 1 to 40 lowercase letters, digits, - and _, "
            "starting and ending with a letter or digit (e.g. hr, eng-runbooks)"
        )
    return name


@dataclass(frozen=True, slots=True)
class CollectionInfo:
    """What ``docbot collections`` lists about one collection."""

    name: str
    documents: int
    passages: int
    size_bytes: int  # bytes of indexed text
    last_indexed: datetime | None  # when an index run last changed it (None: never indexed)


class Collections:
    """The collections of one docbot: list, describe, create, rename, delete; and the settings that open one."""

    def __init__(self, settings: IndexSettings, *, model: tuple[str, int] | None = None) -> None:
        """``model``: (embedding model name, dimension) a new collection is made for; without it a new collection
        takes those of an existing one (all collections of a docbot share its one embedder)."""
        self.settings = settings
        self.model = model
        self._chroma: Any = None
        self._listed: tuple[float, dict[str, str]] | None = None  # (when, identities) for listed()
        self._listing = threading.Lock()  # held by the one request asking the store for listed()
        self._changes = 0  # this object's own changes so far: a listing older than the last one is not kept

    @property
    def _client(self) -> Any:
        if self._chroma is None:
            self._chroma = chroma_client(self.settings)
        return self._chroma

    @property
    def _location(self) -> str:
        return self.settings.chroma_url or str(self.settings.chroma_dir)

    def chroma_name(self, name: str) -> str:
        return self.settings.collection if name == DEFAULT else f"{self.settings.collection}{SEPARATOR}{name}"

    def home(self, name: str) -> Path:
        """The folder of the collection's BM25 files and upload records."""
        base = self.settings.index_home
        return base if name == DEFAULT else self.settings.data_dir / FOLDER / name

    def settings_for(self, name: str) -> IndexSettings:
        """A copy of the settings that opens collection ``name`` (its Chroma collection and its folder)."""
        check_name(name)
        index_dir = self.settings.index_dir if name == DEFAULT else self.home(name)
        return self.settings.model_copy(update={"collection": self.chroma_name(name), "index_dir": index_dir})

    def _chroma_ids(self) -> dict[str, str]:
        """Every Chroma collection of the store: name → id."""
        try:
            return {c.name: str(c.id) for c in self._client.list_collections()}
        except Exception as exc:
            raise StoreUnavailableError(f"Chroma store {self._location} is unavailable: {exc}") from exc

    def _chroma_names(self) -> list[str]:
        return list(self._chroma_ids())

    def identities(self) -> dict[str, str]:
        """The id of the Chroma collection each name opens (``default`` only once it has one). A rename keeps the
        id; a collection deleted, or renamed away, and made anew under its name has another."""
        prefix = self.settings.collection + SEPARATOR
        found = self._chroma_ids()
        own = {DEFAULT: found[self.settings.collection]} if self.settings.collection in found else {}
        return own | {
            name[len(prefix) :]: chroma_id
            for name, chroma_id in found.items()
            if name.startswith(prefix) and _NAME.fullmatch(name[len(prefix) :]) and name[len(prefix) :] != DEFAULT
        }

    @staticmethod
    def _names_of(identities: dict[str, str]) -> list[str]:
        return [DEFAULT, *sorted(name for name in identities if name != DEFAULT)]

    def names(self) -> list[str]:
        """``default`` first (it always exists, empty until indexed), then the others by name."""
        return self._names_of(self.identities())

    def listed(self) -> list[str]:
        """:meth:`names`, at most :data:`LISTED_MAX_AGE_S` old (this object's own changes show at once): what each
        request of a server reads."""
        return self._names_of(self._recent())

    def identity(self, name: str) -> str | None:
        """The id of the Chroma collection ``name`` opens (None: none), from the list :meth:`listed` reads: what a
        server checks the collection it has open against."""
        return self._recent().get(name)

    def _recent(self) -> dict[str, str]:
        """:meth:`identities`, at most :data:`LISTED_MAX_AGE_S` old. One request at a time asks the store; the
        others meanwhile read the list it is replacing (or, when there is none, wait for its answer)."""
        cached = self._listed
        if cached is not None and time.monotonic() - cached[0] < LISTED_MAX_AGE_S:
            return dict(cached[1])
        if cached is not None and not self._listing.acquire(blocking=False):
            return dict(cached[1])
        if cached is None:
            self._listing.acquire()
        try:
            cached = self._listed
            if cached is not None and time.monotonic() - cached[0] < LISTED_MAX_AGE_S:
                return dict(cached[1])  # listed by the request this one waited for
            changes = self._changes
            identities = self.identities()
            if changes == self._changes:  # a change made meanwhile may not be in ``identities``: list again next time
                self._listed = (time.monotonic(), identities)
            return dict(identities)
        finally:
            self._listing.release()

    def changed(self) -> None:
        """The collections changed through this process (this object, or a collection opened that did not exist
        yet): the next :meth:`listed` asks the store."""
        self._changes += 1
        self._listed = None

    def exists(self, name: str) -> bool:
        return name in self.names()

    def require(self, name: str) -> str:
        """``name`` if that collection exists, else a :class:`CollectionError` naming the ones that do."""
        check_name(name)
        if not self.exists(name):
            raise CollectionError(
                f"there is no collection {name!r} (there are: {', '.join(self.names())}); "
                f"create it with: docbot collections create {name}"
            )
        return name

    def _open(self, name: str) -> Any | None:
        """The Chroma collection, or None when it does not exist (``default`` before its first index run)."""
        chroma = self.chroma_name(name)
        if chroma not in self._chroma_names():
            return None
        try:
            return self._client.get_collection(chroma)
        except Exception as exc:
            raise StoreUnavailableError(f"Chroma store {self._location} is unavailable: {exc}") from exc

    def info(self, name: str) -> CollectionInfo:
        self.require(name)
        store = VectorStore.existing(self.settings_for(name), self._client)
        sources: set[tuple[str, str]] = set()
        passages = size = 0
        if store is not None:
            for _, text, meta in store.iter_all(with_text=True):
                sources.add((str(meta.get("root", "")), str(meta.get("source", ""))))
                passages += 1
                size += len((text or "").encode())
        pointer = self.settings_for(name).lexical_dir / CURRENT
        last = datetime.fromtimestamp(pointer.stat().st_mtime, UTC) if pointer.exists() and passages else None
        return CollectionInfo(name, len(sources), passages, size, last)

    def _model(self) -> tuple[str, int]:
        if self.model is not None:
            return self.model
        for chroma in self._chroma_names():
            if chroma == self.settings.collection or chroma.startswith(self.settings.collection + SEPARATOR):
                meta = self._client.get_collection(chroma).metadata or {}
                if meta.get("embedding_model") and meta.get("dimension"):
                    return str(meta["embedding_model"]), int(meta["dimension"])
        raise CollectionError(
            "no collection is indexed yet, so the embedding model of a new one is not known: "
            "run docbot index --collection NAME PATH instead (indexing creates the collection)"
        )

    def create(self, name: str) -> None:
        check_name(name)
        if self.exists(name):
            raise CollectionError(f"collection {name!r} exists already")
        model, dimension = self._model()
        VectorStore(self.settings_for(name), model, dimension, client=self._client)
        self.changed()
        self.home(name).mkdir(parents=True, exist_ok=True)

    def rename(self, old: str, new: str) -> None:
        """A cheap rename: the Chroma collection changes its name, the folder moves; nothing is embedded again."""
        self.require(old)
        check_name(new)
        if DEFAULT in (old, new):
            raise CollectionError("the default collection cannot be renamed, nor another renamed to default")
        if self.exists(new):
            raise CollectionError(f"collection {new!r} exists already: pick another name or delete it first")
        renames = {self.chroma_name(old): self.chroma_name(new)}
        renames[sentences_of(self.chroma_name(old))] = sentences_of(self.chroma_name(new))
        try:
            present = set(self._chroma_names())
            for before, after in renames.items():
                if before in present:
                    self._client.get_collection(before).modify(name=after)
        except Exception as exc:
            raise StoreUnavailableError(f"Chroma store {self._location} failed to rename: {exc}") from exc
        finally:
            self.changed()
        if self.home(old).exists():
            self.home(new).parent.mkdir(parents=True, exist_ok=True)
            self.home(old).rename(self.home(new))

    def delete(self, name: str) -> None:
        """Every trace: the Chroma collection, the BM25 files, the uploaded files and their records
        (owners). ``default`` is emptied the same way and stays, empty."""
        self.require(name)
        chroma = self.chroma_name(name)
        try:
            present = set(self._chroma_names())
            for own in (chroma, sentences_of(chroma)):
                if own in present:
                    self._client.delete_collection(own)
        except Exception as exc:
            raise StoreUnavailableError(f"Chroma store {self._location} failed to delete: {exc}") from exc
        finally:
            self.changed()
        if name != DEFAULT:
            shutil.rmtree(self.home(name), ignore_errors=True)
            return
        home = self.home(DEFAULT)
        for own in ("bm25", "uploads"):
            shutil.rmtree(home / own, ignore_errors=True)
        for own in ("calibration.json", "documents.json"):  # calibration.json: left by docbot before index.coverage
            (home / own).unlink(missing_ok=True)
