"""Conversations and their turns in the database, so one survives a page reload, a restart and a switch of replica.

A conversation belongs to one owner, a string the web layer derives from who proved what (``user:<name>`` for a
signed-in user or a named key, ``browser:<id>`` for an anonymous page visitor's random browser id, ``anonymous``
for anonymous API callers, whose unguessable conversation id is then the only key). Every read and append names
the owner: someone else's conversation and one that does not exist are the same :class:`ConversationNotFoundError`.
A turn is stored once its answer is complete, in one transaction with the conversation's ``updated`` time.
Conversations not continued within the retention are deleted with their turns by ``docbot purge``.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection

from bot.answer.citations import Answer, citation_from_record
from bot.state.database import METADATA, Database

conversations = Table(
    "conversations",
    METADATA,
    Column("id", String(64), primary_key=True),
    Column("owner", String(300), nullable=False, index=True),
    Column("title", String(200), nullable=False),
    Column("created", String(40), nullable=False),
    Column("updated", String(40), nullable=False),
)

turns = Table(
    "conversation_turns",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("conversation_id", ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("question", Text, nullable=False),
    Column("answer", Text, nullable=False),
    Column("citations", JSON, nullable=False),
    Column("refused", Boolean, nullable=False),
    Column("generator", String(200), nullable=False),
    Column("time", String(40), nullable=False),
)

#: Characters of the first question kept as the conversation's title.
TITLE_CHARS = 200
#: Conversations listed for one owner at most (the most recently continued first).
LISTED = 50


class ConversationNotFoundError(LookupError):
    """No conversation of that id belongs to this caller."""

    def __init__(self, conversation_id: str) -> None:
        super().__init__(
            f"no conversation {conversation_id[:80]!r} of yours: start a new one (leave conversation_id out)"
        )


@dataclass(frozen=True)
class Purged:
    """What a purge deleted (or, on a dry run, would delete)."""

    conversations: int
    turns: int


@dataclass(frozen=True)
class ConversationSummary:
    id: str
    title: str
    updated: str


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def new_id() -> str:
    """An unguessable conversation id (128 random bits)."""
    return secrets.token_urlsafe(16)


class ConversationStore:
    def __init__(self, database: Database) -> None:
        self.database = database
        database.ensure(conversations, turns)

    def _check(self, connection: Connection, conversation_id: str, owner: str) -> None:
        query = select(conversations.c.owner).where(conversations.c.id == conversation_id)
        if connection.execute(query).scalar_one_or_none() != owner:
            raise ConversationNotFoundError(conversation_id)

    def add_turn(self, conversation_id: str | None, owner: str, answer: Answer) -> str:
        """Append ``answer`` to the owner's conversation (a new one, titled with its question, when the id is
        None); returns the conversation's id once the turn is committed."""
        now = _now()
        with self.database.begin() as connection:
            if conversation_id is None:
                conversation_id = new_id()
                title = " ".join(answer.question.split())[:TITLE_CHARS]
                connection.execute(
                    insert(conversations).values(id=conversation_id, owner=owner, title=title, created=now, updated=now)
                )
            else:
                self._check(connection, conversation_id, owner)
                connection.execute(
                    update(conversations).where(conversations.c.id == conversation_id).values(updated=now)
                )
            # Values as parameters, not .values(...): no bind parameters built per call (a third less CPU a turn).
            connection.execute(
                insert(turns),
                {
                    "conversation_id": conversation_id,
                    "question": answer.question,
                    "answer": answer.text,
                    "citations": [asdict(citation) for citation in answer.citations],
                    "refused": answer.refused,
                    "generator": answer.generator,
                    "time": now,
                },
            )
        return conversation_id

    def answers(self, conversation_id: str, owner: str) -> list[Answer]:
        """The owner's conversation, oldest turn first (raises :class:`ConversationNotFoundError`)."""
        query = (
            select(turns.c.question, turns.c.answer, turns.c.citations, turns.c.refused, turns.c.generator)
            .where(turns.c.conversation_id == conversation_id)
            .order_by(turns.c.id)
        )
        with self.database.begin() as connection:
            self._check(connection, conversation_id, owner)
            rows = connection.execute(query).all()
        return [
            Answer(
                question=row.question,
                text=row.answer,
                citations=[citation_from_record(citation) for citation in row.citations],
                refused=row.refused,
                generator=row.generator,
            )
            for row in rows
        ]

    def listed(self, owner: str, limit: int = LISTED) -> list[ConversationSummary]:
        """The owner's conversations, the most recently continued first."""
        query = (
            select(conversations.c.id, conversations.c.title, conversations.c.updated)
            .where(conversations.c.owner == owner)
            .order_by(conversations.c.updated.desc())
            .limit(limit)
        )
        with self.database.begin() as connection:
            return [ConversationSummary(row.id, row.title, row.updated) for row in connection.execute(query)]

    def purge(self, before: datetime, dry_run: bool = False) -> Purged:
        """Delete the conversations last continued before ``before``, with their turns (``dry_run``: count them)."""
        old = select(conversations.c.id).where(
            conversations.c.updated < before.astimezone(UTC).isoformat(timespec="microseconds")
        )
        count_turns = select(func.count()).select_from(turns).where(turns.c.conversation_id.in_(old))
        with self.database.begin() as connection:
            purged = Purged(
                conversations=connection.execute(select(func.count()).select_from(old.subquery())).scalar_one(),
                turns=connection.execute(count_turns).scalar_one(),
            )
            if not dry_run:  # their turns go with them (ON DELETE CASCADE)
                connection.execute(delete(conversations).where(conversations.c.id.in_(old)))
        return purged
