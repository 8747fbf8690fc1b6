"""Thumbs up/down on answers, one row a vote in the database (shared by every replica).

``docbot feedback export`` writes them as JSON lines, the shape the old ``feedback.jsonl`` had; an existing
``feedback.jsonl`` is imported once (the file is left where it is, and its import is recorded in the same
transaction as its rows, so two replicas starting at once import it once between them).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Integer,
    String,
    Table,
    Text,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError

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
)

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


class FeedbackFileError(ValueError):
    """A ``feedback.jsonl`` line that is not a vote: names the file, the line and what to do."""


class FeedbackStore:
    def __init__(self, database: Database) -> None:
        self.database = database
        database.ensure(votes, imports)

    def record(self, answer: Answer, vote: Vote, user: str | None = None) -> dict[str, Any]:
        """Store one vote (committed when this returns); returns what was stored."""
        record = feedback_record(answer, vote, user)
        with self.database.begin() as connection:
            connection.execute(insert(votes).values(**record))
        return record

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
