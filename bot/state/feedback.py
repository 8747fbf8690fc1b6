"""Thumbs up/down on answers, one row a vote in the database (shared by every replica).

One vote per voter and answer: a voter's later vote on an answer (the same question and answer text) replaces
theirs, in one atomic ``INSERT ... ON CONFLICT DO UPDATE`` on a unique index, so twenty clicks are one row. Votes
with no voter (and those stored before votes had one) are each kept. A table made before then gains the columns
and the index when a store first opens it.

``docbot feedback export`` writes them as JSON lines, the shape the old ``feedback.jsonl`` had; an existing
``feedback.jsonl`` is imported once (the file is left where it is, and its import is recorded in the same
transaction as its rows, so two replicas starting at once import it once between them).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    inspect,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from bot.answer.citations import Answer
from bot.state.database import METADATA, Database

Vote = Literal["up", "down", "cleared"]

votes = Table(
    "feedback",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", String(40), nullable=False),
    Column("vote", String(10), nullable=False),
    Column("question", Text, nullable=False),
    Column("answer", Text, nullable=False),
    Column("citations", JSON, nullable=False),
    Column("refused", Boolean, nullable=False),
    Column("generator", String(200), nullable=False),
    Column("user", String(200), nullable=True),
    #: Who cast it, as proved (``user:ann``, ``browser:<id>``); None: nobody to hold to one vote.
    Column("voter", String(300), nullable=True),
    #: What was voted on: a digest of the question and the answer text (:func:`answer_key`).
    Column("answer_key", String(64), nullable=True),
)
one_vote = Index("feedback_one_vote", votes.c.voter, votes.c.answer_key, unique=True)

#: What a voter's later vote on the same answer replaces.
_REPLACED = ("time", "vote", "citations", "refused", "generator", "user")

#: Files imported into the database once (their resolved path).
imports = Table("state_imports", METADATA, Column("name", String(1000), primary_key=True))

_FIELDS = ("time", "vote", "question", "answer", "citations", "refused", "generator", "user")


def feedback_record(
    answer: Answer, vote: Vote, user: str | None = None, when: datetime | None = None
) -> dict[str, Any]:
    """One vote as stored and exported."""
    return {
        "time": (when or datetime.now(UTC)).isoformat(timespec="seconds"),
        "vote": vote,
        "question": answer.question,
        "answer": answer.text,
        "citations": [
            {
                "number": c.number,
                "title": c.title,
                "source": c.source,
                "page": c.page,
                "quote": c.quote,
                "quote_start": c.quote_start,
                "quote_end": c.quote_end,
                "chunk_id": c.chunk_id,
            }
            for c in answer.citations
        ],
        "refused": answer.refused,
        "generator": answer.generator,
        "user": user,
    }


def answer_key(answer: Answer) -> str:
    """The answer a vote is on, as a short key: the same question answered with the same text is the same answer."""
    return hashlib.sha256(f"{answer.question}\0{answer.text}".encode()).hexdigest()


def _add_voter_columns(database: Database) -> None:
    """Give a feedback table made before votes had voters its ``voter`` and ``answer_key`` columns and their unique
    index (a no-op once they are there; when replicas race, the loser finds them made and checks again)."""
    for attempt in range(2):
        present = {column["name"] for column in inspect(database.engine).get_columns(votes.name)}
        try:
            with database.engine.begin() as connection:
                for column in (votes.c.voter, votes.c.answer_key):
                    if column.name not in present:
                        kind = column.type.compile(dialect=connection.dialect)
                        connection.exec_driver_sql(f"ALTER TABLE {votes.name} ADD COLUMN {column.name} {kind}")
                one_vote.create(connection, checkfirst=True)
            return
        except (OperationalError, ProgrammingError):
            if attempt:
                raise


class FeedbackFileError(ValueError):
    """A ``feedback.jsonl`` line that is not a vote: names the file, the line and what to do."""


class FeedbackStore:
    def __init__(self, database: Database) -> None:
        self.database = database
        database.ensure(votes, imports)
        _add_voter_columns(database)
        self._insert = sqlite.insert if database.backend == "sqlite" else postgresql.insert

    def record(self, answer: Answer, vote: Vote, user: str | None = None, voter: str | None = None) -> dict[str, Any]:
        """Store one vote (committed when this returns); returns what was stored.

        ``voter``: who cast it, as proved (default: ``user``); their earlier vote on this answer is replaced. With
        neither, the vote is a row of its own."""
        record = feedback_record(answer, vote, user)
        row = record | {"voter": voter if voter is not None else user, "answer_key": answer_key(answer)}
        upsert = self._insert(votes).values(**row)
        upsert = upsert.on_conflict_do_update(
            index_elements=[votes.c.voter, votes.c.answer_key], set_={name: upsert.excluded[name] for name in _REPLACED}
        )
        with self.database.begin() as connection:
            connection.execute(upsert)
        return record

    def purge(self, before: datetime, dry_run: bool = False) -> int:
        """Delete the votes cast (or last changed) before ``before``; how many (with ``dry_run``: would be)."""
        old = votes.c.time < before.astimezone(UTC).isoformat(timespec="seconds")
        with self.database.begin() as connection:
            if dry_run:
                return int(connection.execute(select(func.count()).select_from(votes).where(old)).scalar_one())
            return int(connection.execute(delete(votes).where(old)).rowcount)

    def records(self) -> Iterator[dict[str, Any]]:
        """Every vote, oldest first, in the exported shape."""
        query = select(*(votes.c[name] for name in _FIELDS)).order_by(votes.c.id)
        with self.database.begin() as connection:
            for row in connection.execute(query):
                yield dict(row._mapping)

    def export_lines(self) -> Iterator[str]:
        """The votes as JSON lines (what ``feedback.jsonl`` held)."""
        for record in self.records():
            yield json.dumps(record, ensure_ascii=False) + "\n"

    def import_file(self, path: Path) -> int | None:
        """Import the votes of a ``feedback.jsonl`` once: how many, or None when it was imported before (or there is
        no such file). A malformed line raises :class:`FeedbackFileError` and imports nothing."""
        if not path.is_file():
            return None
        rows = list(_read_votes(path))
        try:
            with self.database.begin() as connection:
                connection.execute(insert(imports).values(name=str(path.resolve())))
                if rows:
                    connection.execute(insert(votes), rows)
        except IntegrityError:  # imported already (perhaps by another replica a moment ago)
            return None
        return len(rows)


def _read_votes(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                row = {name: record.get(name) for name in _FIELDS}
                if not all(isinstance(row[name], str) for name in ("time", "vote", "question", "answer")):
                    raise ValueError("time, vote, question and answer must be strings")
            except (ValueError, AttributeError) as exc:
                raise FeedbackFileError(
                    f"{path}, line {number}: not a vote ({exc}); fix or delete that line and start docbot again"
                ) from exc
            yield row | {
                "citations": row["citations"] or [],
                "refused": bool(row["refused"]),
                "generator": row["generator"] or "",
            }
