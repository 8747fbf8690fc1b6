"""The state database: one SQLAlchemy engine for every store in ``bot.state`` (SQLite by default, PostgreSQL shared).

Store modules define their tables on :data:`METADATA` and call :meth:`Database.ensure` with them before first use,
so a store that is never used creates nothing. Table creation tolerates another replica creating the same table at
the same moment.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, MetaData, Table, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError, ProgrammingError

if TYPE_CHECKING:
    from bot.config import Settings

#: Every table of docbot's state, defined by the store modules of ``bot.state``.
METADATA = MetaData()

#: The file under the data directory when no ``database_url`` is set.
DEFAULT_FILE = "state.db"

#: How long SQLite waits for another writer (another replica's process on the same file) before failing.
SQLITE_BUSY_TIMEOUT_MS = 10_000


class DatabaseError(RuntimeError):
    """The state database cannot be opened or used: one line saying which database and what to do."""


def default_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / DEFAULT_FILE).resolve()}"


def _tune_sqlite(dbapi_connection: Any, _record: object) -> None:
    """WAL lets readers go on while one process writes; the busy timeout makes writers of several processes queue."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Database:
    """An open state database. Thread-safe: each unit of work takes a connection from the engine's pool."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._ensured: set[str] = set()

    @classmethod
    def open(cls, url: str | None, data_dir: Path) -> Database:
        """``url``: an SQLAlchemy URL (``postgresql+psycopg://user:pw@host/db``); None = SQLite in ``data_dir``."""
        if url is None:
            data_dir.mkdir(parents=True, exist_ok=True)
            url = default_url(data_dir)
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise DatabaseError(
                "DOCBOT_DATABASE_URL is not a database URL: use sqlite:///path/state.db or "
                "postgresql+psycopg://user:password@host:5432/dbname"
            ) from exc
        if parsed.get_backend_name() == "sqlite":
            engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
            event.listen(engine, "connect", _tune_sqlite)
        else:
            engine = create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=10)
        return cls(engine)

    @classmethod
    def for_settings(cls, settings: Settings) -> Database:
        """The database ``DOCBOT_DATABASE_URL`` names, else SQLite in the data directory."""
        url = settings.database_url
        return cls.open(url.get_secret_value() if url else None, settings.data_dir)

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def describe(self) -> str:
        """The URL with any password hidden, for messages and logs."""
        return self.engine.url.render_as_string(hide_password=True)

    def ensure(self, *tables: Table) -> None:
        """Create ``tables`` if they do not exist yet (once per process; safe when replicas race to create them)."""
        missing = [table for table in tables if table.name not in self._ensured]
        if not missing:
            return
        try:
            METADATA.create_all(self.engine, tables=missing)
        except (ProgrammingError, IntegrityError):
            # Another replica created one of them between the existence check and CREATE: check again.
            METADATA.create_all(self.engine, tables=missing)
        except OperationalError as exc:
            raise self._unreachable(exc) from exc
        self._ensured.update(table.name for table in missing)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        try:
            with self.engine.begin() as connection:
                yield connection
        except OperationalError as exc:
            raise self._unreachable(exc) from exc

    def _unreachable(self, exc: OperationalError) -> DatabaseError:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        return DatabaseError(
            f"the state database {self.describe()} failed ({reason}); check DOCBOT_DATABASE_URL and that the "
            "database is running"
        )

    def close(self) -> None:
        self.engine.dispose()
