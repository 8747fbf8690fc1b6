"""Uploaded documents in the state database, shared by every replica: who uploaded each, when it was last indexed,
and its original bytes (what the evidence viewer shows on a replica that never had the file on its disk).

One row per collection and source (the file's name in the uploads folder). ``root`` is the folder the receiving
replica indexed it from, as the store's chunks name it: a listed document is this upload only when both match.
A row is written once the index took the file (:meth:`UploadStore.keep`), so a failed index keeps nothing; it is
deleted with the document's chunks (:meth:`UploadStore.forgetting`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    LargeBinary,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from bot.state.database import METADATA, Database
from bot.state.feedback import imports
from index.loaders import content_hash

uploads = Table(
    "uploads",
    METADATA,
    Column("collection", String(200), primary_key=True),  # the Chroma collection's name (settings.collection)
    Column("source", String(300), primary_key=True),
    Column("root", Text, nullable=False),
    Column("owner", String(200), nullable=True),
    Column("indexed_at", String(40), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("original", LargeBinary, nullable=False),
)

_RECORD = (
    uploads.c.collection,
    uploads.c.source,
    uploads.c.root,
    uploads.c.owner,
    uploads.c.indexed_at,
    uploads.c.content_hash,
    uploads.c.size,
)


@dataclass(frozen=True, slots=True)
class Upload:
    """What the database keeps about one uploaded document (its bytes are read only when asked for)."""

    collection: str
    source: str
    root: str
    owner: str | None  # None: login was off when it was uploaded
    indexed_at: str
    content_hash: str
    size: int

    def names(self, root: str, source: str) -> bool:
        """Is the store's document (``root``, ``source``) this upload?"""
        return self.root == root and self.source == source


@dataclass(frozen=True, slots=True)
class NewUpload:
    """An upload to keep: its file's bytes and who uploaded it."""

    source: str
    root: str
    data: bytes
    owner: str | None
    indexed_at: str | None = None  # None: now


def _row(collection: str, upload: NewUpload) -> dict[str, object]:
    return {
        "collection": collection,
        "source": upload.source,
        "root": upload.root,
        "owner": upload.owner,
        "indexed_at": upload.indexed_at or datetime.now(UTC).isoformat(timespec="seconds"),
        "content_hash": content_hash(upload.data),
        "size": len(upload.data),
        "original": upload.data,
    }


def _key(collection: object, source: object) -> ColumnElement[bool]:
    return (uploads.c.collection == collection) & (uploads.c.source == source)


class UploadStore:
    def __init__(self, database: Database) -> None:
        self.database = database
        database.ensure(uploads, imports)

    def records(self, collection: str) -> dict[str, Upload]:
        """The collection's uploads by source."""
        with self.database.begin() as connection:
            rows = connection.execute(select(*_RECORD).where(uploads.c.collection == collection))
            return {row.source: Upload(**row._mapping) for row in rows}

    def get(self, collection: str, source: str) -> Upload | None:
        with self.database.begin() as connection:
            row = connection.execute(select(*_RECORD).where(_key(collection, source))).first()
        return Upload(**row._mapping) if row else None

    def original(self, collection: str, source: str, digest: str) -> bytes | None:
        """The upload's bytes if its kept version is the one with content hash ``digest``, else None."""
        query = select(uploads.c.original).where(_key(collection, source) & (uploads.c.content_hash == digest))
        with self.database.begin() as connection:
            data = connection.execute(query).scalar()
        return bytes(data) if data is not None else None

    def content_hashes(self) -> set[str]:
        """The content hash of every kept upload, in every collection (the versions a copy may still be made of)."""
        with self.database.begin() as connection:
            return set(connection.execute(select(uploads.c.content_hash).distinct()).scalars())

    def keep(self, collection: str, new: list[NewUpload]) -> None:
        """Store these uploads (each replacing any earlier version of its source), all or none."""
        rows = [_row(collection, upload) for upload in new]
        try:
            self._write(rows)
        except IntegrityError:  # another replica inserted one of them between our update and insert: now an update
            self._write(rows)

    def _write(self, rows: list[dict[str, object]]) -> None:
        with self.database.begin() as connection:
            for row in rows:
                changed = connection.execute(
                    update(uploads).where(_key(row["collection"], row["source"])).values(**row)
                )
                if not changed.rowcount:
                    connection.execute(insert(uploads).values(**row))

    @contextmanager
    def forgetting(self, collection: str, source: str) -> Iterator[list[int]]:
        """Delete the upload's record and bytes when the block succeeds (kept if it raises): [1] when there was one,
        [0] when not. The document's chunks are deleted inside, so neither goes without the other."""
        with self.database.begin() as connection:
            yield [int(connection.execute(delete(uploads).where(_key(collection, source))).rowcount)]

    def rename_collection(self, old: str, new: str) -> None:
        """A renamed collection keeps its uploads (Chroma collection names)."""
        with self.database.begin() as connection:
            connection.execute(update(uploads).where(uploads.c.collection == old).values(collection=new))

    def forget_collection(self, collection: str) -> int:
        """Delete every upload of a deleted (or emptied) collection; how many went."""
        with self.database.begin() as connection:
            return int(connection.execute(delete(uploads).where(uploads.c.collection == collection)).rowcount)

    def import_once(self, marker: str, collection: str, found: list[NewUpload]) -> bool:
        """Store uploads an earlier docbot recorded in a file, once per ``marker`` (that file's resolved path): False
        when it was imported before (perhaps by another replica a moment ago). Existing rows are left as they are."""
        try:
            with self.database.begin() as connection:
                connection.execute(insert(imports).values(name=marker))
                query = select(uploads.c.source).where(uploads.c.collection == collection)
                known = set(connection.execute(query).scalars())
                fresh = [_row(collection, u) for u in found if u.source not in known]
                if fresh:
                    connection.execute(insert(uploads), fresh)
        except IntegrityError:
            return False
        return True
