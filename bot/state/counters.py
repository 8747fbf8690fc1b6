"""Rate counters in the database, so every replica counts the same requests and failed sign-ins.

A sliding-window counter: one row per key and fixed window (``key``, window number since the epoch, wall-clock
time shared across machines). A hit is one atomic ``INSERT ... ON CONFLICT DO UPDATE SET count = count + 1
RETURNING count`` (SQLite 3.35+ and PostgreSQL alike), so replicas hitting one key at once all count; the events of
the last window's length are then estimated as this window's count plus the previous window's, weighted by how much
of it is still within reach. No burst at a window's edge, one small row a key and window, one round trip a hit.
Rows of windows before the previous one are deleted by whichever replica first sees a new window.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, Integer, String, Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from bot.state.database import METADATA, Database

counters = Table(
    "rate_counters",
    METADATA,
    Column("key", String(300), primary_key=True),
    Column("window", BigInteger, primary_key=True, autoincrement=False),
    Column("count", Integer, nullable=False),
)

#: Keys longer than this are cut (an address or a name never is; a hostile one must not fail the insert).
MAX_KEY = 300


@dataclass(frozen=True)
class Window:
    """One key's counts in the current fixed window and the one before, and how far into the current one it is."""

    count: int
    previous: int
    into: float
    length: float

    @property
    def recent(self) -> float:
        """The events of the last ``length`` seconds, estimated."""
        return self.count + self.previous * (1 - self.into / self.length)

    def wait(self, limit: int) -> int:
        """Whole seconds (at least 1) until :attr:`recent` is below ``limit`` again, if nothing more is counted."""
        if self.count < limit:  # the previous window fades out first
            seconds = self.length * (1 - (limit - self.count) / self.previous) - self.into if self.previous else 0
        else:  # this window must fade, after it ends
            seconds = self.length - self.into + self.length * (1 - limit / self.count)
        return max(1, math.ceil(min(seconds, self.length)))  # a window's length on, every counted event has left


class WindowCounters:
    """Counts per key in windows of ``window_s`` seconds, shared through ``database``.

    ``namespace`` keeps counters of different purposes (and window lengths) apart in the one table.
    """

    def __init__(
        self, database: Database, namespace: str, window_s: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.database = database
        self.namespace = namespace
        self.window_s = window_s
        self._clock = clock
        self._swept = -1
        dialect = database.backend
        if dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"rate counters need SQLite or PostgreSQL, not {dialect}")
        self._insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
        database.ensure(counters)

    def _key(self, key: str) -> str:
        return f"{self.namespace}:{key}"[:MAX_KEY]

    def _now(self) -> tuple[int, float]:
        """The current window's number and the seconds into it."""
        now = self._clock()
        number = math.floor(now / self.window_s)
        return number, now - number * self.window_s

    def _count(self, connection: Connection, key: str, window: int) -> int:
        query = select(counters.c.count).where(counters.c.key == key, counters.c.window == window)
        return connection.execute(query).scalar_one_or_none() or 0

    def hit(self, key: str) -> Window:
        """Count one event for ``key``; its counts, this one included."""
        number, into = self._now()
        key = self._key(key)
        upsert = self._insert(counters).values(key=key, window=number, count=1)
        upsert = upsert.on_conflict_do_update(
            index_elements=[counters.c.key, counters.c.window], set_={"count": counters.c.count + 1}
        ).returning(counters.c.count)
        with self.database.begin() as connection:
            count = connection.execute(upsert).scalar_one()
            previous = self._count(connection, key, number - 1)
            if number != self._swept:  # once per window and process: forget this namespace's old windows
                mine = counters.c.key.startswith(f"{self.namespace}:", autoescape=True)
                connection.execute(delete(counters).where(mine, counters.c.window < number - 1))
                self._swept = number
        return Window(count, previous, into, self.window_s)

    def peek(self, key: str) -> Window:
        """``key``'s counts, counting nothing."""
        number, into = self._now()
        key = self._key(key)
        with self.database.begin() as connection:
            return Window(
                self._count(connection, key, number), self._count(connection, key, number - 1), into, self.window_s
            )
