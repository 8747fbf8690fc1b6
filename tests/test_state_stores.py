"""The state stores' contract, on SQLite (fast tier) and on PostgreSQL (server tier), each time through two
``Database`` objects over one database: two replicas. Counters add up across them, votes and conversations
written by one are read by the other, and nobody reads a conversation that is not theirs."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from conftest import Replicas
from helpers import Clock

from bot.answer.citations import Answer, Citation
from bot.state.conversations import ConversationNotFoundError, ConversationStore
from bot.state.counters import WindowCounters, counters
from bot.state.feedback import FeedbackFileError, FeedbackStore, feedback_record


def _answer(question: str, text: str = "The answer [1].", refused: bool = False) -> Answer:
    citation = Citation(
        number=1,
        chunk_id="doc.txt#0",
        source="doc.txt",
        title="A document «quoted»",
        page=None,
        passage="Before. The answer. After.",
        passage_start=100,
        passage_end=126,
        quote="The answer.",
        quote_start=108,
        quote_end=119,
        support=0.9,
        supported=True,
        view_url="/view/doc.txt#0?quote=108-119#cited",
    )
    return Answer(question=question, text=text, citations=[] if refused else [citation], refused=refused)


def test_counters_add_up_across_replicas_hit_at_once(replicas: Replicas) -> None:
    clock = Clock(6000.0)
    each = [WindowCounters(database, "api", 60, clock=clock) for database in replicas]
    errors: list[BaseException] = []

    def hammer(counter: WindowCounters) -> None:
        try:
            for _ in range(25):
                counter.hit("ip:10.0.0.1")
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(counter,)) for counter in each for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert each[0].peek("ip:10.0.0.1").count == each[1].peek("ip:10.0.0.1").count == 150  # none lost to a race
    assert each[1].hit("ip:10.0.0.1").count == 151
    assert each[0].peek("ip:10.0.0.2").count == 0


def test_counters_keep_two_windows_and_namespaces_apart(replicas: Replicas) -> None:
    one, two = replicas
    clock = Clock(6000.0)
    api, auth = WindowCounters(one, "api", 60, clock=clock), WindowCounters(two, "auth", 300, clock=clock)
    api.hit("k")
    auth.hit("k")
    assert auth.peek("k").count == 1 and api.peek("k").count == 1
    clock.now += 60
    assert api.hit("k").previous == 1  # the window before still counts, fading
    clock.now += 120
    api.hit("k")  # a new window: windows before the previous one of this namespace are deleted
    with one.begin() as connection:
        rows = connection.execute(counters.select().order_by(counters.c.key, counters.c.window)).all()
    assert [(row.key, row.count) for row in rows] == [("api:k", 1), ("auth:k", 1)]
    assert api.hit("x" * 1000).count == 1  # a hostile key is cut, not an error


def test_votes_written_by_one_replica_are_exported_by_the_other(replicas: Replicas) -> None:
    one, two = (FeedbackStore(database) for database in replicas)
    answer = _answer("What is «this»?")
    written = one.record(answer, "up", "ann")
    two.record(answer, "down")
    records = list(one.records())
    assert records[0] == written and [r["vote"] for r in records] == ["up", "down"]
    assert records[1]["user"] is None
    assert set(written) == set(feedback_record(answer, "cleared"))  # the shape feedback.jsonl had
    assert written["citations"][0]["quote"] == "The answer." and written["citations"][0]["chunk_id"] == "doc.txt#0"
    lines = [json.loads(line) for line in two.export_lines()]
    assert lines == records


def test_an_old_feedback_file_is_imported_once(replicas: Replicas, tmp_path: Path) -> None:
    one, two = (FeedbackStore(database) for database in replicas)
    old = tmp_path / "feedback.jsonl"
    votes = [feedback_record(_answer(f"Question {n}?"), "up", "ann") for n in range(3)]
    old.write_text("".join(json.dumps(v) + "\n" for v in votes) + "\n", encoding="utf-8")
    assert one.import_file(old) == 3
    assert two.import_file(old) is None  # the other replica, starting later: already imported
    assert one.import_file(old) is None
    assert [r["question"] for r in two.records()] == ["Question 0?", "Question 1?", "Question 2?"]
    assert old.exists()  # left in place
    assert one.import_file(tmp_path / "none.jsonl") is None


def test_a_malformed_feedback_file_imports_nothing_and_names_the_line(replicas: Replicas, tmp_path: Path) -> None:
    store = FeedbackStore(replicas[0])
    bad = tmp_path / "feedback.jsonl"
    bad.write_text(json.dumps(feedback_record(_answer("Fine?"), "up")) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(FeedbackFileError, match=r"feedback.jsonl, line 2: not a vote") as caught:
        store.import_file(bad)
    assert "\n" not in str(caught.value)
    assert list(store.records()) == []
    bad.write_text(json.dumps(feedback_record(_answer("Fine?"), "up")) + "\n", encoding="utf-8")
    assert store.import_file(bad) == 1  # fixed, it imports


def test_a_conversation_continues_on_the_other_replica(replicas: Replicas) -> None:
    one, two = (ConversationStore(database) for database in replicas)
    first = _answer("Who   resumed\nair strikes?")
    conversation = one.add_turn(None, "user:ann", first)
    follow_up = _answer("When?", "They do not say.", refused=True)
    assert two.add_turn(conversation, "user:ann", follow_up) == conversation
    answers = one.answers(conversation, "user:ann")
    assert [(a.question, a.text, a.refused) for a in answers] == [
        (first.question, first.text, False),
        ("When?", "They do not say.", True),
    ]
    assert answers[0].citations == first.citations  # every field, as the page shows them again
    assert [(a.question, a.text) for a in two.answers(conversation, "user:ann")] == [
        (first.question, first.text),
        ("When?", "They do not say."),
    ]
    [summary] = two.listed("user:ann")
    assert summary.id == conversation and summary.title == "Who resumed air strikes?"


def test_nobody_reads_or_continues_a_conversation_that_is_not_theirs(replicas: Replicas) -> None:
    one, two = (ConversationStore(database) for database in replicas)
    conversation = one.add_turn(None, "browser:AAAAAAAAAAAAAAAAAAAAAA", _answer("Mine?"))
    for owner in ("user:ann", "browser:BBBBBBBBBBBBBBBBBBBBBB", "anonymous"):
        with pytest.raises(ConversationNotFoundError):
            two.answers(conversation, owner)
        with pytest.raises(ConversationNotFoundError):
            two.add_turn(conversation, owner, _answer("Theirs?"))
        assert two.listed(owner) == []
    with pytest.raises(ConversationNotFoundError) as unknown:
        two.answers("no-such-conversation-id", "browser:AAAAAAAAAAAAAAAAAAAAAA")
    assert "start a new one" in str(unknown.value)
    assert len(one.answers(conversation, "browser:AAAAAAAAAAAAAAAAAAAAAA")) == 1  # nothing was added


def test_past_conversations_are_listed_most_recent_first(replicas: Replicas) -> None:
    one, two = (ConversationStore(database) for database in replicas)
    older = one.add_turn(None, "user:ann", _answer("First topic?"))
    newer = two.add_turn(None, "user:ann", _answer("Second topic?"))
    assert [s.id for s in one.listed("user:ann")] == [newer, older]
    one.add_turn(older, "user:ann", _answer("More on the first?"))  # continued: now the most recent
    assert [s.id for s in two.listed("user:ann")] == [older, newer]
    assert [s.title for s in two.listed("user:ann", limit=1)] == ["First topic?"]


def test_a_turn_saved_by_another_docbot_version_still_opens(replicas: Replicas) -> None:
    """Citations are stored as JSON: a key this version does not know is dropped, a missing view_url derived again."""
    from dataclasses import asdict

    from sqlalchemy import update

    from bot.state.conversations import turns

    one, two = replicas
    answer = _answer("Who resumed air strikes?")
    conversation = ConversationStore(one).add_turn(None, "user:ann", answer)
    [citation] = answer.citations
    other_version = {k: v for k, v in asdict(citation).items() if k != "view_url"} | {"confidence_band": "high"}
    with one.begin() as connection:
        statement = update(turns).where(turns.c.conversation_id == conversation).values(citations=[other_version])
        connection.execute(statement)
    [reopened] = ConversationStore(two).answers(conversation, "user:ann")
    assert reopened.citations == [citation]
