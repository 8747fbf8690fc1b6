"""Who may read, write or administer each collection, in the state database (see :mod:`bot.state.database`).

A grant gives one principal a right on one collection. Principals are ``user:<name>`` (a DOCBOT_USERS account or a
reader the wiki's proxy signed in), ``group:<name>`` (a group the proxy names), ``key:<name>`` (a named key of
DOCBOT_API_KEYS) and ``everyone`` (any caller let in at all, anonymous ones included). Rights are ordered
read (ask, see sources) < write (upload, replace, remove) < admin (grants).

Scoped keys are API keys made here (``docbot access key create``): each opens one collection with one right, and
only its SHA-256 digest is stored. The server reads all of it through a cache of at most ``cache_s`` seconds, so a
change made with ``docbot access`` applies to a running server without a restart.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum

from sqlalchemy import Column, DateTime, LargeBinary, String, Table, delete, insert, select, update

from bot.state.database import METADATA, Database
from index.collections import check_name

EVERYONE = "everyone"
PRINCIPAL_KINDS = ("user", "group", "key")
#: A collection or principal name: printable, no control characters, bounded.
_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,200}")

GRANTS = Table(
    "grants",
    METADATA,
    Column("collection", String(200), primary_key=True),
    Column("principal", String(210), primary_key=True),
    Column("access_right", String(10), nullable=False),
    Column("granted_at", DateTime(timezone=True), nullable=False),
)
SCOPED_KEYS = Table(
    "scoped_keys",
    METADATA,
    Column("name", String(200), primary_key=True),
    Column("digest", LargeBinary(32), nullable=False, unique=True),
    Column("collection", String(200), nullable=False),
    Column("access_right", String(10), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


class Right(IntEnum):
    read = 1
    write = 2
    admin = 3


class GrantError(ValueError):
    """A grant, principal or key that cannot be: one line saying what to give instead."""


@dataclass(frozen=True)
class Grant:
    collection: str
    principal: str
    right: Right


@dataclass(frozen=True)
class ScopedKey:
    name: str
    collection: str
    right: Right


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def principal(kind: str, name: str) -> str:
    """``user``/``group``/``key`` and a name → ``kind:name``; ``everyone`` stays itself."""
    if kind == EVERYONE:
        return EVERYONE
    if kind not in PRINCIPAL_KINDS:
        raise GrantError(f"a grant goes to a user, group or key (or everyone), not a {kind!r}")
    return f"{kind}:{checked_name(name, kind)}"


def checked_name(name: str, what: str) -> str:
    cleaned = name.strip()
    if not _NAME.fullmatch(cleaned):
        raise GrantError(f"a {what} name is 1 to 200 printable characters, and {name!r} is not")
    return cleaned


@dataclass(frozen=True)
class Snapshot:
    """Every grant and scoped key, as read at one moment."""

    grants: tuple[Grant, ...] = ()
    keys: tuple[tuple[bytes, ScopedKey], ...] = ()

    def rights(self, principals: Iterable[str]) -> dict[str, Right]:
        """The strongest right any of ``principals`` holds on each collection."""
        holders = set(principals)
        rights: dict[str, Right] = {}
        for grant in self.grants:
            if grant.principal in holders and grant.right > rights.get(grant.collection, 0):
                rights[grant.collection] = grant.right
        return rights

    def key(self, given: bytes) -> ScopedKey | None:
        return next((key for stored, key in self.keys if secrets.compare_digest(stored, given)), None)


class GrantStore:
    """Grants and scoped keys in the state database; reads cached for at most ``cache_s`` seconds. Thread-safe."""

    def __init__(self, database: Database, cache_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.database = database
        self.cache_s = cache_s
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, Snapshot] | None = None

    def _tables(self) -> Database:
        self.database.ensure(GRANTS, SCOPED_KEYS)
        return self.database

    def snapshot(self) -> Snapshot:
        with self._lock:
            now = self._clock()
            if self._cached is None or now - self._cached[0] >= self.cache_s:
                self._cached = (now, self._read())
            return self._cached[1]

    def _read(self) -> Snapshot:
        with self._tables().begin() as connection:
            grants = connection.execute(select(GRANTS.c.collection, GRANTS.c.principal, GRANTS.c.access_right))
            keys = connection.execute(
                select(SCOPED_KEYS.c.digest, SCOPED_KEYS.c.name, SCOPED_KEYS.c.collection, SCOPED_KEYS.c.access_right)
            )
            return Snapshot(
                tuple(Grant(c, p, Right[r]) for c, p, r in grants),
                tuple((bytes(d), ScopedKey(n, c, Right[r])) for d, n, c, r in keys),
            )

    def _forget(self) -> None:
        with self._lock:
            self._cached = None

    # --- grants ----------------------------------------------------------------------------------

    def grants(self, collection: str | None = None) -> list[Grant]:
        """Every grant (of one collection), sorted by collection then principal; always read afresh."""
        self._forget()
        found = [g for g in self.snapshot().grants if collection is None or g.collection == collection]
        return sorted(found, key=lambda g: (g.collection, g.principal))

    def grant(self, collection: str, holder: str, right: Right) -> None:
        """Give ``holder`` ``right`` on ``collection`` (replacing the right they had there)."""
        collection = check_name(collection)
        values = {"access_right": right.name, "granted_at": datetime.now(UTC)}
        where = (GRANTS.c.collection == collection) & (GRANTS.c.principal == holder)
        with self._tables().begin() as connection:
            if not connection.execute(update(GRANTS).where(where).values(**values)).rowcount:
                connection.execute(insert(GRANTS).values(collection=collection, principal=holder, **values))
        self._forget()

    def revoke(self, collection: str, holder: str) -> bool:
        """Take ``holder``'s right on ``collection`` away; False when they had none."""
        where = (GRANTS.c.collection == collection) & (GRANTS.c.principal == holder)
        with self._tables().begin() as connection:
            removed = connection.execute(delete(GRANTS).where(where)).rowcount
        self._forget()
        return bool(removed)

    def forget_collection(self, collection: str) -> int:
        """Remove every grant and scoped key of a deleted collection; how many went."""
        with self._tables().begin() as connection:
            removed = connection.execute(delete(GRANTS).where(GRANTS.c.collection == collection)).rowcount
            removed += connection.execute(delete(SCOPED_KEYS).where(SCOPED_KEYS.c.collection == collection)).rowcount
        self._forget()
        return removed

    def rename_collection(self, old: str, new: str) -> None:
        """A renamed collection keeps its grants and scoped keys."""
        with self._tables().begin() as connection:
            for table in (GRANTS, SCOPED_KEYS):
                connection.execute(update(table).where(table.c.collection == old).values(collection=new))
        self._forget()

    # --- scoped keys -----------------------------------------------------------------------------

    def create_key(self, name: str, collection: str, right: Right = Right.read) -> str:
        """A new key opening ``collection`` with ``right``; the key itself is returned once and never stored."""
        name, collection = checked_name(name, "key"), check_name(collection)
        if right is Right.admin:
            raise GrantError("a scoped key reads (or writes) one collection; grants are managed with docbot access")
        if any(key.name == name for key in self.scoped_keys()):
            raise GrantError(f"a scoped key named {name!r} exists: choose another name, or delete it first")
        secret = "dbk_" + secrets.token_urlsafe(32)
        row = {"name": name, "digest": digest(secret), "collection": collection, "access_right": right.name}
        with self._tables().begin() as connection:
            connection.execute(insert(SCOPED_KEYS).values(**row, created_at=datetime.now(UTC)))
        self._forget()
        return secret

    def delete_key(self, name: str) -> bool:
        with self._tables().begin() as connection:
            removed = connection.execute(delete(SCOPED_KEYS).where(SCOPED_KEYS.c.name == name)).rowcount
        self._forget()
        return bool(removed)

    def scoped_keys(self) -> list[ScopedKey]:
        self._forget()
        return sorted((key for _, key in self.snapshot().keys), key=lambda key: key.name)
