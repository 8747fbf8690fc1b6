"""Fixed-window counters in the database, so every replica counts the same requests and failed sign-ins.

One row per key and window (``key``, ``window_start``): a hit is one atomic ``INSERT ... ON CONFLICT DO UPDATE
SET count = count + 1 RETURNING count`` (SQLite 3.35+ and PostgreSQL alike), so two replicas hitting one key at
once both count. Windows are aligned to the epoch (wall-clock seconds, shared across machines); rows of windows
that have passed are deleted by whichever replica first sees a new window.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, Integer, String, Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from bot.state.database import METADATA, Database

counters = Table(
    "rate_counters",
    METADATA,
    Column("key", String(300), primary_key=True),
    Column("window_start", BigInteger, primary_key=True, autoincrement=False),
    Column("count", Integer, nullable=False),
)

#: Keys longer than this are cut (an address or a name never is; a hostile one must not fail the insert).
MAX_KEY = 300


@dataclass(frozen=True)
class Window:
    """One key's count in the current window, and the seconds until that window ends."""

    count: int
    ends_in: float

    @property
    def wait(self) -> int:
        """Whole seconds to wait for the next window (at least 1)."""
        return max(1, math.ceil(self.ends_in))


class WindowCounters:
    """Counts per key in fixed windows of ``window_s`` seconds, shared through ``database``.

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

    def _window(self) -> tuple[int, float]:
        """The current window's start (whole epoch seconds) and the seconds left in it."""
        now = self._clock()
        start = math.floor(now // self.window_s * self.window_s)
        return start, start + self.window_s - now

    def _key(self, key: str) -> str:
        return f"{self.namespace}:{key}"[:MAX_KEY]

    def hit(self, key: str) -> Window:
        """Count one event for ``key``; its count in this window, this one included."""
        start, ends_in = self._window()
        upsert = self._insert(counters).values(key=self._key(key), window_start=start, count=1)
        upsert = upsert.on_conflict_do_update(
            index_elements=[counters.c.key, counters.c.window_start], set_={"count": counters.c.count + 1}
        ).returning(counters.c.count)
        with self.database.begin() as connection:
            count = connection.execute(upsert).scalar_one()
            if start != self._swept:  # once per window and process: forget this namespace's past windows
                past = counters.c.key.startswith(f"{self.namespace}:", autoescape=True)
                connection.execute(delete(counters).where(past, counters.c.window_start < start))
                self._swept = start
        return Window(count, ends_in)

    def peek(self, key: str) -> Window:
        """``key``'s count in this window, counting nothing."""
        start, ends_in = self._window()
        query = select(counters.c.count).where(counters.c.key == self._key(key), counters.c.window_start == start)
        with self.database.begin() as connection:
            return Window(connection.execute(query).scalar_one_or_none() or 0, ends_in)
