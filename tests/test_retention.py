"""Issue 27, finding 10: stored data a caller cannot grow without bound. One vote per voter and answer (a later one
replaces theirs, also in a database made before votes had voters), and ``docbot purge`` deleting the conversations
and votes older than their retention; on SQLite (fast tier) and PostgreSQL (server tier), through two replicas."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import Replicas
from sqlalchemy import Boolean, Column, Integer, MetaData, String, Table, Text, func, insert, select, update
from typer.testing import CliRunner

from bot.answer.citations import Answer
from bot.cli import app
from bot.state.conversations import ConversationStore, conversations, turns
from bot.state.database import Database
from bot.state.feedback import FeedbackStore, feedback_record, votes


def _answer(question: str = "Who resumed air strikes?", text: str = "The coalition did [1].") -> Answer:
    return Answer(question=question, text=text)


def _rows(database: Database, table: Table) -> int:
    with database.begin() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def test_a_voter_s_later_vote_on_an_answer_replaces_theirs(replicas: Replicas) -> None:
    one, two = (FeedbackStore(database) for database in replicas)
    answer = _answer()
    for n in range(20):  # twenty clicks, on both replicas: one vote, the last
        (one if n % 2 else two).record(answer, "up" if n < 19 else "down", "ann", voter="user:ann")
    assert [(r["vote"], r["user"]) for r in one.records()] == [("down", "ann")]

    one.record(answer, "up", "bob", voter="user:bob")  # someone else: a vote of their own
    one.record(_answer(text="Nobody says [1]."), "up", "ann", voter="user:ann")  # another answer
    assert [(r["vote"], r["user"]) for r in two.records()] == [("down", "ann"), ("up", "bob"), ("up", "ann")]
    for vote in ("up", "down"):  # no voter given: the user stands for it
        two.record(_answer("Asked twice?"), vote, "ann")
    assert [r["vote"] for r in one.records() if r["question"] == "Asked twice?"] == ["down"]

    for _ in range(3):  # nobody to hold to one vote: each kept
        one.record(answer, "up")
    assert len(list(one.records())) == 7

    threads = [
        threading.Thread(target=store.record, args=(_answer("At once?"), "up", None, "browser:b1"))
        for store in (one, two) * 5
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r["question"] for r in one.records()].count("At once?") == 1  # atomic, across replicas


def test_a_feedback_table_from_before_voters_gains_them(replicas: Replicas) -> None:
    """A database written by an earlier docbot: its votes stay, and votes from now on are one per voter."""
    before = Table(
        "feedback",
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("time", String(40), nullable=False),
        Column("vote", String(10), nullable=False),
        Column("question", Text, nullable=False),
        Column("answer", Text, nullable=False),
        Column("citations", votes.c.citations.type, nullable=False),
        Column("refused", Boolean, nullable=False),
        Column("generator", String(200), nullable=False),
        Column("user", String(200), nullable=True),
    )
    old = feedback_record(_answer(), "up", "ann")
    with replicas[0].engine.begin() as connection:
        before.create(connection)
        connection.execute(insert(before), [old, old])

    one, two = FeedbackStore(replicas[0]), FeedbackStore(replicas[1])  # the second finds the columns made
    for _ in range(5):
        two.record(_answer(), "down", "ann", voter="user:ann")
    assert list(one.records())[:2] == [old, old] and [r["vote"] for r in one.records()] == ["up", "up", "down"]


def _backdate(database: Database, conversation: str, days: float) -> None:
    when = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="microseconds")
    with database.begin() as connection:
        connection.execute(update(conversations).where(conversations.c.id == conversation).values(updated=when))


def test_purge_deletes_the_conversations_not_continued_within_the_retention(replicas: Replicas) -> None:
    one, two = (ConversationStore(database) for database in replicas)
    stale = one.add_turn(None, "user:ann", _answer())
    one.add_turn(stale, "user:ann", _answer("And then?"))
    fresh = two.add_turn(None, "anonymous", _answer())
    _backdate(replicas[0], stale, days=40)
    _backdate(replicas[0], fresh, days=20)
    since = datetime.now(UTC) - timedelta(days=30)

    counted = two.purge(since, dry_run=True)
    assert (counted.conversations, counted.turns) == (1, 2)
    assert _rows(replicas[0], conversations) == 2 and _rows(replicas[0], turns) == 3  # a dry run deletes nothing

    purged = one.purge(since)
    assert (purged.conversations, purged.turns) == (1, 2)
    assert _rows(replicas[1], conversations) == 1 and _rows(replicas[1], turns) == 1  # the turns went with it
    assert [a.question for a in two.answers(fresh, "anonymous")] == ["Who resumed air strikes?"]
    assert one.purge(since).conversations == 0


def test_purge_deletes_the_votes_older_than_their_retention(replicas: Replicas) -> None:
    one, two = (FeedbackStore(database) for database in replicas)
    old = feedback_record(_answer("Old?"), "up", "ann", when=datetime.now(UTC) - timedelta(days=100))
    with replicas[0].begin() as connection:
        connection.execute(insert(votes).values(**old))
    two.record(_answer("New?"), "down", "ann", voter="user:ann")
    since = datetime.now(UTC) - timedelta(days=90)
    assert one.purge(since, dry_run=True) == 1 and len(list(one.records())) == 2
    assert two.purge(since) == 1
    assert [r["question"] for r in one.records()] == ["New?"]


def test_docbot_purge_says_what_it_deleted(tmp_path: Path) -> None:
    data = tmp_path / "data"
    database = Database.open(None, data)
    store = ConversationStore(database)
    for age in (400, 10):
        _backdate(database, store.add_turn(None, "anonymous", _answer()), days=age)
    database.close()
    env = {"DOCBOT_DATA_DIR": str(data), "DOCBOT_VOTE_RETENTION_DAYS": "0"}

    dry = CliRunner().invoke(app, ["purge", "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "would delete 1 conversations (1 turns) last continued before" in dry.output
    assert "votes kept forever (DOCBOT_VOTE_RETENTION_DAYS is 0)" in dry.output
    done = CliRunner().invoke(app, ["purge"], env=env | {"DOCBOT_VOTE_RETENTION_DAYS": "30"})
    assert done.exit_code == 0, done.output
    assert "deleted 1 conversations (1 turns)" in done.output and "deleted 0 votes cast before" in done.output
    kept = CliRunner().invoke(app, ["purge"], env=env | {"DOCBOT_CONVERSATION_RETENTION_DAYS": "0"})
    assert "conversations kept forever (DOCBOT_CONVERSATION_RETENTION_DAYS is 0)" in kept.output
    database = Database.open(None, data)
    assert _rows(database, conversations) == 1
    database.close()
